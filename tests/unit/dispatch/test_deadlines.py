"""Deadlines of a dispatch against instants computed by hand on the 2026 calendar.

Working periods 08:30-12:00 and 13:30-17:30 (7.5 h a day), Asia/Shanghai;
Spring Festival Feb 15-23 with Saturdays Feb 14 and 28 worked; National Day
Oct 1-7 with Sunday Sep 20 and Saturday Oct 10 worked.
"""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest

from services.dispatch.domain.cases import Rulebook
from services.dispatch.domain.deadlines import (
    LimitPlan,
    deadlines_for,
    extend,
    extension_amount,
    maximum_amount,
)
from shared.calendar import WorkCalendar
from shared.reference import TimeLimit, TimeUnit
from tests.unit.dispatch.cases import SAMPLE, at

CALENDAR = WorkCalendar.from_data(SAMPLE.calendar)
HALF_HOUR = timedelta(minutes=30)


def category(code: str):
    found = SAMPLE.category(code)
    assert found is not None
    return found


W, N = "working", "natural"


# fmt: off
@pytest.mark.parametrize(
    ("code", "area_class", "urgent", "start", "sign_for", "handle", "verify", "clock"),
    [
        # Exposed rubbish, 4 working hours: 2.5 h on Friday, 1.5 h on Monday morning.
        pytest.param("E0102", "B", False, at(3, 13, 15), at(3, 13, 16), at(3, 16, 10), HALF_HOUR, W,
                     id="friday-afternoon-across-the-weekend"),
        # Green space, 5 working days = 37.5 h: the same hour a week later.
        pytest.param("C0405", "B", False, at(3, 13, 16), at(3, 13, 17), at(3, 20, 16), HALF_HOUR, W,
                     id="five-working-days-from-a-friday"),
        # Muck, 2 working days = 15 h: 3.5 h on Friday Feb 13, 7.5 h on the worked Saturday
        # Feb 14, nothing Feb 15-23, 4 h on Tuesday Feb 24.
        pytest.param("E0306", "B", False, at(2, 13, 14), at(2, 13, 15), at(2, 24, 14), HALF_HOUR, W,
                     id="before-the-spring-festival"),
        # The last half hour before the festival, then the first morning after it.
        pytest.param("E0102", "B", False, at(2, 14, 17), at(2, 24, 9), at(2, 24, 12), HALF_HOUR, W,
                     id="on-the-worked-saturday-before-the-spring-festival"),
        # Street tree, 2 working days: 6 h on Sep 30, nothing Oct 1-7, 7.5 h Oct 8, 1.5 h Oct 9.
        pytest.param("C0402", "B", False, at(9, 30, 10), at(9, 30, 11), at(10, 9, 10), HALF_HOUR, W,
                     id="before-national-day"),
        # Laundry, 1 working day: 2.5 h on Friday Oct 9, 5 h on the worked Saturday Oct 10.
        pytest.param("E0407", "B", False, at(10, 9, 15), at(10, 9, 16), at(10, 10, 15), HALF_HOUR, W,
                     id="make-up-working-saturday"),
        # Half an hour on Friday Sep 18, then the worked Sunday Sep 20.
        pytest.param("E0102", "B", False, at(9, 18, 17), at(9, 20, 9), at(9, 20, 12), HALF_HOUR, W,
                     id="make-up-working-sunday"),
        # Manhole cover, urgent: 30 min, 6 h and 30 min of natural time on a holiday night.
        pytest.param("C0101", "B", True, at(10, 1, 22), at(10, 1, 22, 30), at(10, 2, 4), HALF_HOUR, N,
                     id="urgent-over-a-holiday-in-natural-time"),
        # Blocked sewer is written in working units; registered urgent it counts 1 h and 24 h.
        pytest.param("E0504", "B", True, at(9, 30, 18), at(9, 30, 19), at(10, 1, 18), HALF_HOUR, N,
                     id="working-units-of-an-urgent-case-count-natural-time"),
        # Exposed rubbish in the core area: 2 working hours, ending exactly at noon.
        pytest.param("E0102", "A", False, at(3, 10, 10), at(3, 10, 11), at(3, 10, 12), HALF_HOUR, W,
                     id="area-class-a-limit"),
        pytest.param("E0102", "B", False, at(3, 10, 10), at(3, 10, 11), at(3, 10, 15, 30), HALF_HOUR, W,
                     id="area-class-b-default-limit"),
        # Fringe: 8 working hours = 6 h on Tuesday and 2 h on Wednesday morning.
        pytest.param("E0102", "C", False, at(3, 10, 10), at(3, 10, 11), at(3, 11, 10, 30), HALF_HOUR, W,
                     id="area-class-c-limit"),
        # Vacant lot: 15 natural days to handle although the case is ordinary.
        pytest.param("C0504", "B", False, at(3, 10, 10), at(3, 10, 11), at(3, 25, 10), timedelta(hours=1), W,
                     id="natural-unit-in-an-ordinary-case"),
    ],
)
# fmt: on
def test_deadlines_against_hand_computed_instants(
    code, area_class, urgent, start, sign_for, handle, verify, clock
) -> None:
    deadlines = deadlines_for(start, category(code), area_class, urgent, CALENDAR)
    assert deadlines.sign_for == sign_for
    assert deadlines.handle == handle
    assert deadlines.verify_limit == verify
    assert deadlines.clock == clock


def test_verification_limit_of_a_working_day_category_is_working_time() -> None:
    # Heritage tree: verify within 1 working hour, counted on the calendar.
    deadlines = deadlines_for(at(3, 10, 10), category("C0401"), "B", False, CALENDAR)
    assert (deadlines.verify_limit, deadlines.clock) == (timedelta(hours=1), "working")


def test_the_deadline_instant_is_in_shanghai_whatever_zone_the_event_came_in() -> None:
    start = at(3, 13, 15).astimezone(UTC)
    deadlines = deadlines_for(start, category("E0102"), "B", False, CALENDAR)
    assert deadlines.handle == at(3, 16, 10)
    assert deadlines.handle.utcoffset() == timedelta(hours=8)


def test_handle_clock_follows_urgency_and_units() -> None:
    def clock(code: str, urgent: bool) -> str:
        return LimitPlan.of(category(code), "B", urgent, CALENDAR).handle_clock

    assert clock("E0102", urgent=False) == "working"
    assert clock("E0102", urgent=True) == "natural"
    assert clock("C0504", urgent=False) == "natural"  # 15 days


def test_a_case_of_another_tier_than_its_category_takes_the_tiers_handling_limit() -> None:
    book = Rulebook.of(SAMPLE)
    rubbish, paving = category("E0102"), category("C0220")
    start = at(3, 10, 10)  # Tuesday; 15 working days later is Tuesday Mar 31
    raised = book.plan(rubbish, "A", False, "engineering").deadlines(start, CALENDAR)
    assert raised.handle == at(3, 31, 10)
    special = book.plan(rubbish, "A", False, "special").deadlines(start, CALENDAR)
    assert special.handle == at(4, 8, 10)  # 20 working days, Qingming (Apr 4-6) skipped
    own = book.plan(rubbish, "A", False, "ordinary").deadlines(start, CALENDAR)
    assert own.handle == at(3, 10, 12)  # the category's own core-area limit
    # An engineering category at its own tier keeps its own (area-class) limit.
    paving_plan = book.plan(paving, "A", False, "engineering")
    assert paving_plan.deadlines(start, CALENDAR).handle == at(3, 13, 10)  # 3 working days


def test_extension_amount_reads_days_as_working_days_on_the_calendar() -> None:
    assert extension_amount(timedelta(days=2), "working", CALENDAR) == timedelta(hours=15)
    assert extension_amount(timedelta(days=1, hours=2), "working", CALENDAR) == timedelta(
        hours=9, minutes=30
    )
    assert extension_amount(timedelta(hours=3), "working", CALENDAR) == timedelta(hours=3)
    assert extension_amount(timedelta(days=2), "natural", CALENDAR) == timedelta(days=2)


def test_maximum_amount_on_each_clock() -> None:
    ten_days = TimeLimit(value=10, unit=TimeUnit.WORKING_DAYS)
    assert maximum_amount(ten_days, "working", CALENDAR) == timedelta(hours=75)
    assert maximum_amount(ten_days, "natural", CALENDAR) == timedelta(days=10)
    six_hours = TimeLimit(value=6, unit=TimeUnit.HOURS)
    assert maximum_amount(six_hours, "working", CALENDAR) == timedelta(hours=6)


def test_extending_a_working_deadline_skips_the_national_day_holiday() -> None:
    # 2 working days after Wednesday Sep 30 16:00: 1.5 h that day, 7.5 h Oct 8, 6 h Oct 9.
    assert extend(at(9, 30, 16), timedelta(hours=15), "working", CALENDAR) == at(10, 9, 16)
    assert extend(at(9, 30, 16), timedelta(days=2), "natural", CALENDAR) == at(10, 2, 16)
