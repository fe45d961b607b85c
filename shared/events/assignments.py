"""Events on ``assignments``: dispatch's decisions (DOMAIN.md step 3 and its exception paths).

A dispatch names the department (条) and the area (块) at once and starts the
clocks; every later change of hands or deadlines is a redispatch with its
reason, so a reader of this topic alone knows who holds each case and until
when.
"""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar, Literal

from pydantic import AwareDatetime, Field

from shared.events.envelope import EventData
from shared.events.types import (
    CategoryCode,
    Count,
    Deadlines,
    GridCode,
    Identifier,
    Kind,
    Note,
    Ordinal,
    ShortText,
    Tier,
    Urgency,
)


class _Assignment(EventData):
    """What every dispatch carries: who, where, why, and until when."""

    case_id: Identifier
    department: Identifier = Field(description="lead department (条)")
    area: Identifier = Field(description="responsible area (块): the street office")
    co_departments: list[Identifier] = Field(
        default_factory=list, description="departments assigned alongside the lead"
    )
    rule: ShortText = Field(description="the routing rule that matched, readable by a person")
    rule_id: Identifier | None = Field(default=None, description="id of that rule in the table")
    deadlines: Deadlines
    urgency: Urgency
    tier: Tier
    category_code: CategoryCode
    kind: Kind
    grid_code: GridCode
    dispatch_number: Ordinal = Field(
        description="1 for the first dispatch, +1 for each redispatch; timers belong to one"
    )
    is_rework: bool = False
    rework_count: Count = 0
    dispatched_at: AwareDatetime = Field(description="when the clocks started")


class CaseDispatched(_Assignment):
    """A case's first dispatch (派遣): department, area, co-assignees, the matched rule and deadlines."""

    event_type: ClassVar[str] = "case.dispatched"
    topic: ClassVar[str] = "assignments"


RedispatchReason = Literal["return", "manual", "rework", "extension"]


class CaseRedispatched(_Assignment):
    """A case dispatched again, with new deadlines that replace the previous ones (改派).

    ``return``: the last department said "not ours"; ``manual``: a human
    dispatcher assigned it; ``rework``: verification failed, same department,
    fresh handling deadline; ``extension``: an approved extension re-issued the
    deadlines.
    """

    event_type: ClassVar[str] = "case.redispatched"
    topic: ClassVar[str] = "assignments"

    reason: RedispatchReason
    previous_department: Identifier | None = None
    returns: Count = Field(default=0, description="returns of this case so far")
    extension: timedelta | None = Field(
        default=None, gt=timedelta(0), description="the extension granted, for reason=extension"
    )
    dispatcher_id: Identifier | None = Field(
        default=None, description="the human dispatcher, for reason=manual"
    )


EscalationReason = Literal["returns_exhausted", "no_candidate"]


class CaseEscalated(EventData):
    """A case dispatch cannot place by rule; it waits in a human dispatcher's queue (逐级上报)."""

    event_type: ClassVar[str] = "case.escalated"
    topic: ClassVar[str] = "assignments"

    case_id: Identifier
    reason: EscalationReason
    detail: Note = ""
    returns: Count
    last_department: Identifier | None = None
    tried_departments: list[Identifier] = Field(default_factory=list)
    area: Identifier
    category_code: CategoryCode
    grid_code: GridCode
    urgency: Urgency


ExtensionRefusal = Literal["tier_not_eligible", "exceeds_maximum", "case_not_open"]


class CaseExtensionRefused(EventData):
    """Dispatch's refusal of an extension request (延期); the deadlines stay as they were.

    A granted extension is not this event but a ``case.redispatched`` with
    reason ``extension``.
    """

    event_type: ClassVar[str] = "case.extension_refused"
    topic: ClassVar[str] = "assignments"

    case_id: Identifier
    department: Identifier
    area: Identifier
    requested: timedelta = Field(gt=timedelta(0))
    reason: ExtensionRefusal
    message: ShortText
