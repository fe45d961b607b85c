"""Period labels and bounds in Asia/Shanghai (shared/periods.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.periods import PERIOD_TYPES, parse_period, period_of, periods_of

CST = timezone(timedelta(hours=8))


def test_labels_of_an_instant():
    instant = datetime(2026, 11, 22, 10, 0, tzinfo=CST)
    assert [p.label for p in periods_of(instant)] == [
        "2026-11-22",
        "2026-W47",
        "2026-11",
        "2026-Q4",
        "2026",
    ]


def test_local_midnight_decides_the_day_not_utc():
    # 23:30 on 30 November in Shanghai is 15:30 UTC: still November, still Q4's 30 Nov.
    late = datetime(2026, 11, 30, 15, 30, tzinfo=UTC)
    assert period_of("day", late).label == "2026-11-30"
    # 00:10 on 1 December in Shanghai is 16:10 UTC on 30 November: already December.
    early = datetime(2026, 11, 30, 16, 10, tzinfo=UTC)
    assert period_of("day", early).label == "2026-12-01"
    assert period_of("month", early).label == "2026-12"


def test_iso_week_can_belong_to_the_next_or_previous_year():
    # 2026 has 53 ISO weeks (1 January 2026 is a Thursday).
    assert period_of("week", datetime(2026, 12, 31, 12, tzinfo=CST)).label == "2026-W53"
    assert period_of("week", datetime(2027, 1, 3, 12, tzinfo=CST)).label == "2026-W53"
    assert period_of("week", datetime(2027, 1, 4, 12, tzinfo=CST)).label == "2027-W01"
    # 29 December 2025 (a Monday) is in 2026's first week.
    assert period_of("week", datetime(2025, 12, 29, 0, tzinfo=CST)).label == "2026-W01"


def test_bounds_are_half_open_local_midnights():
    week = parse_period("2026-W47")
    assert week.start == datetime(2026, 11, 16, tzinfo=CST)
    assert week.end == datetime(2026, 11, 23, tzinfo=CST)
    assert week.contains(datetime(2026, 11, 22, 23, 59, 59, tzinfo=CST))
    assert not week.contains(datetime(2026, 11, 23, 0, 0, tzinfo=CST))
    quarter = parse_period("2026-Q4")
    assert (quarter.start, quarter.end) == (
        datetime(2026, 10, 1, tzinfo=CST),
        datetime(2027, 1, 1, tzinfo=CST),
    )
    assert [m.label for m in quarter.months()] == ["2026-10", "2026-11", "2026-12"]
    assert parse_period("2026-02").end == datetime(2026, 3, 1, tzinfo=CST)
    assert len(parse_period("2026").months()) == 12
    assert len(parse_period("2026-02").days()) == 28


def test_next_previous_and_enclosing():
    assert parse_period("2026-W01").previous().label == "2025-W52"
    assert parse_period("2026-W53").next().label == "2027-W01"
    assert parse_period("2026-12").next().label == "2027-01"
    assert parse_period("2026-Q1").previous().label == "2025-Q4"
    assert parse_period("2026-11-17").enclosing("quarter").label == "2026-Q4"


@pytest.mark.parametrize(
    ("label", "kind"),
    [
        ("2026-11-22", "day"),
        ("2026-W47", "week"),
        ("2026-11", "month"),
        ("2026-Q4", "quarter"),
        ("2026", "year"),
    ],
)
def test_parse_reads_the_type_from_the_label(label, kind):
    period = parse_period(label)
    assert (period.type, period.label, str(period)) == (kind, label, label)


@pytest.mark.parametrize(
    ("label", "reason"),
    [
        ("2026-02-30", "not a real day"),
        ("2025-W53", "not a real week"),
        ("2026-W54", "not a real week"),
        ("2026-W00", "not a real week"),
        ("2026-13", "not a real month"),
        ("2026-Q5", "not a real quarter"),
        ("2026-Q0", "not a real quarter"),
        ("26-11", "not a period label"),
        ("2026/11", "not a period label"),
        ("", "not a period label"),
    ],
)
def test_parse_refuses_what_is_not_a_period(label, reason):
    with pytest.raises(ValueError, match=reason):
        parse_period(label)


def test_parse_with_an_expected_type_names_the_mismatch():
    with pytest.raises(ValueError, match="is a month label, not a week label"):
        parse_period("2026-11", "week")
    with pytest.raises(ValueError, match="YYYY-Www"):
        parse_period("nonsense", "week")


def test_naive_instants_are_refused():
    with pytest.raises(ValueError, match="UTC offset"):
        period_of("day", datetime(2026, 11, 22, 10, 0))


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 12, 31)))
def test_every_instant_is_inside_each_of_its_periods_and_labels_round_trip(naive):
    instant = naive.replace(tzinfo=UTC)
    for period in periods_of(instant):
        assert period.contains(instant)
        assert parse_period(period.label) == period
        assert period.next().start == period.end
        assert period.next().previous() == period
    assert [p.type for p in periods_of(instant)] == list(PERIOD_TYPES)


@given(st.dates(min_value=date(2000, 1, 2), max_value=date(2090, 12, 30)))
def test_consecutive_days_tile_every_period_type(day):
    for kind in PERIOD_TYPES:
        period = period_of(kind, datetime(day.year, day.month, day.day, tzinfo=CST))
        days = period.days()
        assert days[0].start == period.start and days[-1].end == period.end
