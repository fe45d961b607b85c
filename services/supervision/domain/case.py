"""A case as supervision sees it, and how each incoming event moves it.

Events of one case arrive over three topics (``cases``, ``assignments``,
``feedback``) in any order, so the state records *when* things happened
(handled at, verified at) rather than a single status, and :func:`settle`
draws the conclusions as soon as what it needs is known: the verification
clock once the case is both dispatched and handled, the closing once it is
also verified, the rework order once a failed verification can be addressed
to a department. Every decision uses the events' own instants, never the
wall clock, so a replay reaches the same state and emits the same events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from services.supervision.domain.rules import ClockKind, Rules
from shared.events.assignments import CaseDispatched, CaseRedispatched
from shared.events.cases import CaseRegistered
from shared.events.envelope import EventData
from shared.events.supervision import CaseClosed, CaseDurations, CaseReworkOrdered

_ZERO = timedelta(0)


@dataclass(frozen=True)
class Dispatch:
    """The dispatch in force: who holds the case, where, and how its clock counts."""

    number: int
    department: str
    area: str
    dispatched_at: datetime
    verify_limit: timedelta
    clock: ClockKind
    category_code: str
    grid_code: str


@dataclass(frozen=True)
class CaseState:
    """Everything supervision keeps about one case."""

    case_id: str
    # The place, from case.registered (a dispatch repeats category and cell).
    category_code: str | None = None
    grid_code: str | None = None
    component_id: str | None = None
    lat: float | None = None
    long: float | None = None
    place_area: str | None = None
    registered_at: datetime | None = None
    place_key: str | None = None
    rebound_of: str | None = None
    # The dispatch in force and its deadlines (moved on when the case was parked).
    dispatch: Dispatch | None = None
    first_dispatched_at: datetime | None = None
    escalated_at: datetime | None = None
    sign_for_due: datetime | None = None
    warn_due: datetime | None = None
    handle_due: datetime | None = None
    # What happened on the ground.
    accepted_at: datetime | None = None
    handled_at: datetime | None = None
    handle_deadline_at_handled: datetime | None = None
    verify_due: datetime | None = None
    verified_at: datetime | None = None
    failed_at: datetime | None = None
    failure_reason: str | None = None
    rework_pending: bool = False
    rework_count: int = 0
    # Lights already shown for the dispatch in force (the instant each was due).
    sign_for_overdue_at: datetime | None = None
    warned_at: datetime | None = None
    handle_overdue_at: datetime | None = None
    verify_overdue_at: datetime | None = None
    notice_level: int = 0
    next_notice_due: datetime | None = None
    # Closing and after.
    closed_at: datetime | None = None
    lookback_due: datetime | None = None
    lookback_done: bool = False
    # Parking (挂账): the clocks stop from parked_at.
    parked_at: datetime | None = None
    parked_total: timedelta = _ZERO

    @property
    def is_closed(self) -> bool:
        return self.closed_at is not None

    @property
    def is_parked(self) -> bool:
        return self.parked_at is not None

    def _since_dispatch(self, instant: datetime | None) -> bool:
        return (
            instant is not None
            and self.dispatch is not None
            and instant >= self.dispatch.dispatched_at
        )

    @property
    def accepted_current(self) -> bool:
        """Signed for under the dispatch in force."""
        return self._since_dispatch(self.accepted_at)

    @property
    def handled_current(self) -> bool:
        """Reported handled under the dispatch in force."""
        return self._since_dispatch(self.handled_at)

    @property
    def escalated_current(self) -> bool:
        """Waiting for a human dispatcher after the dispatch in force: nobody holds it."""
        return self._since_dispatch(self.escalated_at)

    @property
    def verification_settled(self) -> bool:
        """The last handling has had its verdict (passed or failed)."""
        handled = self.handled_at
        if handled is None:
            return False
        verified, failed = self.verified_at, self.failed_at
        return (verified is not None and verified >= handled) or (
            failed is not None and failed >= handled
        )


_FIELDS = frozenset(CaseState.__dataclass_fields__)


@dataclass(frozen=True)
class Emission:
    """An event to publish and its event time."""

    data: EventData
    time: datetime


@dataclass(frozen=True)
class Outcome:
    """A decision: the case's new state and what to publish."""

    state: CaseState
    emissions: tuple[Emission, ...] = ()


def evolve(state: CaseState, **changes: object) -> CaseState:
    """``state`` with ``changes``: ``dataclasses.replace`` without re-running ``__init__``.

    A case has some forty fields and the scheduler evolves thousands of cases
    a second; copying the instance dictionary is an order of magnitude
    cheaper than re-initialising a frozen dataclass field by field.
    """
    unknown = changes.keys() - _FIELDS
    if unknown:
        raise TypeError(f"CaseState has no field {sorted(unknown)}")
    new = object.__new__(CaseState)
    new.__dict__.update(state.__dict__)
    new.__dict__.update(changes)
    return new


def restore(values: dict[str, object]) -> CaseState:
    """A case from every one of its fields, as the store read them (no defaults, no checks).

    The store restores a thousand cases per timer firing; like :func:`evolve`
    this skips the frozen dataclass's field-by-field ``__init__``.
    """
    if values.keys() != _FIELDS:
        raise TypeError(f"CaseState fields differ: {sorted(values.keys() ^ _FIELDS)}")
    state = object.__new__(CaseState)
    state.__dict__.update(values)
    return state


def place_key_of(category_code: str, grid_code: str, component_id: str | None) -> str:
    """What identifies "the same place" for bounce-backs: the asset if known, else the cell."""
    return f"{category_code}@{component_id or grid_code}"


def on_registered(state: CaseState, data: CaseRegistered) -> CaseState:
    """Learn the case's place; a closed case learnt before its registration is completed now."""
    if state.registered_at is not None:
        return state
    return evolve(
        state,
        category_code=data.category_code,
        grid_code=data.grid_code,
        component_id=data.component_id,
        lat=data.lat,
        long=data.long,
        place_area=data.area,
        registered_at=data.registered_at,
        place_key=place_key_of(data.category_code, data.grid_code, data.component_id),
    )


def on_dispatched(
    state: CaseState, data: CaseDispatched | CaseRedispatched, rules: Rules
) -> Outcome:
    """A (re)dispatch supersedes every clock of the previous one.

    A dispatch number not above the one in force is an old dispatch arriving
    late (or a replay) and changes nothing.
    """
    if state.is_closed:
        return Outcome(state)
    if state.dispatch is not None and data.dispatch_number <= state.dispatch.number:
        return Outcome(state)
    deadlines = data.deadlines
    dispatch = Dispatch(
        number=data.dispatch_number,
        department=data.department,
        area=data.area,
        dispatched_at=data.dispatched_at,
        verify_limit=deadlines.verify_limit,
        clock=deadlines.clock,
        category_code=data.category_code,
        grid_code=data.grid_code,
    )
    first = state.first_dispatched_at
    fresh = evolve(
        state,
        dispatch=dispatch,
        category_code=state.category_code or data.category_code,
        grid_code=state.grid_code or data.grid_code,
        first_dispatched_at=data.dispatched_at if first is None else min(first, data.dispatched_at),
        sign_for_due=deadlines.sign_for,
        warn_due=rules.share_of(
            deadlines.clock, data.dispatched_at, deadlines.handle, rules.warning_share
        ),
        handle_due=deadlines.handle,
        verify_due=None,
        rework_count=max(state.rework_count, data.rework_count),
        sign_for_overdue_at=None,
        warned_at=None,
        handle_overdue_at=None,
        verify_overdue_at=None,
        notice_level=0,
        next_notice_due=None,
    )
    if isinstance(data, CaseRedispatched) and data.reason == "extension" and state.accepted_current:
        # Same department, more time: what it signed for stays signed for.
        fresh = evolve(fresh, sign_for_due=None)
    if fresh.handled_current:
        # Handled under this dispatch (the report outran it): its deadline is the one in force.
        fresh = evolve(fresh, handle_deadline_at_handled=None)
    return settle(fresh, rules)


def on_escalated(state: CaseState, at: datetime) -> CaseState:
    """The case waits for a human dispatcher: nobody holds it, so nobody is chased."""
    if state.is_closed:
        return state
    return evolve(state, escalated_at=_latest(state.escalated_at, at))


def on_accepted(state: CaseState, at: datetime) -> CaseState:
    """Signed for (签收): the sign-for clock stops."""
    return evolve(state, accepted_at=_latest(state.accepted_at, at))


def on_handled(state: CaseState, at: datetime, rules: Rules) -> Outcome:
    """Reported handled: the handling clock and its notices stop, verification's starts."""
    if state.is_closed or (state.handled_at is not None and at <= state.handled_at):
        return Outcome(state)
    handled = evolve(
        state,
        handled_at=at,
        handle_deadline_at_handled=None,
        verify_due=None,
        verify_overdue_at=None,
    )
    return settle(handled, rules)


def on_verified(state: CaseState, at: datetime, rules: Rules, *, lookback: bool) -> Outcome:
    """Passed on-site verification: the case closes once its handling is known.

    A look-back check of an already closed case changes nothing here.
    """
    if lookback or state.is_closed:
        return Outcome(state)
    return settle(evolve(state, verified_at=_latest(state.verified_at, at)), rules)


def on_verification_failed(
    state: CaseState, at: datetime, reason: str, rules: Rules, *, lookback: bool
) -> Outcome:
    """Failed verification: rework is ordered (dispatch then redispatches the case)."""
    if lookback or state.is_closed or (state.failed_at is not None and at <= state.failed_at):
        return Outcome(state)
    failed = evolve(state, failed_at=at, failure_reason=reason, rework_pending=True)
    return settle(failed, rules)


def on_parked(state: CaseState, at: datetime) -> CaseState:
    """Parked (挂账): every clock of the case stops where it is."""
    if state.is_closed or state.is_parked:
        return state
    return evolve(state, parked_at=at)


def on_unparked(state: CaseState, at: datetime, rules: Rules) -> CaseState:
    """Back to work: each deadline still ahead at parking gets its remaining time again."""
    parked_at = state.parked_at
    if parked_at is None or at < parked_at:
        return state
    clock: ClockKind = state.dispatch.clock if state.dispatch is not None else "natural"
    # A dispatch made while parked started its clocks then, not at parking.
    paused_from = parked_at
    if state.dispatch is not None and state.dispatch.dispatched_at > paused_from:
        paused_from = state.dispatch.dispatched_at

    def resume(instant: datetime | None) -> datetime | None:
        if instant is None or instant <= paused_from:
            return instant
        return rules.advance(clock, at, rules.span(clock, paused_from, instant))

    return evolve(
        state,
        sign_for_due=resume(state.sign_for_due),
        warn_due=resume(state.warn_due),
        handle_due=resume(state.handle_due),
        verify_due=resume(state.verify_due),
        next_notice_due=resume(state.next_notice_due),
        parked_at=None,
        parked_total=state.parked_total + (at - parked_at),
    )


def settle(state: CaseState, rules: Rules) -> Outcome:
    """Draw every conclusion the known facts allow, each exactly once."""
    dispatch = state.dispatch
    if dispatch is None or state.is_closed:
        return Outcome(state)
    emissions: list[Emission] = []
    handled = state.handled_at
    if handled is not None and state.handled_current:
        if state.handle_deadline_at_handled is None:
            state = evolve(state, handle_deadline_at_handled=state.handle_due)
        if state.verify_due is None:
            state = evolve(
                state, verify_due=rules.advance(dispatch.clock, handled, dispatch.verify_limit)
            )
    if state.rework_pending and state.failed_at is not None:
        count = state.rework_count + 1
        emissions.append(
            Emission(
                CaseReworkOrdered(
                    case_id=state.case_id,
                    department=dispatch.department,
                    area=dispatch.area,
                    rework_count=count,
                    reason=state.failure_reason or "verification failed",
                ),
                state.failed_at,
            )
        )
        state = evolve(state, rework_pending=False, rework_count=count)
    verified = state.verified_at
    if (
        verified is not None
        and handled is not None
        and handled <= verified
        and state.handle_deadline_at_handled is not None
    ):
        closed = _close(state, dispatch, handled, verified, state.handle_deadline_at_handled, rules)
        state = closed.state
        emissions.extend(closed.emissions)
    return Outcome(state, tuple(emissions))


def _close(
    state: CaseState,
    dispatch: Dispatch,
    handled: datetime,
    verified: datetime,
    deadline: datetime,
    rules: Rules,
) -> Outcome:
    parked_total = state.parked_total
    if state.parked_at is not None and verified > state.parked_at:
        parked_total += verified - state.parked_at
    first_dispatch = state.first_dispatched_at or dispatch.dispatched_at
    # Registration not seen yet (topics reordered): count from the first dispatch.
    registered = state.registered_at or first_dispatch
    durations = CaseDurations(
        to_dispatch=_non_negative(first_dispatch - registered),
        to_handle=_non_negative(handled - dispatch.dispatched_at),
        to_verify=_non_negative(verified - handled),
        total=_non_negative(verified - registered),
        parked=parked_total,
    )
    closed = CaseClosed(
        case_id=state.case_id,
        department=dispatch.department,
        area=dispatch.area,
        on_time=handled <= deadline,
        handled_at=handled,
        verified_at=verified,
        handle_deadline=deadline,
        durations=durations,
        rework_count=state.rework_count,
        dispatch_number=dispatch.number,
        category_code=state.category_code or dispatch.category_code,
        grid_code=state.grid_code or dispatch.grid_code,
    )
    sampled = rules.in_lookback_sample(state.case_id)
    return Outcome(
        evolve(
            state,
            closed_at=verified,
            lookback_due=rules.lookback_due(verified) if sampled else None,
            parked_at=None,
            parked_total=parked_total,
        ),
        (Emission(closed, verified),),
    )


def _latest(current: datetime | None, at: datetime) -> datetime:
    return at if current is None or at > current else current


def _non_negative(span: timedelta) -> timedelta:
    return span if span > _ZERO else _ZERO
