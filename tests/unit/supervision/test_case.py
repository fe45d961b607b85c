"""Verification, closing, rework and look-back, and order tolerance of the case state."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from services.supervision.domain.case import (
    CaseState,
    Outcome,
    on_accepted,
    on_dispatched,
    on_handled,
    on_parked,
    on_registered,
    on_unparked,
    on_verification_failed,
    on_verified,
)
from services.supervision.domain.rules import sample_point
from services.supervision.domain.timers import armed_timers, fire_due
from shared.events.supervision import (
    CaseClosed,
    CaseDurations,
    CaseLookbackDue,
    CaseReworkOrdered,
)
from shared.reference.supervision import LookbackRule
from tests.unit.supervision.helpers import (
    CASE,
    CST,
    T0,
    dispatched,
    redispatched,
    registered,
    rules,
)

R = rules()
NO_LOOKBACK = rules(lookback=LookbackRule(after_days=7, sample_share=0.0))
ALL_LOOKBACK = rules(lookback=LookbackRule(after_days=7, sample_share=1.0))


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=CST)


def closed_event(outcome: Outcome) -> CaseClosed:
    events = [e.data for e in outcome.emissions if isinstance(e.data, CaseClosed)]
    assert len(events) == 1, outcome.emissions
    return events[0]


def test_a_case_handled_in_time_and_verified_closes_on_time_with_its_durations() -> None:
    state = on_registered(CaseState(CASE), registered(at(17, 8, 50)))
    state = on_dispatched(state, dispatched(at(17, 9)), R).state
    state = on_handled(state, at(17, 11), R).state
    outcome = on_verified(state, at(17, 11, 20), R, lookback=False)
    closed = closed_event(outcome)
    assert closed.on_time is True
    assert closed.handle_deadline == at(17, 12)
    assert closed.durations == CaseDurations(
        to_dispatch=timedelta(minutes=10),
        to_handle=timedelta(hours=2),
        to_verify=timedelta(minutes=20),
        total=timedelta(hours=2, minutes=30),
    )
    assert (closed.dispatch_number, closed.rework_count) == (1, 0)
    assert outcome.emissions[0].time == at(17, 11, 20)
    assert outcome.state.closed_at == at(17, 11, 20)


def test_a_case_handled_late_closes_late_against_the_deadline_in_force() -> None:
    state = on_dispatched(CaseState(CASE), dispatched(at(17, 9)), R).state
    state = on_handled(state, at(17, 12, 1), R).state
    assert closed_event(on_verified(state, at(17, 13, 40), R, lookback=False)).on_time is False


def test_handled_exactly_at_the_deadline_is_on_time() -> None:
    state = on_dispatched(CaseState(CASE), dispatched(at(17, 9)), R).state
    state = on_handled(state, at(17, 12), R).state
    assert closed_event(on_verified(state, at(17, 13, 40), R, lookback=False)).on_time is True


def test_an_extension_moves_the_deadline_that_decides_on_time() -> None:
    state = on_dispatched(CaseState(CASE), dispatched(at(17, 9)), R).state
    state = on_dispatched(
        state, redispatched(at(17, 11), number=2, reason="extension", handle=timedelta(days=1)), R
    ).state
    state = on_handled(state, at(18, 10), R).state
    closed = closed_event(on_verified(state, at(18, 10, 15), R, lookback=False))
    assert (closed.on_time, closed.handle_deadline, closed.dispatch_number) == (
        True,
        at(18, 11),
        2,
    )


def test_failed_verification_orders_rework_counted_and_the_redispatch_rearms() -> None:
    state = on_dispatched(CaseState(CASE), dispatched(at(17, 9)), R).state
    state = on_handled(state, at(17, 10), R).state
    failed = on_verification_failed(state, at(17, 10, 20), "still missing", R, lookback=False)
    [order] = [e.data for e in failed.emissions]
    assert isinstance(order, CaseReworkOrdered)
    assert (order.rework_count, order.reason, order.department) == (
        1,
        "still missing",
        "water-supply",
    )
    assert armed_timers(failed.state, R) == (), (
        "verified (failed): nothing to chase until redispatch"
    )

    rework = on_dispatched(failed.state, redispatched(at(17, 10, 30), number=2), R).state
    assert [t.kind for t in armed_timers(rework, R)] == ["sign_for", "handle_warning", "handle"]
    rework = on_handled(rework, at(17, 11), R).state
    again = on_verification_failed(rework, at(17, 11, 10), "not clean", R, lookback=False)
    assert [e.data.rework_count for e in again.emissions] == [2]  # type: ignore[attr-defined]

    third = on_dispatched(again.state, redispatched(at(17, 13, 30), number=3), R).state
    third = on_handled(third, at(17, 14), R).state
    closed = closed_event(on_verified(third, at(17, 14, 10), R, lookback=False))
    assert (closed.rework_count, closed.dispatch_number) == (2, 3)


def test_a_repeated_or_older_verdict_changes_nothing() -> None:
    state = on_dispatched(CaseState(CASE), dispatched(at(17, 9)), R).state
    state = on_handled(state, at(17, 10), R).state
    failed = on_verification_failed(state, at(17, 10, 20), "x", R, lookback=False).state
    assert on_verification_failed(failed, at(17, 10, 20), "x", R, lookback=False).emissions == ()
    closed = on_verified(on_handled(failed, at(17, 11), R).state, at(17, 12), R, lookback=False)
    assert on_verified(closed.state, at(17, 13), R, lookback=False).emissions == ()
    assert on_handled(closed.state, at(17, 14), R).state == closed.state


def test_a_look_back_check_neither_closes_nor_reworks() -> None:
    state = on_dispatched(CaseState(CASE), dispatched(at(17, 9)), R).state
    state = on_handled(state, at(17, 10), R).state
    assert on_verified(state, at(17, 10, 5), R, lookback=True).state == state
    assert on_verification_failed(state, at(17, 10, 5), "x", R, lookback=True).state == state


def test_parked_time_is_reported_in_the_durations() -> None:
    state = on_dispatched(CaseState(CASE), dispatched(at(17, 9)), R).state
    state = on_parked(state, at(17, 10))
    state = on_unparked(state, at(19, 10), R)
    state = on_handled(state, at(19, 11), R).state
    closed = closed_event(on_verified(state, at(19, 11, 10), R, lookback=False))
    assert closed.durations.parked == timedelta(days=2)
    assert closed.handle_deadline == at(19, 12), "the deadline moved on by the parked time"
    assert closed.on_time is True


# -- order tolerance ---------------------------------------------------------------

Step = Callable[[CaseState], Outcome]

STEPS: dict[str, Step] = {
    "registered": lambda s: Outcome(on_registered(s, registered(at(17, 8, 50)))),
    "dispatched": lambda s: on_dispatched(s, dispatched(at(17, 9)), NO_LOOKBACK),
    "accepted": lambda s: Outcome(on_accepted(s, at(17, 9, 20))),
    "handled": lambda s: on_handled(s, at(17, 10), NO_LOOKBACK),
    "verified": lambda s: on_verified(s, at(17, 10, 25), NO_LOOKBACK, lookback=False),
}


def _run(order: tuple[str, ...]) -> tuple[CaseState, list[object]]:
    emitted: list[object] = []
    state = CaseState(CASE)
    for name in order:
        outcome = STEPS[name](state)
        state = outcome.state
        emitted += [e.data for e in outcome.emissions]
    return state, emitted


@pytest.mark.parametrize("order", list(itertools.permutations(STEPS)))
def test_any_arrival_order_closes_the_case_once_with_the_same_facts(
    order: tuple[str, ...],
) -> None:
    state, emitted = _run(order)
    expected_state, expected = _run(tuple(STEPS))
    assert len(expected) == 1 and isinstance(expected[0], CaseClosed)
    assert expected[0].on_time is True
    [closed] = emitted
    assert isinstance(closed, CaseClosed)
    if order.index("registered") < max(
        order.index(s) for s in ("dispatched", "handled", "verified")
    ):
        assert closed == expected[0]
    else:
        # Closed before registration was seen: published with what was known (durations
        # from the first dispatch); the place is completed afterwards.
        known = {"to_dispatch": timedelta(0), "total": timedelta(minutes=85)}
        assert closed == expected[0].model_copy(
            update={"durations": expected[0].durations.model_copy(update=known)}
        )
    assert state == expected_state


def test_a_handled_report_that_outruns_its_dispatch_arms_verification_not_handling() -> None:
    state = on_handled(CaseState(CASE), at(17, 10), R).state
    assert armed_timers(state, R) == ()
    state = on_dispatched(state, dispatched(at(17, 9)), R).state
    assert [t.kind for t in armed_timers(state, R)] == ["verify"]


# -- look-back ---------------------------------------------------------------------


def test_a_sampled_closed_case_is_due_for_a_look_back_after_seven_days_once() -> None:
    state = on_dispatched(CaseState(CASE), dispatched(at(17, 9)), ALL_LOOKBACK).state
    state = on_handled(state, at(17, 10), ALL_LOOKBACK).state
    closed = on_verified(state, at(17, 10, 30), ALL_LOOKBACK, lookback=False).state
    [lookback] = armed_timers(closed, ALL_LOOKBACK)
    assert (lookback.kind, lookback.due_at) == ("lookback", at(24, 10, 30))
    assert fire_due(closed, at(24, 10, 29), ALL_LOOKBACK).emissions == ()
    fired = fire_due(closed, at(24, 10, 30), ALL_LOOKBACK)
    [due] = [e.data for e in fired.emissions]
    assert isinstance(due, CaseLookbackDue)
    assert (due.due_at, due.closed_at) == (at(24, 10, 30), at(17, 10, 30))
    assert armed_timers(fired.state, ALL_LOOKBACK) == ()
    assert fire_due(fired.state, at(30, 10), ALL_LOOKBACK).emissions == ()


def test_an_unsampled_closed_case_gets_no_look_back() -> None:
    state = on_dispatched(CaseState(CASE), dispatched(at(17, 9)), NO_LOOKBACK).state
    state = on_handled(state, at(17, 10), NO_LOOKBACK).state
    closed = on_verified(state, at(17, 10, 30), NO_LOOKBACK, lookback=False).state
    assert armed_timers(closed, NO_LOOKBACK) == ()


def test_the_look_back_sample_is_a_stable_share_of_case_ids() -> None:
    ids = [f"case-{n}" for n in range(20_000)]
    points = [sample_point(case_id) for case_id in ids]
    assert points == [sample_point(case_id) for case_id in ids], "same id, same decision"
    share = sum(point < 0.2 for point in points) / len(points)
    assert 0.19 < share < 0.21
    assert sum(R.in_lookback_sample(case_id) for case_id in ids) == sum(p < 0.2 for p in points)


def test_deadline_instants_are_compared_across_time_zones() -> None:
    state = on_dispatched(CaseState(CASE), dispatched(T0), R).state
    utc_handled = at(17, 12).astimezone(tz=None)
    state = on_handled(state, utc_handled, R).state
    assert closed_event(on_verified(state, at(17, 13), R, lookback=False)).on_time is True
