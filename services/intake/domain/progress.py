"""The case read model: where a case stands, folded from its timeline in event-time order.

Intake follows ``assignments``, ``feedback`` and ``supervision`` so a channel
(or an Open311 client) can ask about its case. Events of one case arrive
across topics in any order, so the state is never patched by arrival: each
change appends to the case's timeline and the state is :func:`fold`-ed again
from the whole timeline sorted by event time. A ``case.handled`` that arrives
before its ``case.dispatched`` therefore ends in the same state as one that
arrives after.

Folding a whole timeline for each new event re-reads everything the case
went through; so the state is saved with the sort key of the last entry in
it (:class:`Folded`), and new entries that all sort after that key are
stepped over from the saved state (:func:`fold_onto`), which gives the same
state. A late entry (sorting before the key) has the whole timeline folded
again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from shared.events.assignments import (
    CaseDispatched,
    CaseEscalated,
    CaseExtensionRefused,
    CaseRedispatched,
)
from shared.events.cases import CaseMerged, CaseRegistered
from shared.events.envelope import EventData
from shared.events.feedback import (
    CaseAccepted,
    CaseExtensionGranted,
    CaseExtensionRequested,
    CaseHandled,
    CaseParked,
    CaseRated,
    CaseReturned,
    CaseUnparked,
    CaseVerificationFailed,
    CaseVerified,
)
from shared.events.supervision import (
    CaseClosed,
    CaseNoticeIssued,
    CaseOverdue,
    CaseRebounded,
    CaseReworkOrdered,
    CaseWarned,
)
from shared.events.types import Deadlines

CaseStatus = Literal[
    "registered",
    "merged",
    "dispatched",
    "escalated",
    "accepted",
    "returned",
    "parked",
    "handled",
    "verified",
    "verification_failed",
    "rework_ordered",
    "closed",
]

#: Event types the read model follows, and how they sort when two share an instant:
#: the step that comes first in the loop goes first.
STEP_ORDER: dict[str, int] = {
    "case.registered": 0,
    "case.merged": 0,
    "case.rebounded": 1,
    "case.escalated": 2,
    "case.dispatched": 2,
    "case.redispatched": 3,
    "case.accepted": 4,
    "case.returned": 4,
    "case.extension_requested": 5,
    "case.extension_granted": 5,
    "case.extension_refused": 5,
    "case.parked": 6,
    "case.unparked": 7,
    "case.warned": 8,
    "case.overdue": 9,
    "case.notice_issued": 10,
    "case.handled": 11,
    "case.verification_failed": 12,
    "case.rework_ordered": 13,
    "case.verified": 14,
    "case.closed": 15,
    "case.rated": 16,
    "case.lookback_due": 17,
}


@dataclass(frozen=True)
class TimelineEntry:
    """One event of a case's life as intake recorded it."""

    event_id: str
    occurred_at: datetime
    source: str
    data: EventData

    @property
    def event_type(self) -> str:
        return self.data.event_type

    def sort_key(self) -> tuple[datetime, int, str]:
        return (self.occurred_at, STEP_ORDER.get(self.event_type, 99), self.event_id)


class Progress(BaseModel):
    """Where a case stands: status, who has it, until when, and how it went."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: CaseStatus = "registered"
    master_case_id: str | None = None
    department: str | None = None
    co_departments: tuple[str, ...] = ()
    area: str | None = None
    rule: str | None = None
    deadlines: Deadlines | None = None
    dispatch_number: int = 0
    is_rework: bool = False
    rework_count: int = 0
    returns: int = 0
    warned: bool = False
    overdue: bool = False
    notice_level: int = 0
    status_before_parking: CaseStatus | None = None
    rating: str | None = None
    closed_at: datetime | None = None
    on_time: bool | None = None
    note: str | None = None
    updated_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        """Open311's open/closed: a merged duplicate is closed from the start."""
        return self.status not in ("closed", "merged")


def _assigned(state: Progress, data: CaseDispatched | CaseRedispatched) -> Progress:
    if data.dispatch_number < state.dispatch_number:
        return state  # an older dispatch arriving late; the newer one stands
    fresh = data.dispatch_number > state.dispatch_number
    changes: dict[str, object] = {
        "department": data.department,
        "co_departments": tuple(data.co_departments),
        "area": data.area,
        "rule": data.rule,
        "deadlines": data.deadlines,
        "dispatch_number": data.dispatch_number,
        "is_rework": data.is_rework,
        "rework_count": max(state.rework_count, data.rework_count),
        "status": "dispatched",
        "note": data.rule,
    }
    if isinstance(data, CaseRedispatched):
        changes["returns"] = max(state.returns, data.returns)
    if fresh:
        # Timers belong to one dispatch: the lights start green again.
        changes.update(warned=False, overdue=False, notice_level=0)
    return state.model_copy(update=changes)


def _step(state: Progress, entry: TimelineEntry) -> Progress:
    data = entry.data
    if state.status == "merged":
        return state  # a duplicate stays closed; its master carries the work
    if isinstance(data, CaseRegistered):
        # Registration comes first in the loop whatever the clocks say: it never sets a status back.
        return state.model_copy(update={"area": state.area or data.area})
    if isinstance(data, CaseMerged):
        return state.model_copy(
            update={
                "status": "merged",
                "master_case_id": data.master_case_id,
                "area": data.area,
                "note": "Duplicate request.",
            }
        )
    if isinstance(data, CaseDispatched | CaseRedispatched):
        return _assigned(state, data)
    if isinstance(data, CaseEscalated):
        return state.model_copy(
            update={
                "status": "escalated",
                "returns": max(state.returns, data.returns),
                "note": f"escalated to a dispatcher: {data.reason}",
            }
        )
    if isinstance(data, CaseAccepted):
        return state.model_copy(update={"status": "accepted", "note": data.note or state.note})
    if isinstance(data, CaseReturned):
        return state.model_copy(
            update={"status": "returned", "returns": state.returns + 1, "note": data.reason}
        )
    if isinstance(data, CaseHandled):
        return state.model_copy(update={"status": "handled", "note": data.note or state.note})
    if isinstance(data, CaseVerified):
        if data.lookback:
            return state.model_copy(update={"note": data.note or "look-back check passed"})
        return state.model_copy(update={"status": "verified", "note": data.note or state.note})
    if isinstance(data, CaseVerificationFailed):
        return state.model_copy(update={"status": "verification_failed", "note": data.reason})
    if isinstance(data, CaseReworkOrdered):
        return state.model_copy(
            update={
                "status": "rework_ordered",
                "rework_count": max(state.rework_count, data.rework_count),
                "note": data.reason,
            }
        )
    if isinstance(data, CaseClosed):
        return state.model_copy(
            update={
                "status": "closed",
                "closed_at": entry.occurred_at,
                "on_time": data.on_time,
                "rework_count": max(state.rework_count, data.rework_count),
                "note": "Closed after verification on site.",
            }
        )
    if isinstance(data, CaseParked):
        before = state.status_before_parking or state.status
        return state.model_copy(
            update={"status": "parked", "status_before_parking": before, "note": data.reason}
        )
    if isinstance(data, CaseUnparked):
        if state.status != "parked":
            return state
        return state.model_copy(
            update={
                "status": state.status_before_parking or "dispatched",
                "status_before_parking": None,
                "note": data.note or "back to active work",
            }
        )
    if isinstance(data, CaseRated):
        return state.model_copy(update={"rating": data.rating})
    if isinstance(data, CaseWarned | CaseOverdue):
        if data.dispatch_number != state.dispatch_number:
            return state  # a timer of a dispatch that has been replaced
        flag = "warned" if isinstance(data, CaseWarned) else "overdue"
        return state.model_copy(update={flag: True})
    if isinstance(data, CaseNoticeIssued):
        if data.dispatch_number != state.dispatch_number:
            return state
        return state.model_copy(
            update={"notice_level": max(state.notice_level, data.level), "overdue": True}
        )
    if isinstance(data, CaseExtensionRequested):
        return state.model_copy(update={"note": f"extension requested: {data.reason}"})
    if isinstance(data, CaseExtensionGranted):
        return state.model_copy(update={"note": data.note or "extension granted"})
    if isinstance(data, CaseExtensionRefused):
        return state.model_copy(update={"note": data.message})
    if isinstance(data, CaseRebounded):
        return state
    return state


#: Where a timeline entry sorts: event time, step order, event id (unique, so no two tie).
SortKey = tuple[datetime, int, str]


@dataclass(frozen=True)
class Folded:
    """A case's state and the sort key of the last timeline entry folded into it.

    Saved with the state, so the next events of the case can be stepped over
    from here instead of folding the whole timeline again.
    """

    state: Progress
    last: SortKey


def _advance(state: Progress, entry: TimelineEntry) -> Progress:
    state = _step(state, entry)
    if state.closed_at is not None and state.status != "closed":
        # Reopened (a failed look-back, a rework): it attracts duplicates as an open case.
        state = state.model_copy(update={"closed_at": None})
    return state


def fold_onto(start: Folded | None, entries: Iterable[TimelineEntry]) -> Folded | None:
    """``start`` carried on over ``entries`` (None: from an empty timeline).

    Folding is only incremental when it gives what a fold of the whole
    timeline would: every new entry must sort after the last one folded. When
    one does not (an event arriving late, out of event-time order), None: the
    caller folds the whole timeline again. No entries: ``start`` as it is.
    """
    ordered = sorted(entries, key=TimelineEntry.sort_key)
    if not ordered:
        return start
    if start is not None and ordered[0].sort_key() <= start.last:
        return None
    state = Progress() if start is None else start.state
    for entry in ordered:
        state = _advance(state, entry)
    last = ordered[-1]
    # Sorted by event time first, so the last entry is also the latest.
    return Folded(state.model_copy(update={"updated_at": last.occurred_at}), last.sort_key())


def fold(entries: Iterable[TimelineEntry]) -> Progress:
    """The state of a case after every entry of its timeline, taken in event-time order."""
    folded = fold_onto(None, entries)
    return Progress() if folded is None else folded.state


def registration_folded(
    *,
    merged: bool,
    area: str,
    master_case_id: str | None,
    registered_at: datetime,
    event_id: str,
) -> Folded:
    """The fold of a timeline holding only a case's registration, from its filed row.

    What :func:`_step` takes from a case.registered / case.merged (the area, the
    master) is also in the row, so a case's first event after its registration
    is stepped over without reading the registration event back.
    """
    if merged:
        state = Progress(
            status="merged",
            master_case_id=master_case_id,
            area=area,
            note="Duplicate request.",
            updated_at=registered_at,
        )
    else:
        state = Progress(area=area, updated_at=registered_at)
    return Folded(
        state, (registered_at, STEP_ORDER["case.merged" if merged else "case.registered"], event_id)
    )
