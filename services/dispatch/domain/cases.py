"""A case in dispatch's hands, and every decision about it.

Each function takes the case as it stands, one fact (an event or a
dispatcher's order), the time of that fact and the city's rules, and returns
the case as it stands after it with the events to publish. Nothing here reads
a clock, a database or the broker: replaying the same facts gives the same
decisions.

The lifecycle is small: a registered case is dispatched to the first
candidate of its route, or escalated to a human dispatcher when there is
none. A return ("not ours") passes it to the next candidate until the
returns run out or the candidates do, then it is escalated. A dispatcher's
assignment, a rework order and an extension each redispatch it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

from services.dispatch.domain.deadlines import (
    ClockKind,
    LimitPlan,
    extend,
    extension_amount,
    maximum_amount,
)
from services.dispatch.domain.routing import Route, clip, co_assigned, locality_of, route
from shared.calendar import WorkCalendar
from shared.events import (
    CaseDispatched,
    CaseEscalated,
    CaseExtensionGranted,
    CaseExtensionRefused,
    CaseExtensionRequested,
    CaseRedispatched,
    CaseRegistered,
    CaseReturned,
    CaseReworkOrdered,
    Deadlines,
    EventData,
)
from shared.events.assignments import EscalationReason, ExtensionRefusal, RedispatchReason
from shared.events.types import Kind, Tier, Urgency
from shared.reference import Category, HandlingTier, ReferenceData

Status = Literal["dispatched", "escalated"]

#: ``rule_id`` of assignments a human dispatcher made.
MANUAL_RULE = "manual"
#: ``rule_id`` of a case whose category is not in the catalogue.
UNKNOWN_CATEGORY_RULE = "unknown-category"


@dataclass(frozen=True)
class Rulebook:
    """The city's rules a decision needs: reference data (routing, limits, settings) and calendar.

    Routes and limit plans depend only on the reference data and a few words
    of the case (category, street, area class, urgency), so they are worked
    out once per combination and remembered: the sample city has under a
    thousand of them, and a dispatch at the thousands-per-second rate should
    not walk the rule table each time.
    """

    ref: ReferenceData
    calendar: WorkCalendar
    _routes: dict[tuple[str, str, str, str], Route] = field(
        default_factory=dict, repr=False, compare=False
    )
    _plans: dict[tuple[str, str, bool, str], LimitPlan] = field(
        default_factory=dict, repr=False, compare=False
    )

    @classmethod
    def of(cls, ref: ReferenceData) -> Rulebook:
        return cls(ref, WorkCalendar.from_data(ref.calendar))

    @property
    def max_returns(self) -> int:
        return self.ref.dispatch.max_returns

    def route(self, category: Category, street: str, area_class: str, fallback_area: str) -> Route:
        key = (category.code, street, area_class, fallback_area)
        found = self._routes.get(key)
        if found is None:
            if len(self._routes) >= _MEMO_LIMIT:
                self._routes.clear()  # only streets unknown to the data can grow it this far
            found = route(self.ref, category, street, area_class, fallback_area=fallback_area)
            self._routes[key] = found
        return found

    def plan(self, category: Category, area_class: str, urgent: bool, tier: str) -> LimitPlan:
        """The limits of a case; a case of another tier than its category's takes the tier's
        handling limit from dispatch.json, where it gives one."""
        key = (category.code, area_class, urgent, tier)
        found = self._plans.get(key)
        if found is None:
            by_tier = self.ref.dispatch.handle_limit_by_tier
            tier_handle = by_tier.get(HandlingTier(tier)) if tier != category.tier else None
            found = LimitPlan.of(category, area_class, urgent, self.calendar, tier_handle)
            self._plans[key] = found
        return found


_MEMO_LIMIT = 100_000


@dataclass(frozen=True)
class CaseState:
    """What dispatch knows of one case."""

    case_id: str
    category_code: str
    kind: Kind
    grid_code: str
    street: str
    area: str
    area_class: str
    urgency: Urgency
    tier: Tier
    registered_at: datetime
    status: Status
    candidates: tuple[str, ...]
    co_departments: tuple[str, ...]
    rule_id: str
    rule: str
    department: str | None = None
    last_department: str | None = None
    returned_by: tuple[str, ...] = ()
    returns: int = 0
    dispatch_number: int = 0
    rework_count: int = 0
    is_rework: bool = False
    extension_total: timedelta = timedelta(0)
    dispatched_at: datetime | None = None
    deadlines: Deadlines | None = None
    handle_clock: ClockKind = "working"
    #: Facts already answered (extension requests and grants), so a second copy counts once.
    answered: frozenset[str] = frozenset()

    @property
    def urgent(self) -> bool:
        return self.urgency == "urgent"


@dataclass(frozen=True)
class Outcome:
    """The case after a fact, and what to publish; ``state`` None means nothing changed."""

    state: CaseState | None
    events: tuple[EventData, ...] = ()
    note: str = ""


def _ignored(note: str) -> Outcome:
    return Outcome(None, (), note)


class ManualDispatchRefused(ValueError):
    """A dispatcher's assignment that cannot be carried out; ``field`` names the input at fault."""

    def __init__(self, code: str, field: str | None, message: str, *, conflict: bool) -> None:
        super().__init__(message)
        self.code = code
        self.field = field
        self.message = message
        #: True when the input is valid but the case's state forbids it (409, not 422).
        self.conflict = conflict


# -- registration -----------------------------------------------------------------


def register(case: CaseRegistered, at: datetime, book: Rulebook) -> Outcome:
    """A newly registered case: dispatch it to its first candidate, or escalate it."""
    category = book.ref.category(case.category_code)
    if category is None:
        state = _new_case(
            case,
            at,
            area=locality_of(book.ref, case.street) or case.area,
            candidates=(),
            co_departments=(),
            rule_id=UNKNOWN_CATEGORY_RULE,
            rule=f"category {case.category_code} is not in the catalogue",
            clock="working",
        )
        detail = f"category {case.category_code} is not in the catalogue: no rule can route it"
        return _escalate(state, "no_candidate", detail)

    found = book.route(category, case.street, case.area_class, case.area)
    plan = book.plan(category, case.area_class, case.urgency == "urgent", case.tier)
    lead = found.lead
    state = _new_case(
        case,
        at,
        area=found.area,
        candidates=found.candidates,
        co_departments=found.co_departments,
        rule_id=found.rule_id,
        rule=found.rule,
        clock=plan.handle_clock,
        lead=lead,
        deadlines=plan.deadlines(at, book.calendar) if lead is not None else None,
    )
    if lead is None:
        return _escalate(state, "no_candidate", f"no candidate by the rules: {found.rule}")
    event = CaseDispatched.model_validate(
        _assignment(state, lead, rule_id=found.rule_id, rule=found.rule)
    )
    return Outcome(state, (event,))


def _new_case(
    case: CaseRegistered,
    at: datetime,
    *,
    area: str,
    candidates: tuple[str, ...],
    co_departments: tuple[str, ...],
    rule_id: str,
    rule: str,
    clock: ClockKind,
    lead: str | None = None,
    deadlines: Deadlines | None = None,
) -> CaseState:
    """A case as its registration finds it: dispatched to ``lead`` at ``at``, or waiting."""
    return CaseState(
        case_id=case.case_id,
        category_code=case.category_code,
        kind=case.kind,
        grid_code=case.grid_code,
        street=case.street,
        area=area,
        area_class=case.area_class,
        urgency=case.urgency,
        tier=case.tier,
        registered_at=at,
        status="escalated" if lead is None else "dispatched",
        candidates=candidates,
        co_departments=co_departments,
        rule_id=rule_id,
        rule=rule,
        department=lead,
        last_department=lead,
        dispatch_number=0 if lead is None else 1,
        dispatched_at=None if lead is None else at,
        deadlines=deadlines,
        handle_clock=clock,
    )


# -- returns ----------------------------------------------------------------------


def apply_return(state: CaseState, returned: CaseReturned, at: datetime, book: Rulebook) -> Outcome:
    """A department says "not ours": pass the case to the next candidate, or escalate it."""
    department = returned.department
    if state.status != "dispatched" or state.department != department:
        return _ignored(f"stale return: the case is not with {department}")
    if department in state.returned_by and state.dispatched_at and at < state.dispatched_at:
        # The department returned the case before and holds it again now: a copy of the
        # old return, sent before this dispatch, must not send it away a second time.
        return _ignored(f"a copy of an earlier return by {department}")
    returned_by = state.returned_by + (department,)
    after = replace(
        state,
        returns=state.returns + 1,
        returned_by=returned_by,
        last_department=department,
    )
    why = f"returned by {department}: {returned.reason}"
    if returned.suggested_department:
        why += f" (suggests {returned.suggested_department})"
    if after.returns >= book.max_returns:
        return _escalate(
            after, "returns_exhausted", f"{why}; {after.returns} returns reached the limit"
        )
    following = next((c for c in state.candidates if c not in returned_by), None)
    category = book.ref.category(state.category_code)
    if following is None or category is None:
        return _escalate(after, "no_candidate", f"{why}; no candidate left")
    return _dispatch(
        after,
        category,
        following,
        at,
        book,
        rule_id=state.rule_id,
        rule=clip(f"next candidate after a return by {department}: {state.rule}"),
        reason="return",
        previous=department,
    )


# -- rework -------------------------------------------------------------------------


def apply_rework(
    state: CaseState, order: CaseReworkOrdered, at: datetime, book: Rulebook
) -> Outcome:
    """Verification failed: the same department does it again, with a fresh handling deadline."""
    if order.rework_count <= state.rework_count:
        return _ignored(f"rework {order.rework_count} is already applied")
    after = replace(state, rework_count=order.rework_count)
    holder = state.department
    if holder is None and book.ref.department(order.department) is not None:
        # Escalated since it was handled: the department that did the work does it again.
        holder = order.department
    category = book.ref.category(state.category_code)
    if holder is None or category is None:
        return Outcome(after, (), "rework recorded; no department to send it to")
    return _dispatch(
        after,
        category,
        holder,
        at,
        book,
        rule_id=state.rule_id,
        rule=clip(f"rework {order.rework_count} ({order.reason}): {state.rule}"),
        reason="rework",
        previous=holder,
        is_rework=True,
    )


# -- extensions ---------------------------------------------------------------------


def answer_extension_request(
    state: CaseState,
    request: CaseExtensionRequested,
    request_id: str,
    at: datetime,
    book: Rulebook,
) -> Outcome:
    """Grant an extension within the tier's maximum, or refuse it with the reason."""
    fact = "request:" + _digest(request.department, str(request.requested), request.reason)
    if fact in state.answered:
        return _ignored("a copy of an extension request already answered")
    answered = state.answered | {fact}
    if state.status != "dispatched" or state.department != request.department:
        holder = state.department or "nobody (it waits for a dispatcher)"
        return _refuse(
            replace(state, answered=answered),
            request,
            "case_not_open",
            f"the case is not open with {request.department}: it is with {holder}",
        )
    limit = book.ref.dispatch.extension_limit(state.tier)
    if limit is None:
        return _refuse(
            replace(state, answered=answered),
            request,
            "tier_not_eligible",
            f"only cases of an extensible tier may be extended; this one is {state.tier}",
        )
    amount = extension_amount(request.requested, state.handle_clock, book.calendar)
    maximum = maximum_amount(limit, state.handle_clock, book.calendar)
    if state.extension_total + amount > maximum:
        left = max(maximum - state.extension_total, timedelta(0))
        return _refuse(
            replace(state, answered=answered),
            request,
            "exceeds_maximum",
            f"a {state.tier} case may be extended by at most {limit.value:g} {limit.unit.value};"
            f" {_span(state.extension_total)} granted so far, {_span(left)} left,"
            f" {_span(amount)} asked",
        )
    return _extend(
        replace(state, answered=answered | {f"granted:{request_id}"}),
        request.requested,
        amount,
        at,
        book,
        why=f"extension of {_span(amount)} granted to {request.department}: {request.reason}",
    )


def apply_extension_grant(
    state: CaseState,
    grant: CaseExtensionGranted,
    grant_id: str,
    at: datetime,
    book: Rulebook,
) -> Outcome:
    """The command centre grants an extension, whatever the tier and the maximum say."""
    key = f"granted:{grant.request_event_id or grant_id}"
    if key in state.answered:
        return _ignored("that extension is already granted")
    if state.status != "dispatched" or state.deadlines is None:
        return _ignored("no department holds the case: there is no deadline to extend")
    amount = extension_amount(grant.granted, state.handle_clock, book.calendar)
    return _extend(
        replace(state, answered=state.answered | {key}),
        grant.granted,
        amount,
        at,
        book,
        why=f"extension of {_span(amount)} granted by the command centre ({grant.actor_id})",
    )


def _extend(
    state: CaseState,
    granted: timedelta,
    amount: timedelta,
    at: datetime,
    book: Rulebook,
    *,
    why: str,
) -> Outcome:
    assert state.deadlines is not None and state.department is not None
    assert state.dispatched_at is not None
    deadlines = state.deadlines.model_copy(
        update={"handle": extend(state.deadlines.handle, amount, state.handle_clock, book.calendar)}
    )
    # The clocks keep their start: only the handling deadline moves.
    after = replace(
        state,
        dispatch_number=state.dispatch_number + 1,
        deadlines=deadlines,
        extension_total=state.extension_total + amount,
    )
    event = CaseRedispatched.model_validate(
        {
            **_assignment(
                after, state.department, rule_id=state.rule_id, rule=clip(f"{why}: {state.rule}")
            ),
            "reason": "extension",
            "previous_department": state.department,
            "returns": state.returns,
            "extension": granted,
        }
    )
    return Outcome(after, (event,))


def _refuse(
    state: CaseState, request: CaseExtensionRequested, reason: ExtensionRefusal, message: str
) -> Outcome:
    return Outcome(
        state,
        (
            CaseExtensionRefused(
                case_id=state.case_id,
                department=request.department,
                area=state.area,
                requested=request.requested,
                reason=reason,
                message=clip(message),
            ),
        ),
    )


# -- a human dispatcher --------------------------------------------------------------


def assign_manually(
    state: CaseState,
    department: str,
    dispatcher_id: str,
    at: datetime,
    book: Rulebook,
    *,
    co_departments: tuple[str, ...] | None = None,
    note: str = "",
) -> Outcome:
    """A dispatcher assigns the case to ``department`` (改派); raises ManualDispatchRefused."""
    if book.ref.department(department) is None:
        raise ManualDispatchRefused(
            "unknown_department",
            "department",
            f"no department {department!r} in the reference data",
            conflict=False,
        )
    for index, other in enumerate(co_departments or ()):
        if book.ref.department(other) is None:
            raise ManualDispatchRefused(
                "unknown_department",
                f"co_departments[{index}]",
                f"no department {other!r} in the reference data",
                conflict=False,
            )
    if state.status == "dispatched" and state.department == department:
        raise ManualDispatchRefused(
            "already_assigned",
            "department",
            f"the case is already with {department}",
            conflict=True,
        )
    category = book.ref.category(state.category_code)
    if category is None:
        raise ManualDispatchRefused(
            "unknown_category",
            None,
            f"the case's category {state.category_code} is not in the catalogue:"
            " its time limits are unknown",
            conflict=True,
        )
    text = f"manual: dispatcher {dispatcher_id} assigned {department}"
    if note:
        text += f" ({note})"
    after = state if co_departments is None else replace(state, co_departments=co_departments)
    return _dispatch(
        after,
        category,
        department,
        at,
        book,
        rule_id=MANUAL_RULE,
        rule=clip(f"{text}; the rules said: {state.rule}"),
        reason="manual",
        previous=state.department or state.last_department,
        dispatcher_id=dispatcher_id,
    )


# -- shared steps ---------------------------------------------------------------------


def _dispatch(
    state: CaseState,
    category: Category,
    department: str,
    at: datetime,
    book: Rulebook,
    *,
    rule_id: str,
    rule: str,
    reason: RedispatchReason | None,
    previous: str | None = None,
    is_rework: bool = False,
    dispatcher_id: str | None = None,
) -> Outcome:
    """Hand the case to ``department`` with fresh deadlines from ``at``.

    The first dispatch of a case is a ``case.dispatched``, whatever brought it
    about (a rule, or a dispatcher for a case no rule could place), so that
    every follower sees one first dispatch per case; later ones are
    ``case.redispatched`` with their reason.
    """
    plan = book.plan(category, state.area_class, state.urgent, state.tier)
    deadlines = plan.deadlines(at, book.calendar)
    after = replace(
        state,
        status="dispatched",
        department=department,
        last_department=department,
        dispatch_number=state.dispatch_number + 1,
        is_rework=is_rework,
        dispatched_at=at,
        deadlines=deadlines,
    )
    fields = _assignment(after, department, rule_id=rule_id, rule=rule)
    event: EventData
    if state.dispatch_number == 0:
        event = CaseDispatched.model_validate(fields)
    else:
        event = CaseRedispatched.model_validate(
            {
                **fields,
                "reason": reason or "manual",
                "previous_department": previous,
                "returns": state.returns,
                "dispatcher_id": dispatcher_id,
            }
        )
    return Outcome(after, (event,))


def _assignment(state: CaseState, department: str, *, rule_id: str, rule: str) -> dict[str, object]:
    assert state.deadlines is not None and state.dispatched_at is not None
    return {
        "case_id": state.case_id,
        "department": department,
        "area": state.area,
        "co_departments": list(co_assigned(state.co_departments, department)),
        "rule": rule,
        "rule_id": rule_id,
        "deadlines": state.deadlines,
        "urgency": state.urgency,
        "tier": state.tier,
        "category_code": state.category_code,
        "kind": state.kind,
        "grid_code": state.grid_code,
        "dispatch_number": state.dispatch_number,
        "is_rework": state.is_rework,
        "rework_count": state.rework_count,
        "dispatched_at": state.dispatched_at,
    }


def _escalate(state: CaseState, reason: EscalationReason, detail: str) -> Outcome:
    after = replace(state, status="escalated", department=None)
    event = CaseEscalated(
        case_id=state.case_id,
        reason=reason,
        detail=detail[:2000],
        returns=state.returns,
        last_department=state.last_department,
        tried_departments=list(state.returned_by),
        area=state.area,
        category_code=state.category_code,
        grid_code=state.grid_code,
        urgency=state.urgency,
    )
    return Outcome(after, (event,))


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


def _span(span: timedelta) -> str:
    """A span for a message: ``15h`` or ``1h30m``; working time, so never in days."""
    minutes = int(span.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    if hours and minutes:
        return f"{hours}h{minutes:02d}m"
    return f"{hours}h" if hours else f"{minutes}m"


#: Event types that change a known case; one arriving before its case is parked until then.
FOLLOW_UP_TYPES = (
    CaseReturned.event_type,
    CaseReworkOrdered.event_type,
    CaseExtensionRequested.event_type,
    CaseExtensionGranted.event_type,
)


def apply(
    state: CaseState, data: EventData, event_id: str, at: datetime, book: Rulebook
) -> Outcome:
    """Apply one follow-up event (see FOLLOW_UP_TYPES) to a known case."""
    if isinstance(data, CaseReturned):
        return apply_return(state, data, at, book)
    if isinstance(data, CaseReworkOrdered):
        return apply_rework(state, data, at, book)
    if isinstance(data, CaseExtensionRequested):
        return answer_extension_request(state, data, event_id, at, book)
    if isinstance(data, CaseExtensionGranted):
        return apply_extension_grant(state, data, event_id, at, book)
    return _ignored(f"{data.event_type} does not concern dispatch")
