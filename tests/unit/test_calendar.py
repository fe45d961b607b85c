"""The work calendar against hand-computed instants, and its arithmetic laws.

Working periods in the sample city: 08:30-12:00 and 13:30-17:30 (7.5 h a
day), Asia/Shanghai, with China's 2026 holidays and make-up working days.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.calendar import CalendarRangeError, WorkCalendar
from shared.reference import TimeLimit, TimeUnit, load_reference

SHANGHAI = ZoneInfo("Asia/Shanghai")
CALENDAR_DATA = load_reference().calendar
CALENDAR = WorkCalendar.from_data(CALENDAR_DATA)
STRICT = WorkCalendar.from_data(CALENDAR_DATA, strict=True)
HOUR = timedelta(hours=1)
WORKING_DAY = timedelta(hours=7, minutes=30)


def at(month: int, day: int, hour: int = 0, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


def limit(value: float, unit: str) -> TimeLimit:
    return TimeLimit(value=value, unit=TimeUnit(unit))


def test_a_working_day_is_seven_and_a_half_hours() -> None:
    assert CALENDAR.working_day == WORKING_DAY


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2026, 3, 13), True),  # an ordinary Friday
        (date(2026, 3, 14), False),  # an ordinary Saturday
        (date(2026, 1, 1), False),  # New Year
        (date(2026, 1, 4), True),  # Sunday worked for New Year
        (date(2026, 2, 14), True),  # Saturday worked for the Spring Festival
        (date(2026, 2, 16), False),  # Monday in the Spring Festival
        (date(2026, 2, 23), False),  # its last day, a Monday
        (date(2026, 2, 28), True),  # Saturday worked for the Spring Festival
        (date(2026, 5, 9), True),  # Saturday worked for Labour Day
        (date(2026, 9, 20), True),  # Sunday worked for National Day
        (date(2026, 9, 25), False),  # Mid-Autumn, a Friday
        (date(2026, 10, 7), False),  # National Day, a Wednesday
        (date(2026, 10, 10), True),  # Saturday worked for National Day
        (date(2026, 10, 11), False),  # the Sunday after it
    ],
)
def test_working_days_of_2026(day: date, working: bool) -> None:
    assert CALENDAR.is_working_day(day) is working


@pytest.mark.parametrize(
    ("start", "duration", "due"),
    [
        # Same day, and the edges of periods.
        (at(3, 10, 11), HOUR, at(3, 10, 12)),  # runs out exactly at noon, not 13:30
        (at(3, 10, 11, 30), HOUR, at(3, 10, 14)),  # the lunch break does not count
        (at(3, 10, 12, 30), HOUR, at(3, 10, 14, 30)),  # starting in the lunch break
        (at(3, 10, 7), timedelta(minutes=30), at(3, 10, 9)),  # starting before work
        (at(3, 10, 17), WORKING_DAY, at(3, 11, 17)),
        # Friday afternoon across a weekend.
        (at(3, 13, 15), 4 * HOUR, at(3, 16, 10)),
        (at(3, 13, 17, 30), HOUR, at(3, 16, 9, 30)),
        (at(3, 14, 10), HOUR, at(3, 16, 9, 30)),  # starting on a Saturday
        # Spring Festival: Feb 15-23 off, Saturdays Feb 14 and Feb 28 worked.
        (at(2, 13, 16, 30), 4 * HOUR, at(2, 14, 11, 30)),
        (at(2, 14, 15), WORKING_DAY, at(2, 24, 15)),
        (at(2, 27, 17), HOUR, at(2, 28, 9)),
        # Mid-Autumn (Fri Sep 25 - Sun Sep 27) and the make-up Sunday Sep 20.
        (at(9, 18, 17), HOUR, at(9, 20, 9)),
        (at(9, 24, 17), HOUR, at(9, 28, 9)),
        # National Day: Oct 1-7 off, Saturday Oct 10 worked.
        (at(9, 30, 16), 2 * WORKING_DAY, at(10, 9, 16)),
        (at(9, 30, 10), 5 * WORKING_DAY, at(10, 13, 10)),
        (at(10, 9, 16), 4 * HOUR, at(10, 10, 11)),
        (at(10, 3, 9), HOUR, at(10, 8, 9, 30)),  # starting inside the holiday
    ],
)
def test_add_working_time(start: datetime, duration: timedelta, due: datetime) -> None:
    assert CALENDAR.add_working_time(start, duration) == due


def test_tuesday_ten_plus_two_working_days_is_thursday_ten() -> None:
    # The worked example of DOMAIN.md section 5.
    assert CALENDAR.deadline(at(3, 10, 10), limit(2, "working_days")) == at(3, 12, 10)


def test_result_is_in_the_calendar_zone_whatever_the_input_zone() -> None:
    start = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
    due = CALENDAR.add_working_time(start, 2 * WORKING_DAY)
    assert due == at(3, 12, 10)
    assert due.tzinfo == SHANGHAI
    new_york = start.astimezone(ZoneInfo("America/New_York"))
    assert CALENDAR.add_working_time(new_york, 2 * WORKING_DAY) == due


def test_adding_zero_returns_the_start_unchanged() -> None:
    saturday = at(3, 14, 10)
    assert CALENDAR.add_working_time(saturday, timedelta(0)) is saturday


def test_naive_and_negative_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        CALENDAR.add_working_time(datetime(2026, 3, 10, 10), HOUR)
    with pytest.raises(ValueError, match="negative"):
        CALENDAR.add_working_time(at(3, 10, 10), -HOUR)


@pytest.mark.parametrize(
    ("start", "the_limit", "urgent", "due"),
    [
        # Urgent cases count natural time straight through the National Day holiday.
        (at(10, 1, 10), limit(2, "working_days"), True, at(10, 3, 10)),
        (at(10, 1, 10), limit(4, "working_hours"), True, at(10, 1, 14)),
        (at(10, 1, 10), limit(30, "working_minutes"), True, at(10, 1, 10, 30)),
        # The same limits on an ordinary case wait for Oct 8.
        (at(10, 1, 10), limit(2, "working_days"), False, at(10, 9, 17, 30)),
        (at(10, 1, 10), limit(4, "working_hours"), False, at(10, 8, 14)),
        (at(3, 13, 17, 15), limit(30, "working_minutes"), False, at(3, 16, 8, 45)),
        # Natural units ignore the calendar whatever the urgency.
        (at(10, 1, 10), limit(6, "hours"), False, at(10, 1, 16)),
        (at(9, 30, 20), limit(7, "days"), False, at(10, 7, 20)),
        (at(10, 1, 23, 50), limit(30, "minutes"), False, at(10, 2, 0, 20)),
        (at(10, 1, 10), limit(1.5, "hours"), True, at(10, 1, 11, 30)),
    ],
)
def test_deadline_from_a_limit(
    start: datetime, the_limit: TimeLimit, urgent: bool, due: datetime
) -> None:
    assert CALENDAR.deadline(start, the_limit, urgent=urgent) == due


def test_deadline_share_gives_the_warning_mark() -> None:
    # 80% of a working day is 6 h: 08:30-12:00 and then 2.5 h after 13:30.
    assert CALENDAR.deadline(at(3, 10, 8, 30), limit(1, "working_days"), share=0.8) == at(3, 10, 16)


def test_natural_time_ignores_the_calendar() -> None:
    assert CALENDAR.add_natural_time(at(9, 30, 20), 24 * HOUR) == at(10, 1, 20)


def test_working_time_between() -> None:
    assert CALENDAR.working_time_between(at(3, 13, 15), at(3, 16, 10)) == 4 * HOUR
    assert CALENDAR.working_time_between(at(3, 16, 10), at(3, 13, 15)) == -4 * HOUR
    assert CALENDAR.working_time_between(at(9, 30, 16), at(10, 9, 16)) == 2 * WORKING_DAY
    assert CALENDAR.working_time_between(at(10, 1), at(10, 8)) == timedelta(0)


def test_a_datetime_counts_as_its_date_in_shanghai() -> None:
    # 2026-09-30T17:00Z is already Oct 1 (National Day) in Shanghai.
    assert not CALENDAR.is_working_day(datetime(2026, 9, 30, 17, 0, tzinfo=UTC))
    assert CALENDAR.is_working_day(datetime(2026, 9, 30, 15, 0, tzinfo=UTC))


def test_is_working_time() -> None:
    assert CALENDAR.is_working_time(at(3, 10, 8, 30))
    assert not CALENDAR.is_working_time(at(3, 10, 12))
    assert not CALENDAR.is_working_time(at(10, 2, 10))
    assert CALENDAR.is_working_time(at(10, 10, 10))


class TestOutsideTheCoveredYears:
    """By default the weekend rule applies outside the data's years; strict raises."""

    def test_fallback_knows_weekends_but_no_holidays(self) -> None:
        assert not CALENDAR.covers(date(2027, 1, 1))
        assert CALENDAR.is_working_day(date(2027, 1, 1))  # a Friday; its holiday is unpublished
        assert not CALENDAR.is_working_day(date(2027, 1, 2))  # a Saturday
        assert CALENDAR.add_working_time(at(12, 31, 17), HOUR) == at(1, 1, 9, year=2027)

    def test_fallback_before_the_data_runs_into_the_new_year_holiday(self) -> None:
        # Wed Dec 31 2025 by the weekend rule; Jan 1-3 2026 off, Sunday Jan 4 worked.
        assert CALENDAR.add_working_time(at(12, 31, 17, year=2025), HOUR) == at(1, 4, 9)

    def test_strict_calendar_raises(self) -> None:
        assert STRICT.add_working_time(at(12, 31, 10), HOUR) == at(12, 31, 11)
        with pytest.raises(CalendarRangeError, match="2027-01-01 is outside the calendar's years"):
            STRICT.is_working_day(date(2027, 1, 1))
        with pytest.raises(CalendarRangeError):
            STRICT.add_working_time(at(12, 31, 17), HOUR)
        with pytest.raises(CalendarRangeError):
            STRICT.working_time_between(at(12, 31, 17), at(1, 1, 9, year=2027))


# -- properties ---------------------------------------------------------------

ZONES = [SHANGHAI, UTC, ZoneInfo("America/New_York"), ZoneInfo("Europe/London")]
# Instants as UTC, shown in any zone: ordering must be by instant, not by wall clock.
starts = st.builds(
    lambda instant, zone: instant.astimezone(zone),
    st.datetimes(
        min_value=datetime(2025, 12, 20),
        max_value=datetime(2027, 1, 10),
        timezones=st.just(UTC),
    ),
    st.sampled_from(ZONES),
)
# Up to 30 working days, in microseconds so the laws are checked at full precision.
durations = st.integers(min_value=0, max_value=30 * 27_000 * 10**6).map(
    lambda micros: timedelta(microseconds=micros)
)
PROPERTY = settings(max_examples=200, deadline=None, database=None)


@PROPERTY
@given(starts, durations, durations)
def test_more_duration_is_never_earlier(
    start: datetime, first: timedelta, second: timedelta
) -> None:
    shorter, longer = sorted((first, second))
    assert CALENDAR.add_working_time(start, shorter) <= CALENDAR.add_working_time(start, longer)


@PROPERTY
@given(starts, starts, durations)
def test_later_start_is_never_earlier(
    first: datetime, second: datetime, duration: timedelta
) -> None:
    earlier, later = sorted((first, second), key=lambda instant: instant.astimezone(UTC))
    assert CALENDAR.add_working_time(earlier, duration) <= CALENDAR.add_working_time(
        later, duration
    )


@PROPERTY
@given(starts, durations, durations)
def test_adding_in_two_steps_equals_adding_at_once(
    start: datetime, first: timedelta, second: timedelta
) -> None:
    in_steps = CALENDAR.add_working_time(CALENDAR.add_working_time(start, first), second)
    assert in_steps == CALENDAR.add_working_time(start, first + second)


@PROPERTY
@given(starts, durations)
def test_working_time_between_inverts_adding(start: datetime, duration: timedelta) -> None:
    assert (
        CALENDAR.working_time_between(start, CALENDAR.add_working_time(start, duration)) == duration
    )


@PROPERTY
@given(starts, durations.filter(lambda duration: duration > timedelta(0)))
def test_a_deadline_ends_working_time(start: datetime, duration: timedelta) -> None:
    # The last microsecond counted is working time, so a deadline never lands
    # in the middle of a night, a weekend or a holiday (only at a period's end).
    due = CALENDAR.add_working_time(start, duration)
    assert CALENDAR.is_working_time(due - timedelta(microseconds=1))


@PROPERTY
@given(starts, st.integers(min_value=1, max_value=30), st.sampled_from(list(TimeUnit)))
def test_urgent_deadlines_are_natural_time(start: datetime, value: int, unit: TimeUnit) -> None:
    natural = {"minutes": timedelta(minutes=1), "hours": HOUR, "days": timedelta(days=1)}
    step = natural[unit.value.removeprefix("working_")]
    assert (
        CALENDAR.deadline(start, TimeLimit(value=value, unit=unit), urgent=True)
        == start.astimezone(UTC) + value * step
    )
