"""Bounce-backs: the same place, the window, the count, the notice and the key-problem flag."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.supervision.domain.rebound import (
    ClosedCase,
    Place,
    find_rebound,
    quarter_of,
    rebound_event,
    same_place,
)
from shared.reference.supervision import ReboundRule
from tests.unit.supervision.helpers import CST

RULE = ReboundRule(window_days=30, bureau_notice_at_count=2, key_problem_per_quarter=3)
SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 17, 9, 0, tzinfo=CST)
# About 11 m per 0.0001 degree of latitude.
LAT, LONG = 31.2989, 120.5853


def place(case_id: str = "new", **changes: object) -> Place:
    values: dict[str, object] = {
        "case_id": case_id,
        "category_code": "E0102",
        "grid_code": "32050810200301",
        "lat": LAT,
        "long": LONG,
    }
    values.update(changes)
    return Place(**values)  # type: ignore[arg-type]


def closed(case_id: str, days_ago: float, **changes: object) -> ClosedCase:
    return ClosedCase(
        place=place(case_id, **changes),
        place_key=f"E0102@{case_id}",
        closed_at=NOW - timedelta(days=days_ago),
        department="sanitation",
    )


def test_within_the_radius_is_the_same_place_and_beyond_it_is_not() -> None:
    near = place("old", lat=LAT + 0.0004)  # ~44 m north
    far = place("old", lat=LAT + 0.0006)  # ~67 m north
    assert same_place(place(), near, 50)
    assert not same_place(place(), far, 50)


def test_another_category_is_never_the_same_place() -> None:
    assert not same_place(place(), place("old", category_code="E0103"), 50)


def test_without_coordinates_or_radius_the_grid_cell_decides() -> None:
    assert same_place(place(lat=None, long=None), place("old", lat=LAT + 0.01), 50)
    assert not same_place(place(lat=None, long=None), place("old", grid_code="32050810200302"), 50)
    assert same_place(place(), place("old", lat=LAT + 0.0006), 0)
    assert not same_place(place(), place("old", grid_code="32050810200302"), 0)


def test_the_same_asset_is_the_same_place_wherever_it_was_reported() -> None:
    asset = "3205080101000001"
    assert same_place(
        place(component_id=asset), place("old", component_id=asset, lat=LAT + 0.01), 10
    )


def test_a_rebound_is_found_only_within_the_window_and_before_registration() -> None:
    candidates = [closed("too-old", 30.01), closed("in-window", 29.9), closed("after", -0.1)]
    found = find_rebound(place(), NOW, candidates, 50, RULE)
    assert found is not None and found.place.case_id == "in-window"
    assert find_rebound(place(), NOW, [closed("too-old", 31)], 50, RULE) is None


def test_the_most_recently_closed_case_at_the_place_is_the_one_that_bounced_back() -> None:
    candidates = [closed("a", 20), closed("b", 3), closed("far", 1, lat=LAT + 0.01)]
    found = find_rebound(place(), NOW, candidates, 50, RULE)
    assert found is not None and found.place.case_id == "b"


def test_a_case_never_bounces_back_from_itself() -> None:
    assert find_rebound(place("same"), NOW, [closed("same", 1)], 50, RULE) is None


@pytest.mark.parametrize(
    ("earlier_in_window", "earlier_in_quarter", "count", "notice", "key_problem"),
    [
        (0, 0, 1, False, False),
        (1, 1, 2, True, False),
        (2, 2, 3, True, True),
        (0, 2, 1, False, True),
    ],
)
def test_the_count_raises_the_bureau_notice_from_the_second_and_the_key_problem_from_the_third(
    earlier_in_window: int, earlier_in_quarter: int, count: int, notice: bool, key_problem: bool
) -> None:
    previous = closed("old", 5)
    event = rebound_event(
        place(), "320508102", previous, earlier_in_window, earlier_in_quarter, RULE
    )
    assert (event.count, event.bureau_notice, event.key_problem) == (count, notice, key_problem)
    assert event.place_key == previous.place_key, "the place keeps its history"
    assert (event.department, event.area, event.previous_case_id) == (
        "sanitation",
        "320508102",
        "old",
    )


def test_quarters_are_counted_in_the_city_time_zone() -> None:
    # 2026-09-30 17:00 UTC is already 1 October in Suzhou.
    quarter = quarter_of(datetime(2026, 9, 30, 17, 0, tzinfo=ZoneInfo("UTC")), SHANGHAI)
    assert quarter.label == "2026-Q4"
    assert quarter.start == datetime(2026, 10, 1, tzinfo=SHANGHAI)
    assert quarter.end == datetime(2027, 1, 1, tzinfo=SHANGHAI)
    assert quarter_of(datetime(2026, 3, 31, 23, 59, tzinfo=SHANGHAI), SHANGHAI).label == "2026-Q1"
