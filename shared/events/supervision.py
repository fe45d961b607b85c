"""Events on ``supervision``: deadlines chased, cases closed, problems that come back (DOMAIN.md §2, §5).

Every event names the department and area the case is with, so each unit can
follow its own warnings and notices by header alone; timer events name the
dispatch they belong to, because a redispatch re-arms every timer.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, ClassVar

from pydantic import AwareDatetime, Field, StringConstraints

from shared.events.envelope import EventData
from shared.events.types import (
    CategoryCode,
    Count,
    GridCode,
    Identifier,
    Ordinal,
    ShortText,
    TimerKind,
    ValueObject,
)

Span = Annotated[timedelta, Field(ge=timedelta(0))]


class _Supervised(EventData):
    """A supervision event about one case of one department and area."""

    case_id: Identifier
    department: Identifier
    area: Identifier


class _TimerEvent(_Supervised):
    """A deadline timer that fired, and how far into its limit the case was."""

    timer: TimerKind
    deadline: AwareDatetime
    share_used: float = Field(ge=0, description="share of the limit used when it fired (0.8 = 80%)")
    dispatch_number: Ordinal = Field(description="the dispatch whose timer fired")


class CaseWarned(_TimerEvent):
    """Yellow light: a case has used a warning share of a limit (default 80%) and is still open."""

    event_type: ClassVar[str] = "case.warned"
    topic: ClassVar[str] = "supervision"


class CaseOverdue(_TimerEvent):
    """Red light: a limit passed with the step not done (超期)."""

    event_type: ClassVar[str] = "case.overdue"
    topic: ClassVar[str] = "supervision"


class CaseNoticeIssued(_Supervised):
    """A rung of the notice ladder for a case that stays overdue (督办单, 挂牌督办, ...).

    ``addressee`` is a role (``department``, ``department_head``,
    ``leadership``), never a person.
    """

    event_type: ClassVar[str] = "case.notice_issued"
    topic: ClassVar[str] = "supervision"

    level: Ordinal
    title: ShortText = Field(description="the notice's name on the ladder, e.g. 督办单")
    addressee: Identifier
    timer: TimerKind
    deadline: AwareDatetime
    overdue_by: Span
    dispatch_number: Ordinal


class CaseReworkOrdered(_Supervised):
    """Verification failed: the case goes back to its department to be done again (返工)."""

    event_type: ClassVar[str] = "case.rework_ordered"
    topic: ClassVar[str] = "supervision"

    rework_count: Ordinal = Field(
        description="rework orders on this case so far, this one included"
    )
    reason: ShortText


class CaseDurations(ValueObject):
    """How long each stage took, in natural time; ``parked`` says how much of it was parked."""

    to_dispatch: Span = Field(description="registered → first dispatched")
    to_handle: Span = Field(description="last dispatched → handled")
    to_verify: Span = Field(description="handled → verified")
    total: Span = Field(description="registered → closed")
    parked: Span = Field(default=timedelta(0), description="time spent parked (挂账)")


class CaseClosed(_Supervised):
    """The case passed verification and is closed (结案/销号)."""

    event_type: ClassVar[str] = "case.closed"
    topic: ClassVar[str] = "supervision"

    on_time: bool = Field(description="handled at or before the handle deadline in force")
    handled_at: AwareDatetime
    verified_at: AwareDatetime
    handle_deadline: AwareDatetime = Field(description="the handle deadline in force when handled")
    durations: CaseDurations
    rework_count: Count
    dispatch_number: Ordinal
    category_code: CategoryCode
    grid_code: GridCode


class CaseRebounded(_Supervised):
    """The same problem is back at the same place after closing (回弹).

    ``case_id`` is the new case; ``department`` is that of the case that
    bounced back, ``area`` that of the place. The second bounce-back raises a
    bureau-wide notice; a place with repeated ones enters the key-problem list.
    """

    event_type: ClassVar[str] = "case.rebounded"
    topic: ClassVar[str] = "supervision"

    place_key: Annotated[str, StringConstraints(min_length=1, max_length=128)] = Field(
        description="what identifies 'the same place' (category and cell or asset)"
    )
    count: Ordinal = Field(description="bounce-backs at this place in the look-back window")
    previous_case_id: Identifier
    category_code: CategoryCode
    grid_code: GridCode
    bureau_notice: bool = Field(description="a bureau-wide notice (全局通报) is due")
    key_problem: bool = Field(description="the place is on the key-problem list (重点问题)")


class CaseLookbackDue(_Supervised):
    """A closed case is due for a look-back (回头看) re-inspection."""

    event_type: ClassVar[str] = "case.lookback_due"
    topic: ClassVar[str] = "supervision"

    due_at: AwareDatetime
    closed_at: AwareDatetime
    grid_code: GridCode
