"""Deadline timers: which a case has armed, and what each does when it fires.

The timers of a case are a function of its state (:func:`armed_timers`): the
store keeps them in a table only so the scheduler can find the next due one
by index and several instances can claim them. Firing (:func:`fire_due`)
checks the state again, so a timer made stale by an event that raced it
fires nothing, and each light is shown once per dispatch because the state
records it.

Kinds: ``sign_for`` (overdue if not signed for), ``handle_warning`` (yellow at
the warning share of the handling limit), ``handle`` (overdue, then the notice
ladder), ``notice`` (the next rung of the ladder, ``level`` 1..n),
``verify`` (the inspector's limit after handling), ``lookback`` (回头看 of a
sampled closed case).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from services.supervision.domain.case import CaseState, Dispatch, Emission, evolve
from services.supervision.domain.rules import Rules
from shared.events.supervision import (
    CaseLookbackDue,
    CaseNoticeIssued,
    CaseOverdue,
    CaseWarned,
)
from shared.events.types import TimerKind

TimerName = Literal["sign_for", "handle_warning", "handle", "notice", "verify", "lookback"]
TIMER_NAMES: tuple[TimerName, ...] = (
    "sign_for",
    "handle_warning",
    "handle",
    "notice",
    "verify",
    "lookback",
)
# Timers due at the same instant fire in this order (a warning before its overdue).
_ORDER = {name: index for index, name in enumerate(TIMER_NAMES)}
# More firings than this for one case in one go would mean a rule that re-arms itself.
_MAX_FIRINGS = 64


#: The only fields of a case that firing changes (the store saves just these).
LIGHT_FIELDS = frozenset(
    {
        "sign_for_overdue_at",
        "warned_at",
        "handle_overdue_at",
        "verify_overdue_at",
        "notice_level",
        "next_notice_due",
        "lookback_done",
    }
)


@dataclass(frozen=True)
class Timer:
    """One armed timer: what it chases (``deadline``) and when it fires (``due_at``)."""

    kind: TimerName
    due_at: datetime
    deadline: datetime
    dispatch_number: int
    level: int = 0


@dataclass(frozen=True)
class Fired:
    """The outcome of firing a case's due timers, and the timers it has armed after."""

    state: CaseState
    emissions: tuple[Emission, ...]
    timers: tuple[Timer, ...]
    armed: tuple[Timer, ...]


@dataclass(frozen=True)
class OverdueStatus:
    """Why a case shows red now: which limit passed, when, and how far up the ladder it is."""

    timer: TimerKind
    deadline: datetime
    notice_level: int


def armed_timers(state: CaseState, rules: Rules) -> tuple[Timer, ...]:
    """The timers the case has armed now (paused ones included while it is parked)."""
    dispatch = state.dispatch
    if dispatch is None:
        return ()
    number = dispatch.number
    if state.is_closed:
        if state.lookback_due is not None and not state.lookback_done:
            return (Timer("lookback", state.lookback_due, state.lookback_due, number),)
        return ()
    if state.escalated_current:
        return ()
    timers: list[Timer] = []
    handled = state.handled_current
    if (
        state.sign_for_due is not None
        and state.sign_for_overdue_at is None
        and not state.accepted_current
        and not handled
    ):
        timers.append(Timer("sign_for", state.sign_for_due, state.sign_for_due, number))
    if state.handle_due is not None and not handled:
        if state.warn_due is not None and state.warned_at is None:
            timers.append(Timer("handle_warning", state.warn_due, state.handle_due, number))
        if state.handle_overdue_at is None:
            timers.append(Timer("handle", state.handle_due, state.handle_due, number))
        elif state.next_notice_due is not None and rules.rung(state.notice_level + 1):
            timers.append(
                Timer(
                    "notice",
                    state.next_notice_due,
                    state.handle_due,
                    number,
                    level=state.notice_level + 1,
                )
            )
    if (
        handled
        and state.verify_due is not None
        and state.verify_overdue_at is None
        and not state.verification_settled
    ):
        timers.append(Timer("verify", state.verify_due, state.verify_due, number))
    return tuple(timers)


def next_due(state: CaseState, rules: Rules) -> datetime | None:
    """When the case next needs the scheduler (None if nothing is armed or it is parked)."""
    return first_due(state, armed_timers(state, rules))


def first_due(state: CaseState, armed: Sequence[Timer]) -> datetime | None:
    """:func:`next_due` of a case whose armed timers are already known."""
    if state.is_parked or not armed:
        return None
    return min(timer.due_at for timer in armed)


def fire_due(state: CaseState, now: datetime, rules: Rules) -> Fired:
    """Fire every timer of the case due at ``now``, earliest first.

    A fired timer may arm the next (overdue arms the first notice, a notice
    the next rung); one due already fires in the same go. Events carry the
    instant the timer was due, not the firing instant, so a late firing (a
    restart, a backlog) reports the same facts.
    """
    emissions: list[Emission] = []
    fired: list[Timer] = []
    armed = armed_timers(state, rules)
    if state.is_parked:
        return Fired(state, (), (), armed)
    for _ in range(_MAX_FIRINGS):
        due = [timer for timer in armed if timer.due_at <= now]
        if not due:
            break
        timer = min(due, key=lambda t: (t.due_at, _ORDER[t.kind], t.level))
        state, emission = _fire(state, timer, rules)
        emissions.append(emission)
        fired.append(timer)
        armed = armed_timers(state, rules)
    return Fired(state, tuple(emissions), tuple(fired), armed)


def _fire(state: CaseState, timer: Timer, rules: Rules) -> tuple[CaseState, Emission]:
    dispatch = state.dispatch
    assert dispatch is not None, "only a dispatched case has timers"
    at = timer.due_at
    if timer.kind == "sign_for":
        return (
            evolve(state, sign_for_overdue_at=at),
            Emission(_overdue(state, dispatch, "sign_for", timer), at),
        )
    if timer.kind == "handle_warning":
        warned = CaseWarned(
            case_id=state.case_id,
            department=dispatch.department,
            area=dispatch.area,
            timer="handle",
            deadline=timer.deadline,
            share_used=rules.warning_share,
            dispatch_number=dispatch.number,
        )
        return evolve(state, warned_at=at), Emission(warned, at)
    if timer.kind == "handle":
        first = rules.rung(1)
        return (
            evolve(
                state,
                handle_overdue_at=at,
                notice_level=0,
                next_notice_due=(
                    rules.notice_due(dispatch.clock, timer.deadline, first) if first else None
                ),
            ),
            Emission(_overdue(state, dispatch, "handle", timer), at),
        )
    if timer.kind == "notice":
        rung = rules.rung(timer.level)
        assert rung is not None, "a notice timer is armed only for a rung of the ladder"
        following = rules.rung(timer.level + 1)
        notice = CaseNoticeIssued(
            case_id=state.case_id,
            department=dispatch.department,
            area=dispatch.area,
            level=timer.level,
            title=rung.name_zh,
            addressee=rung.addressee.value,
            timer="handle",
            deadline=timer.deadline,
            overdue_by=at - timer.deadline,
            dispatch_number=dispatch.number,
        )
        return (
            evolve(
                state,
                notice_level=timer.level,
                next_notice_due=(
                    rules.notice_due(dispatch.clock, at, following) if following else None
                ),
            ),
            Emission(notice, at),
        )
    if timer.kind == "verify":
        return (
            evolve(state, verify_overdue_at=at),
            Emission(_overdue(state, dispatch, "verify", timer), at),
        )
    closed_at = state.closed_at
    assert closed_at is not None, "a look-back timer is armed only for a closed case"
    lookback = CaseLookbackDue(
        case_id=state.case_id,
        department=dispatch.department,
        area=dispatch.area,
        due_at=at,
        closed_at=closed_at,
        grid_code=state.grid_code or dispatch.grid_code,
    )
    return evolve(state, lookback_done=True), Emission(lookback, at)


def _overdue(state: CaseState, dispatch: Dispatch, kind: TimerKind, timer: Timer) -> CaseOverdue:
    return CaseOverdue(
        case_id=state.case_id,
        department=dispatch.department,
        area=dispatch.area,
        timer=kind,
        deadline=timer.deadline,
        share_used=1.0,
        dispatch_number=dispatch.number,
    )


def overdue_status(state: CaseState) -> OverdueStatus | None:
    """The red light the case shows now, if any; the handling limit outranks the others."""
    if state.dispatch is None or state.is_closed or state.escalated_current:
        return None
    handled = state.handled_current
    if state.handle_overdue_at is not None and state.handle_due is not None and not handled:
        return OverdueStatus("handle", state.handle_due, state.notice_level)
    if (
        state.sign_for_overdue_at is not None
        and state.sign_for_due is not None
        and not handled
        and not state.accepted_current
    ):
        return OverdueStatus("sign_for", state.sign_for_due, 0)
    if (
        state.verify_overdue_at is not None
        and state.verify_due is not None
        and handled
        and not state.verification_settled
    ):
        return OverdueStatus("verify", state.verify_due, 0)
    return None
