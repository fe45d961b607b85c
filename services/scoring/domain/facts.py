"""What scoring knows about one case, and what the case adds to each unit's figures.

A :class:`CaseFact` gathers observations from the four topics. Each
observation is kept so that applying the same events in any order gives the
same fact (the earliest dispatch, the latest rating, the set of
verification failures, the highest rework count), and applying an event
twice changes nothing. Everything scoring counts is then a function of the
fact alone — :func:`contribution` — so a unit's figures are the sum of its
cases' contributions and can be kept exact by adding differences.

The cohort rules (ISSUE 6 defaults): a case belongs to the cohort of the
periods in which it was *first* dispatched, attributed to the department
holding it *now* and to the area (street office), community and cell of its
grid cell; merged duplicates never count.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from services.scoring.domain.figures import INDEX, Contribution, Share, UnitRef, share
from shared.events import (
    CaseAccepted,
    CaseClosed,
    CaseDispatched,
    CaseHandled,
    CaseMerged,
    CaseOverdue,
    CaseRated,
    CaseRedispatched,
    CaseRegistered,
    CaseReworkOrdered,
    CaseVerificationFailed,
    Envelope,
)
from shared.periods import local_day
from shared.reference import ReferenceData

#: Event types that change a case's fact.
FACT_EVENT_TYPES = frozenset(
    {
        CaseRegistered.event_type,
        CaseMerged.event_type,
        CaseDispatched.event_type,
        CaseRedispatched.event_type,
        CaseAccepted.event_type,
        CaseHandled.event_type,
        CaseOverdue.event_type,
        CaseReworkOrdered.event_type,
        CaseVerificationFailed.event_type,
        CaseClosed.event_type,
        CaseRated.event_type,
    }
)


# The observations are NamedTuples: built by the thousand per batch (read from the store, or
# from events) and sorted and compared by the fold, which a tuple does in C and a frozen,
# ordered dataclass did in Python. Compared field by field in order, as the dataclasses were.


class Dispatch(NamedTuple):
    """One dispatch of a case: who holds it from when, and its deadlines."""

    at: datetime
    number: int
    department: str
    sign_for: datetime
    handle: datetime


class Closure(NamedTuple):
    """The case's closing: when, and its handling against the deadline in force then."""

    closed_at: datetime
    handled_at: datetime
    handle_deadline: datetime


class Overdue(NamedTuple):
    """A red light supervision showed: when, for which limit, its deadline, which dispatch."""

    at: datetime
    timer: str  # sign_for | handle | verify, or "kept" (a light saved before lights were kept)
    deadline: datetime
    dispatch_number: int


class Rating(NamedTuple):
    rated_at: datetime
    event_id: str
    rating: str  # satisfied | basically_satisfied | dissatisfied


@dataclass(slots=True)
class CaseFact:
    """Never changed in place: :func:`apply_event` returns a new fact (slots, not frozen, for speed)."""

    case_id: str
    registered_at: datetime | None = None
    merged_at: datetime | None = None
    grid_code: str | None = None
    #: the area an event named, used only when the grid cell is not in the reference data
    area_hint: str | None = None
    dispatches: tuple[Dispatch, ...] = ()
    acceptances: tuple[datetime, ...] = ()
    #: when the case was handled (case.handled), each time
    handlings: tuple[datetime, ...] = ()
    #: every red light shown, judged against the steps' event times (:func:`_judge_overdue`)
    overdues: tuple[Overdue, ...] = ()
    #: the first red light that stands: the department's step was not done by its deadline
    overdue_at: datetime | None = None
    rework_orders: int = 0
    #: ids of the verification_failed events, so a repeated event counts once
    verification_failures: tuple[str, ...] = ()
    closure: Closure | None = None
    rating: Rating | None = None

    @property
    def first_dispatch(self) -> Dispatch | None:
        return self.dispatches[0] if self.dispatches else None

    @property
    def current_dispatch(self) -> Dispatch | None:
        """The latest dispatch: the department holding the case now."""
        dispatches = self.dispatches
        if len(dispatches) < 2:  # most cases: read for every case of every batch
            return dispatches[0] if dispatches else None
        return max(dispatches, key=lambda d: (d.number, d.at))

    def dispatch_in_force(self, instant: datetime) -> Dispatch | None:
        """The dispatch whose deadlines applied at ``instant`` (the first, before any)."""
        in_force = self.first_dispatch
        for dispatch in self.dispatches:
            if dispatch.at <= instant:
                in_force = dispatch
        return in_force

    @property
    def responded(self) -> bool:
        """Accepted (signed for) before the sign-for deadline in force at that moment."""
        for accepted_at in self.acceptances:
            dispatch = self.dispatch_in_force(accepted_at)
            if dispatch is not None and accepted_at < dispatch.sign_for:
                return True
        return False

    @property
    def on_time(self) -> bool:
        """Closed, and the handling that was verified came at or before the deadline in force."""
        closure = self.closure
        return closure is not None and closure.handled_at <= closure.handle_deadline


def _replace(fact: CaseFact, **changes: Any) -> CaseFact:
    """``dataclasses.replace`` spelled out: a quarter of its cost, and most events call it.

    Every field of :class:`CaseFact` is listed (a unit test checks none is missing).
    """
    get = changes.get
    return CaseFact(
        get("case_id", fact.case_id),
        get("registered_at", fact.registered_at),
        get("merged_at", fact.merged_at),
        get("grid_code", fact.grid_code),
        get("area_hint", fact.area_hint),
        get("dispatches", fact.dispatches),
        get("acceptances", fact.acceptances),
        get("handlings", fact.handlings),
        get("overdues", fact.overdues),
        get("overdue_at", fact.overdue_at),
        get("rework_orders", fact.rework_orders),
        get("verification_failures", fact.verification_failures),
        get("closure", fact.closure),
        get("rating", fact.rating),
    )


def _earliest(current: datetime | None, new: datetime) -> datetime:
    return new if current is None or new < current else current


def _with_dispatch(fact: CaseFact, data: CaseDispatched | CaseRedispatched) -> CaseFact:
    dispatch = Dispatch(
        at=data.dispatched_at,
        number=data.dispatch_number,
        department=data.department,
        sign_for=data.deadlines.sign_for,
        handle=data.deadlines.handle,
    )
    dispatches = fact.dispatches
    if dispatch not in dispatches:
        dispatches = tuple(sorted((*dispatches, dispatch)))
    if fact.registered_at is None:
        # Without the registration, the smallest wins so that arrival order does not matter.
        fact = _replace(
            fact,
            grid_code=min(filter(None, (fact.grid_code, data.grid_code))),
            area_hint=min(filter(None, (fact.area_hint, data.area))),
        )
    return _replace(
        fact, dispatches=dispatches, rework_orders=max(fact.rework_orders, data.rework_count)
    )


def _on_registered(fact: CaseFact, event: Envelope, data: CaseRegistered) -> CaseFact:
    return _replace(
        fact,
        registered_at=_earliest(fact.registered_at, data.registered_at),
        grid_code=data.grid_code,
        area_hint=data.area,
    )


def _on_merged(fact: CaseFact, event: Envelope, data: CaseMerged) -> CaseFact:
    return _replace(
        fact,
        merged_at=_earliest(fact.merged_at, event.time),
        grid_code=fact.grid_code or data.grid_code,
        area_hint=fact.area_hint or data.area,
    )


def _on_dispatched(
    fact: CaseFact, event: Envelope, data: CaseDispatched | CaseRedispatched
) -> CaseFact:
    return _judge_overdue(_with_dispatch(fact, data))


def _on_accepted(fact: CaseFact, event: Envelope, data: CaseAccepted) -> CaseFact:
    if event.time in fact.acceptances:
        return fact
    return _judge_overdue(
        _replace(fact, acceptances=tuple(sorted((*fact.acceptances, event.time))))
    )


def _on_handled(fact: CaseFact, event: Envelope, data: CaseHandled) -> CaseFact:
    if event.time in fact.handlings:
        return fact
    return _judge_overdue(_replace(fact, handlings=tuple(sorted((*fact.handlings, event.time)))))


def _on_overdue(fact: CaseFact, event: Envelope, data: CaseOverdue) -> CaseFact:
    overdue = Overdue(event.time, data.timer, data.deadline, data.dispatch_number)
    overdues = fact.overdues
    if overdue in overdues:
        return fact
    if not overdues and fact.overdue_at is not None:
        # Saved before lights were kept: the light it had stands as it was judged then.
        overdues = (Overdue(fact.overdue_at, _KEPT, fact.overdue_at, 0),)
    return _judge_overdue(_replace(fact, overdues=tuple(sorted((*overdues, overdue)))))


def _judge_overdue(fact: CaseFact) -> CaseFact:
    """``overdue_at`` from the red lights that stand, judged by event time, not arrival.

    Supervision shows a light when a limit passes and the step has not *arrived*; a
    sign-for or handling done in time can still be on its way (a backlog, an outage, the
    broker), and the light is then wrong. A light stands unless its dispatch's step was done
    by the deadline: signed for or handled, for ``sign_for``; handled, for ``handle``.
    ``verify`` is the inspector's limit, not the department's, and never counts here.
    A fact saved before lights were kept has ``overdue_at`` alone: it stands, and becomes a
    ``kept`` light beside the first new one.
    """
    if not fact.overdues:
        return fact
    standing = [o.at for o in fact.overdues if _stands(fact, o)]
    overdue_at = min(standing) if standing else None
    if overdue_at == fact.overdue_at:
        return fact
    return _replace(fact, overdue_at=overdue_at)


#: The timer of a light a fact had before lights were kept (no deadline to judge it by).
_KEPT = "kept"


def _stands(fact: CaseFact, overdue: Overdue) -> bool:
    if overdue.timer == _KEPT:
        return True
    if overdue.timer == "sign_for":
        done: tuple[datetime, ...] = fact.acceptances + fact.handlings
    elif overdue.timer == "handle":
        done = fact.handlings
    else:
        return False
    for instant in done:
        if instant <= overdue.deadline:
            dispatch = fact.dispatch_in_force(instant)
            if dispatch is not None and dispatch.number == overdue.dispatch_number:
                return False
    return True


def _on_rework_ordered(fact: CaseFact, event: Envelope, data: CaseReworkOrdered) -> CaseFact:
    return _replace(fact, rework_orders=max(fact.rework_orders, data.rework_count))


def _on_verification_failed(
    fact: CaseFact, event: Envelope, data: CaseVerificationFailed
) -> CaseFact:
    # A look-back (回头看) re-inspects a closed case; it is not the case's verification.
    if data.lookback or event.id in fact.verification_failures:
        return fact
    return _replace(
        fact, verification_failures=tuple(sorted((*fact.verification_failures, event.id)))
    )


def _on_closed(fact: CaseFact, event: Envelope, data: CaseClosed) -> CaseFact:
    closure = Closure(
        closed_at=event.time, handled_at=data.handled_at, handle_deadline=data.handle_deadline
    )
    if fact.closure is not None:
        closure = max(fact.closure, closure)
    return _replace(fact, closure=closure, rework_orders=max(fact.rework_orders, data.rework_count))


def _on_rated(fact: CaseFact, event: Envelope, data: CaseRated) -> CaseFact:
    rating = Rating(rated_at=event.time, event_id=event.id, rating=data.rating)
    current = fact.rating
    if current is not None and (current.rated_at, current.event_id) >= (
        rating.rated_at,
        rating.event_id,
    ):
        return fact
    return _replace(fact, rating=rating)


def _unchanged(fact: CaseFact, event: Envelope, data: object) -> CaseFact:
    return fact


_Step = Callable[[CaseFact, Envelope, Any], CaseFact]
#: The data classes a fact observes, each with its step, in the order they are tried.
_STEPS: tuple[tuple[type | tuple[type, ...], _Step], ...] = (
    (CaseRegistered, _on_registered),
    (CaseMerged, _on_merged),
    ((CaseDispatched, CaseRedispatched), _on_dispatched),
    (CaseAccepted, _on_accepted),
    (CaseHandled, _on_handled),
    (CaseOverdue, _on_overdue),
    (CaseReworkOrdered, _on_rework_ordered),
    (CaseVerificationFailed, _on_verification_failed),
    (CaseClosed, _on_closed),
    (CaseRated, _on_rated),
)
#: data class -> its step, found once per class: ``isinstance`` on a pydantic model is a Python
#: call (ABCMeta), and trying the steps in turn cost every event up to ten of them.
_STEP_OF: dict[type, _Step] = {}


def _step_of(cls: type) -> _Step:
    step = _STEP_OF.get(cls)
    if step is None:
        step = next((s for classes, s in _STEPS if issubclass(cls, classes)), _unchanged)
        _STEP_OF[cls] = step
    return step


def apply_event(fact: CaseFact, event: Envelope) -> CaseFact:
    """The fact after observing ``event``; the same fact whatever the order, once or twice."""
    data = event.data
    step = _STEP_OF.get(type(data)) or _step_of(type(data))
    return step(fact, event, data)


# -- where a case counts --------------------------------------------------------


@dataclass(frozen=True)
class Place:
    """The units a grid cell belongs to."""

    grid: str
    community: str
    area: str  # the street office (块)
    district: str


class Places:
    """Grid cell -> its community, area (street office) and district, from the reference data."""

    def __init__(self, cells: Mapping[str, Place], district: str) -> None:
        self._cells = dict(cells)
        self.district = district
        # The unit tuples of a cell (and holder), built once: contribution() asks for them for
        # every changed case, twice. Equal inputs give equal tuples, so a memo changes nothing.
        self._intake: dict[tuple[str, str | None], tuple[UnitRef, ...]] = {}
        self._holders: dict[
            tuple[str, str | None, str], tuple[tuple[UnitRef, ...], tuple[UnitRef, ...]]
        ] = {}

    @classmethod
    def from_reference(cls, reference: ReferenceData) -> Places:
        cells = {
            cell.code: Place(
                grid=cell.code,
                community=cell.community,
                area=reference.street_office(cell.street).id,
                district=cell.district,
            )
            for cell in reference.cells
        }
        return cls(cells, reference.district.code)

    def of(self, grid_code: str, area_hint: str | None = None) -> Place:
        """The place of a cell; a cell the data does not know keeps the area its events named."""
        known = self._cells.get(grid_code)
        if known is not None:
            return known
        return Place(
            grid=grid_code,
            community=grid_code[:12],
            area=area_hint or grid_code[:9],
            district=grid_code[:6],
        )

    def intake_units(self, grid_code: str, area_hint: str | None) -> tuple[UnitRef, ...]:
        """The units a case's intake counts in: its place's area and district."""
        key = (grid_code, area_hint)
        known = self._intake.get(key)
        if known is not None:
            return known
        place = self.of(grid_code, area_hint)
        units: tuple[UnitRef, ...] = (("area", place.area), ("district", place.district))
        self._remember(self._intake, key, units)
        return units

    def holder_units(
        self, grid_code: str, area_hint: str | None, department: str
    ) -> tuple[tuple[UnitRef, ...], tuple[UnitRef, ...]]:
        """The units of a case held by ``department``: its holders, and its cohort's units."""
        key = (grid_code, area_hint, department)
        units = self._holders.get(key)
        if units is None:
            place = self.of(grid_code, area_hint)
            holders: tuple[UnitRef, ...] = (
                ("department", department),
                ("area", place.area),
                ("district", place.district),
            )
            units = (holders, (*holders, ("community", place.community), ("grid", place.grid)))
            self._remember(self._holders, key, units)
        return units

    @staticmethod
    def _remember(memo: dict[Any, Any], key: Any, units: Any) -> None:
        # Bounded: cells the reference data does not know could otherwise grow it forever.
        if len(memo) >= _UNITS_MEMO:
            memo.clear()
        memo[key] = units


#: Entries kept per memo of :class:`Places` (cells × departments met recently).
_UNITS_MEMO = 50_000
_new = tuple.__new__

_DUE, _CLOSED, _ON_TIME, _OVERDUE, _REWORK, _RESPONDED = (
    INDEX[n] for n in ("due", "closed", "on_time", "overdue", "rework", "responded")
)
_RATED, _SATISFIED, _BASICALLY, _FAILED_3X = (
    INDEX[n] for n in ("rated", "satisfied", "basically_satisfied", "failed_verification_3x")
)
# The one-count parts, built once: contribution() runs twice for every changed case.
_MERGED, _REGISTERED, _CLOSURES, _BECAME_OVERDUE = (
    ((INDEX[n], 1),) for n in ("merged", "registered", "closures", "became_overdue")
)
_DUE_1, _CLOSED_1, _ON_TIME_1, _OVERDUE_1, _RESPONDED_1 = (
    (i, 1) for i in (_DUE, _CLOSED, _ON_TIME, _OVERDUE, _RESPONDED)
)
_RATED_1, _SATISFIED_1, _BASICALLY_1, _FAILED_3X_1 = (
    (i, 1) for i in (_RATED, _SATISFIED, _BASICALLY, _FAILED_3X)
)


def contribution(fact: CaseFact, places: Places, repeated_failures: int) -> Contribution:
    """What ``fact`` adds to the unit figures, part by part.

    ``repeated_failures`` is the number of failed verifications that makes a
    case count in ``failed_verification_3x`` (three by default).
    """
    out: Contribution = {}
    grid = fact.grid_code
    if not grid:
        return out
    # Shares are built with tuple.__new__: a NamedTuple's own __new__ is one more Python call.
    if fact.merged_at is not None:
        intake = places.intake_units(grid, fact.area_hint)
        out["merged"] = _new(Share, (local_day(fact.merged_at), False, intake, _MERGED))
        return out
    if fact.registered_at is not None:
        intake = places.intake_units(grid, fact.area_hint)
        out["registered"] = _new(Share, (local_day(fact.registered_at), False, intake, _REGISTERED))
    dispatches = fact.dispatches
    if not dispatches:
        return out
    first = dispatches[0]
    current = fact.current_dispatch
    assert current is not None
    holders, cohort_units = places.holder_units(grid, fact.area_hint, current.department)
    closure, rating = fact.closure, fact.rating
    # The counts in FIGURES order, zeros left out; the pairs for a count of one are built once.
    counts = [_DUE_1]
    if closure is not None:
        counts.append(_CLOSED_1)
        if fact.on_time:
            counts.append(_ON_TIME_1)
    if fact.overdue_at is not None:
        counts.append(_OVERDUE_1)
    if fact.rework_orders:
        counts.append((_REWORK, fact.rework_orders))
    if fact.responded:
        counts.append(_RESPONDED_1)
    if rating is not None:
        counts.append(_RATED_1)
        if rating.rating == "satisfied":
            counts.append(_SATISFIED_1)
        elif rating.rating == "basically_satisfied":
            counts.append(_BASICALLY_1)
    if len(fact.verification_failures) >= repeated_failures:
        counts.append(_FAILED_3X_1)
    out["cohort"] = _new(Share, (local_day(first.at), True, cohort_units, tuple(counts)))
    if closure is not None:
        out["closures"] = _new(Share, (local_day(closure.closed_at), False, holders, _CLOSURES))
    if fact.overdue_at is not None:
        out["became_overdue"] = _new(
            Share, (local_day(fact.overdue_at), False, holders, _BECAME_OVERDUE)
        )
    return out


def rebound_contribution(place: Place, department: str, raised_at: datetime) -> Contribution:
    """A bounce-back counts against the place's area and the department whose case came back."""
    units: tuple[UnitRef, ...] = (
        ("department", department),
        ("area", place.area),
        ("district", place.district),
        ("community", place.community),
        ("grid", place.grid),
    )
    return {"rebound": share(local_day(raised_at), True, units, {"rebounds": 1})}


def rejection_contribution(district: str, rejected_at: datetime) -> Contribution:
    """A rejected report counts only in the day's intake figures of the district."""
    return {
        "rejected": share(local_day(rejected_at), False, (("district", district),), {"rejected": 1})
    }
