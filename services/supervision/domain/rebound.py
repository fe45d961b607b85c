"""Bounce-back (回弹): the same problem back at the same place after its case was closed.

A newly registered case bounces back from a closed case of the same category
within the category's duplicate radius, closed in the last N days (30 by
default). The new case inherits the old one's *place key*, so a place keeps
its history however many times the problem comes back; the count is the
bounce-backs at that place in the window, the second one raises a
bureau-wide notice (全局通报), and a place with enough in one quarter enters
the key-problem list (重点问题数据库).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from shared.events.supervision import CaseRebounded
from shared.geo import bounding_box, distance_m
from shared.reference.supervision import ReboundRule


@dataclass(frozen=True)
class Place:
    """Where a case's problem is: category and cell always, coordinates and asset if known."""

    case_id: str
    category_code: str
    grid_code: str
    lat: float | None = None
    long: float | None = None
    component_id: str | None = None


@dataclass(frozen=True)
class ClosedCase:
    """A closed case a new one may bounce back from."""

    place: Place
    place_key: str
    closed_at: datetime
    department: str


@dataclass(frozen=True)
class Search:
    """Where and when to look for the closed cases a new one may bounce back from.

    A pre-filter for the store: the category, closed in [since, until], and
    the same cell, the same asset or inside ``box`` (min_lat, min_lon,
    max_lat, max_lon); :func:`find_rebound` decides among what it finds.
    """

    place: Place
    since: datetime
    until: datetime
    box: tuple[float, float, float, float] | None


@dataclass(frozen=True)
class Quarter:
    """A calendar quarter in the city's time zone, e.g. ``2026-Q4``."""

    label: str
    start: datetime
    end: datetime


def same_place(new: Place, old: Place, radius_m: float) -> bool:
    """Whether two places of one category are the same place for a bounce-back.

    The same asset always is; with coordinates on both sides, within the
    radius; otherwise (no coordinates yet, or a category whose radius is 0,
    i.e. without duplicate detection) the same grid cell.
    """
    if new.category_code != old.category_code:
        return False
    if new.component_id is not None and new.component_id == old.component_id:
        return True
    if (
        radius_m > 0
        and new.lat is not None
        and new.long is not None
        and old.lat is not None
        and old.long is not None
    ):
        return distance_m(new.lat, new.long, old.lat, old.long) <= radius_m
    return new.grid_code == old.grid_code


def find_rebound(
    new: Place,
    registered_at: datetime,
    candidates: list[ClosedCase],
    radius_m: float,
    rule: ReboundRule,
) -> ClosedCase | None:
    """The closed case ``new`` bounces back from: the most recently closed at the same place."""
    since = registered_at - timedelta(days=rule.window_days)
    matching = [
        closed
        for closed in candidates
        if closed.place.case_id != new.case_id
        and since <= closed.closed_at <= registered_at
        and same_place(new, closed.place, radius_m)
    ]
    if not matching:
        return None
    return max(matching, key=lambda closed: (closed.closed_at, closed.place.case_id))


def window_start(registered_at: datetime, rule: ReboundRule) -> datetime:
    """Bounce-backs at a place since this instant count towards the place's count."""
    return registered_at - timedelta(days=rule.window_days)


def search_for(place: Place, registered_at: datetime, radius_m: float, rule: ReboundRule) -> Search:
    """What to look up for a case registered at ``place`` at ``registered_at``."""
    box = None
    if place.lat is not None and place.long is not None and radius_m > 0:
        box = bounding_box(place.lat, place.long, radius_m)
    return Search(place, window_start(registered_at, rule), registered_at, box)


def quarter_of(instant: datetime, timezone: ZoneInfo) -> Quarter:
    """The calendar quarter ``instant`` falls in, in the city's zone."""
    local = instant.astimezone(timezone)
    index = (local.month - 1) // 3
    first = date(local.year, index * 3 + 1, 1)
    after = date(local.year + 1, 1, 1) if index == 3 else date(local.year, index * 3 + 4, 1)
    return Quarter(
        label=f"{local.year}-Q{index + 1}",
        start=datetime.combine(first, time.min, timezone),
        end=datetime.combine(after, time.min, timezone),
    )


def rebound_event(
    new: Place,
    area: str,
    previous: ClosedCase,
    earlier_in_window: int,
    earlier_in_quarter: int,
    rule: ReboundRule,
) -> CaseRebounded:
    """The bounce-back of ``new``, given the earlier bounce-backs counted at its place.

    ``department`` is that of the case that bounced back; ``area`` that of the place.
    """
    count = earlier_in_window + 1
    return CaseRebounded(
        case_id=new.case_id,
        department=previous.department,
        area=area,
        place_key=previous.place_key,
        count=count,
        previous_case_id=previous.place.case_id,
        category_code=new.category_code,
        grid_code=new.grid_code,
        bureau_notice=count >= rule.bureau_notice_at_count,
        key_problem=earlier_in_quarter + 1 >= rule.key_problem_per_quarter,
    )
