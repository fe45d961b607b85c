"""Deadline timers: what a dispatch arms, what firing emits, the notice ladder, parking."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from services.supervision.domain.case import (
    CaseState,
    on_accepted,
    on_dispatched,
    on_escalated,
    on_handled,
    on_parked,
    on_unparked,
)
from services.supervision.domain.timers import (
    Timer,
    armed_timers,
    fire_due,
    next_due,
    overdue_status,
)
from shared.events.supervision import CaseNoticeIssued, CaseOverdue, CaseWarned
from tests.unit.supervision.helpers import CASE, CST, dispatched, redispatched, rules

R = rules()


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=CST)


def kinds(state: CaseState) -> list[tuple[str, int]]:
    return [(t.kind, t.level) for t in armed_timers(state, R)]


def timer(state: CaseState, kind: str) -> Timer:
    return next(t for t in armed_timers(state, R) if t.kind == kind)


def fresh(**dispatch_args: object) -> CaseState:
    return on_dispatched(CaseState(CASE), dispatched(**dispatch_args), R).state  # type: ignore[arg-type]


def test_a_dispatch_arms_sign_for_the_yellow_warning_and_the_handling_deadline() -> None:
    state = fresh()
    assert kinds(state) == [("sign_for", 0), ("handle_warning", 0), ("handle", 0)]
    assert timer(state, "sign_for").due_at == at(17, 10)
    assert timer(state, "handle").due_at == at(17, 12)
    # 80% of the 3 working hours between 09:00 and 12:00 is 2.4 h: 11:24.
    assert timer(state, "handle_warning").due_at == at(17, 11, 24)
    assert timer(state, "handle_warning").deadline == at(17, 12)


def test_the_warning_share_counts_working_time_across_lunch_and_the_night() -> None:
    # 16:00 Tuesday to 16:00 Wednesday is one working day (7.5 h); 80% is 6 h:
    # Tuesday 16:00-17:30 (1.5 h), Wednesday 08:30-12:00 (3.5 h), 13:30-14:30 (1 h).
    state = fresh(at=at(17, 16), handle=timedelta(days=1))
    assert timer(state, "handle_warning").due_at == at(18, 14, 30)


def test_an_urgent_case_warns_at_80_percent_of_natural_time() -> None:
    state = fresh(at=at(17, 20), handle=timedelta(hours=5), clock="natural")
    assert timer(state, "handle_warning").due_at == at(18, 0)


def test_a_configured_warning_share_is_used() -> None:
    r = rules(warning_share=0.5)
    state = on_dispatched(CaseState(CASE), dispatched(handle=timedelta(hours=2)), r).state
    warning = next(t for t in armed_timers(state, r) if t.kind == "handle_warning")
    assert warning.due_at == at(17, 10)


def test_nothing_fires_before_it_is_due_and_each_light_fires_once() -> None:
    state = fresh()
    assert fire_due(state, at(17, 9, 59), R).emissions == ()
    first = fire_due(state, at(17, 10), R)
    assert [type(e.data) for e in first.emissions] == [CaseOverdue]
    overdue = first.emissions[0].data
    assert isinstance(overdue, CaseOverdue) and overdue.timer == "sign_for"
    assert fire_due(first.state, at(17, 10), R).emissions == ()


def test_signing_for_cancels_the_sign_for_timer_only() -> None:
    state = on_accepted(fresh(), at(17, 9, 30))
    assert kinds(state) == [("handle_warning", 0), ("handle", 0)]


def test_a_late_case_is_warned_then_overdue_then_climbs_the_ladder_once_per_rung() -> None:
    state = on_accepted(fresh(), at(17, 9, 10))
    fired = fire_due(state, at(17, 11, 30), R)
    assert [type(e.data) for e in fired.emissions] == [CaseWarned]
    warned = fired.emissions[0]
    assert warned.time == at(17, 11, 24)
    assert isinstance(warned.data, CaseWarned) and warned.data.share_used == 0.8

    # At the deadline: overdue, and level 1 at once (its interval is 0).
    fired = fire_due(fired.state, at(17, 12), R)
    assert [type(e.data) for e in fired.emissions] == [CaseOverdue, CaseNoticeIssued]
    notice = fired.emissions[1].data
    assert isinstance(notice, CaseNoticeIssued)
    assert (notice.level, notice.title, notice.addressee) == (1, "督办单", "department")
    assert notice.overdue_by == timedelta(0)
    assert overdue_status(fired.state) == overdue_status(fired.state)
    red = overdue_status(fired.state)
    assert red is not None and (red.timer, red.notice_level) == ("handle", 1)

    # Level 2 one working day after level 1: Wednesday 12:00 (Tuesday 12:00 is the end of a period).
    level2 = timer(fired.state, "notice")
    assert (level2.level, level2.due_at) == (2, at(18, 12))
    assert fire_due(fired.state, at(18, 11, 59), R).emissions == ()
    fired = fire_due(fired.state, at(18, 12), R)
    notice = fired.emissions[0].data
    assert isinstance(notice, CaseNoticeIssued)
    assert (notice.level, notice.addressee) == (2, "department_head")
    assert notice.overdue_by == timedelta(days=1)

    # Level 3 two working days later, then the ladder has no more rungs.
    assert timer(fired.state, "notice").due_at == at(20, 12)
    fired = fire_due(fired.state, at(30, 12), R)
    assert [(type(e.data), getattr(e.data, "level", None)) for e in fired.emissions] == [
        (CaseNoticeIssued, 3)
    ]
    assert kinds(fired.state) == []
    assert fire_due(fired.state, at(30, 23), R).emissions == ()


def test_a_backlog_fires_everything_due_in_order() -> None:
    fired = fire_due(fresh(), at(30, 9), R)
    assert [
        (type(e.data).__name__, getattr(e.data, "timer", None), getattr(e.data, "level", None))
        for e in fired.emissions
    ] == [
        ("CaseOverdue", "sign_for", None),
        ("CaseWarned", "handle", None),
        ("CaseOverdue", "handle", None),
        ("CaseNoticeIssued", "handle", 1),
        ("CaseNoticeIssued", "handle", 2),
        ("CaseNoticeIssued", "handle", 3),
    ]
    times = [e.time for e in fired.emissions]
    assert times == sorted(times), "events carry their due instants, in order"


def test_an_urgent_case_climbs_the_ladder_in_natural_time() -> None:
    state = fresh(at=at(20, 20), handle=timedelta(hours=2), clock="natural")  # Friday night
    fired = fire_due(state, at(20, 22), R)
    assert timer(fired.state, "notice").due_at == at(21, 22), "1 working day = 24 h"


def test_handling_stops_the_handling_clock_and_its_notices_and_starts_verification() -> None:
    late = fire_due(fresh(), at(18, 9), R).state
    assert ("notice", 2) in kinds(late)
    handled = on_handled(late, at(18, 11, 50), R).state
    assert kinds(handled) == [("verify", 0)]
    # 30 working minutes from 11:50: 10 before lunch, 20 after.
    assert timer(handled, "verify").due_at == at(18, 13, 50)
    assert overdue_status(handled) is None


def test_a_late_verification_is_flagged_against_the_area() -> None:
    handled = on_handled(fresh(), at(17, 11), R).state
    fired = fire_due(handled, at(17, 11, 30), R)
    overdue = fired.emissions[0].data
    assert isinstance(overdue, CaseOverdue)
    assert (overdue.timer, overdue.area) == ("verify", "320508102")
    red = overdue_status(fired.state)
    assert red is not None and red.timer == "verify"


def test_a_redispatch_supersedes_every_timer_and_light_of_the_previous_dispatch() -> None:
    overdue = fire_due(fresh(), at(17, 12), R).state
    assert overdue.handle_overdue_at is not None
    again = on_dispatched(overdue, redispatched(at(17, 14), number=2, reason="return"), R).state
    assert kinds(again) == [("sign_for", 0), ("handle_warning", 0), ("handle", 0)]
    assert {t.dispatch_number for t in armed_timers(again, R)} == {2}
    assert overdue_status(again) is None
    assert timer(again, "handle").due_at == at(17, 17)


def test_an_extension_moves_the_deadline_so_the_old_one_fires_nothing() -> None:
    state = on_accepted(fresh(), at(17, 9, 5))
    extended = on_dispatched(
        state, redispatched(at(17, 11), number=2, reason="extension", handle=timedelta(days=2)), R
    ).state
    assert kinds(extended) == [("handle_warning", 0), ("handle", 0)], "still signed for"
    assert fire_due(extended, at(17, 12, 30), R).emissions == ()
    assert timer(extended, "handle").due_at == at(19, 11)


def test_a_rework_dispatch_must_be_signed_for_again() -> None:
    state = on_accepted(fresh(), at(17, 9, 5))
    rework = on_dispatched(state, redispatched(at(17, 11), number=2, reason="rework"), R).state
    assert kinds(rework)[0] == ("sign_for", 0)


def test_an_old_or_repeated_dispatch_changes_nothing() -> None:
    second = on_dispatched(fresh(), redispatched(at(17, 10), number=2, reason="return"), R).state
    assert on_dispatched(second, dispatched(), R).state == second
    assert on_dispatched(second, redispatched(at(17, 10), number=2), R).state == second


def test_an_escalated_case_has_nobody_to_chase_until_it_is_dispatched_again() -> None:
    escalated = on_escalated(fresh(), at(17, 9, 30))
    assert kinds(escalated) == []
    assert fire_due(escalated, at(30, 9), R).emissions == ()
    again = on_dispatched(escalated, redispatched(at(17, 10), number=2, reason="manual"), R).state
    assert kinds(again) == [("sign_for", 0), ("handle_warning", 0), ("handle", 0)]


def test_parking_pauses_every_timer_and_unparking_gives_back_the_remaining_time() -> None:
    state = on_accepted(fresh(), at(17, 9, 5))  # handle due Tuesday 12:00
    parked = on_parked(state, at(17, 11))  # one working hour left
    assert next_due(parked, R) is None
    assert fire_due(parked, at(25, 9), R).emissions == ()
    resumed = on_unparked(parked, at(19, 10), R)  # Thursday 10:00
    assert timer(resumed, "handle").due_at == at(19, 11)
    # The warning (11:24) was 24 working minutes ahead at parking.
    assert timer(resumed, "handle_warning").due_at == at(19, 10, 24)
    assert resumed.parked_total == at(19, 10) - at(17, 11)
    assert on_unparked(resumed, at(19, 12), R) == resumed, "unparked twice changes nothing"


def test_a_notice_due_while_parked_waits_its_remaining_time() -> None:
    late = fire_due(on_accepted(fresh(), at(17, 9, 5)), at(17, 12), R).state
    assert timer(late, "notice").due_at == at(18, 12)
    parked = on_parked(late, at(18, 11))
    resumed = on_unparked(parked, at(23, 9), R)  # the next Monday 09:00
    assert timer(resumed, "notice").due_at == at(23, 10)
    assert resumed.handle_due == at(17, 12), "a deadline already passed stays passed"


def test_a_closed_or_undispatched_case_arms_nothing() -> None:
    assert armed_timers(CaseState(CASE), R) == ()
    closed = replace(fresh(), closed_at=at(17, 11))
    assert armed_timers(closed, R) == ()


def test_firing_changes_only_the_light_fields_the_store_saves_after_a_firing() -> None:
    from dataclasses import fields

    from services.supervision.domain.timers import LIGHT_FIELDS

    state = fresh()
    handled = on_handled(fire_due(state, at(17, 12), R).state, at(17, 13), R).state
    for before in (state, handled):
        after = fire_due(before, at(30, 9), R).state
        changed = {
            f.name for f in fields(before) if getattr(before, f.name) != getattr(after, f.name)
        }
        assert changed and changed <= LIGHT_FIELDS
