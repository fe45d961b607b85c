"""Checks that span records or files: unique ids, references that resolve, a coherent grid.

The models check each record on its own; these check the set. Each failure
names the record at fault, so the message says where to edit.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from datetime import date
from typing import Any

from shared.reference.calendar_data import CalendarData
from shared.reference.catalogue import Category, CategoryMajor
from shared.reference.errors import ReferenceDataError
from shared.reference.files import Record
from shared.reference.geography import AreaClass, Community, District, GridCell, Street
from shared.reference.organisation import Channel, Department, DepartmentKind
from shared.reference.routing import CANDIDATE_WORDS, RoutingRule

# Degrees; about 1 cm, far below the 7 decimals a cell's corners are written with.
_BBOX_TOLERANCE = 1e-6


def unique(
    file: str, records: Sequence[Record[Any]], field: str, key: Callable[[Any], Hashable]
) -> None:
    """The ``field`` (as computed by ``key``) of every record differs from the others'."""
    seen: dict[Hashable, str] = {}
    for record in records:
        value = key(record.model)
        if value in seen:
            raise ReferenceDataError(
                file, record.label, field, f"duplicate {value!r} (first at {seen[value]})"
            )
        seen[value] = record.label


def check_places(
    district: District,
    streets: Sequence[Record[Street]],
    communities: Sequence[Record[Community]],
    cells: Sequence[Record[GridCell]],
) -> None:
    unique("streets.json", streets, "code", lambda street: street.code)
    unique("communities.json", communities, "code", lambda community: community.code)
    unique("grid_cells.csv", cells, "code", lambda cell: cell.code)
    unique("grid_cells.csv", cells, "row", lambda cell: (cell.row, cell.col))

    for street in streets:
        if not street.model.code.startswith(district.code):
            raise ReferenceDataError(
                "streets.json",
                street.label,
                "code",
                f"does not start with the district's code {district.code!r}",
            )
    street_codes = {street.model.code for street in streets}
    for community in communities:
        if community.model.street not in street_codes:
            raise ReferenceDataError(
                "communities.json",
                community.label,
                "street",
                f"unknown street {community.model.street!r} (not in streets.json)",
            )
    community_streets = {community.model.code: community.model.street for community in communities}
    for cell in cells:
        _check_cell(district, community_streets, cell)

    communities_with_cells = {cell.model.community for cell in cells}
    for community in communities:
        if community.model.code not in communities_with_cells:
            raise ReferenceDataError(
                "communities.json", community.label, "code", "has no cells in grid_cells.csv"
            )
    streets_with_communities = set(community_streets.values())
    for street in streets:
        if street.model.code not in streets_with_communities:
            raise ReferenceDataError(
                "streets.json", street.label, "code", "has no communities in communities.json"
            )


def _check_cell(
    district: District, community_streets: dict[str, str], record: Record[GridCell]
) -> None:
    cell = record.model
    file = "grid_cells.csv"
    if cell.district != district.code:
        raise ReferenceDataError(
            file,
            record.label,
            "district",
            f"is not the district in district.json ({district.code!r})",
        )
    if cell.community not in community_streets:
        raise ReferenceDataError(
            file,
            record.label,
            "community",
            f"unknown community {cell.community!r} (not in communities.json)",
        )
    if community_streets[cell.community] != cell.street:
        raise ReferenceDataError(
            file,
            record.label,
            "street",
            f"community {cell.community!r} is in street {community_streets[cell.community]!r}",
        )
    # Cells must sit on the lattice, or cell_at's arithmetic would find the wrong one.
    grid = district.grid
    expected = {
        "min_lon": grid.origin_lon + cell.col * grid.cell_lon_deg,
        "max_lon": grid.origin_lon + (cell.col + 1) * grid.cell_lon_deg,
        "min_lat": grid.origin_lat + cell.row * grid.cell_lat_deg,
        "max_lat": grid.origin_lat + (cell.row + 1) * grid.cell_lat_deg,
    }
    for name, value in expected.items():
        if abs(getattr(cell, name) - value) > _BBOX_TOLERANCE:
            raise ReferenceDataError(
                file,
                record.label,
                name,
                f"{getattr(cell, name)} is not on the grid of district.json:"
                f" row {cell.row}, col {cell.col} gives {value:.7f}",
            )


def check_departments(
    departments: Sequence[Record[Department]], streets: Sequence[Record[Street]]
) -> None:
    unique("departments.json", departments, "id", lambda department: department.id)
    street_codes = {street.model.code for street in streets}
    offices: dict[str, str] = {}
    for record in departments:
        department = record.model
        if department.kind is not DepartmentKind.STREET_OFFICE or department.street is None:
            continue
        if department.street not in street_codes:
            raise ReferenceDataError(
                "departments.json",
                record.label,
                "street",
                f"unknown street {department.street!r} (not in streets.json)",
            )
        if department.street in offices:
            raise ReferenceDataError(
                "departments.json",
                record.label,
                "street",
                f"street {department.street!r} already has office {offices[department.street]!r}",
            )
        offices[department.street] = department.id
    for street in streets:
        if street.model.code not in offices:
            raise ReferenceDataError(
                "streets.json",
                street.label,
                "code",
                "has no street office (a street_office in departments.json)",
            )


def check_catalogue(
    majors: Sequence[Record[CategoryMajor]],
    categories: Sequence[Record[Category]],
    departments: Sequence[Record[Department]],
) -> None:
    unique("category_majors.json", majors, "code", lambda major: (major.kind, major.code))
    unique("categories.json", categories, "code", lambda category: category.code)
    major_keys = {(record.model.kind, record.model.code) for record in majors}
    department_ids = {record.model.id for record in departments}
    for record in categories:
        category = record.model
        if (category.kind, category.major) not in major_keys:
            raise ReferenceDataError(
                "categories.json",
                record.label,
                "major",
                f"no {category.kind.value} major {category.major!r} in category_majors.json",
            )
        if category.owner_department not in department_ids:
            raise ReferenceDataError(
                "categories.json",
                record.label,
                "owner_department",
                f"unknown department {category.owner_department!r} (not in departments.json)",
            )


def check_channels(channels: Sequence[Record[Channel]]) -> None:
    unique("channels.json", channels, "id", lambda channel: channel.id)


def check_calendar(calendar: CalendarData) -> None:
    file = "calendar.json"

    def at(list_name: str, index: int, item: Any) -> str:
        # Same shape as files.Record labels: record holidays[6] (name_en 'National Day').
        for key in ("day", "name_en"):
            value = getattr(item, key, None)
            if value is not None:
                return f"record {list_name}[{index}] ({key} {str(value)!r})"
        return f"record {list_name}[{index}]"

    periods = calendar.working_periods
    for index in range(1, len(periods)):
        if periods[index].start < periods[index - 1].end:
            raise ReferenceDataError(
                file,
                at("working_periods", index, None),
                "start",
                "must not start before the previous period ends",
            )

    years = set(calendar.years)
    holiday_days: dict[date, str] = {}
    names: set[str] = set()
    for index, holiday in enumerate(calendar.holidays):
        label = at("holidays", index, holiday)
        for name in ("first", "last"):
            if getattr(holiday, name).year not in years:
                raise ReferenceDataError(
                    file, label, name, f"is outside the calendar's years {sorted(years)}"
                )
        if holiday.name_en in names:
            raise ReferenceDataError(file, label, "name_en", f"duplicate {holiday.name_en!r}")
        names.add(holiday.name_en)
        day = holiday.first
        while day <= holiday.last:
            if day in holiday_days:
                raise ReferenceDataError(
                    file, label, "first", f"overlaps {holiday_days[day]!r} on {day}"
                )
            holiday_days[day] = holiday.name_en
            day = date.fromordinal(day.toordinal() + 1)

    weekend = {weekday.iso for weekday in calendar.weekend_days}
    seen: set[date] = set()
    for index, makeup in enumerate(calendar.makeup_working_days):
        label = at("makeup_working_days", index, makeup)
        if makeup.day.year not in years:
            raise ReferenceDataError(
                file, label, "day", f"is outside the calendar's years {sorted(years)}"
            )
        if makeup.day in seen:
            raise ReferenceDataError(file, label, "day", "duplicate day")
        seen.add(makeup.day)
        if makeup.day.isoweekday() not in weekend:
            raise ReferenceDataError(
                file, label, "day", f"is a {makeup.day:%A}, already a working day"
            )
        if makeup.day in holiday_days:
            raise ReferenceDataError(
                file, label, "day", f"is a day of {holiday_days[makeup.day]!r}"
            )
        if makeup.holiday not in names:
            raise ReferenceDataError(
                file,
                label,
                "holiday",
                f"unknown holiday {makeup.holiday!r} (no such name_en in holidays)",
            )


# Fields of a routing rule that name records of other files: (what they name, where).
_REFERENCED = {
    "match.categories": ("category", "categories.json"),
    "match.streets": ("street", "streets.json"),
    "co_departments": ("department", "departments.json"),
}


def check_routing(
    rules: Sequence[Record[RoutingRule]],
    categories: Sequence[Record[Category]],
    departments: Sequence[Record[Department]],
    streets: Sequence[Record[Street]],
) -> None:
    """Every name in ``routing.json`` resolves, and every rule can match some case first."""
    file = "routing.json"
    unique(file, rules, "id", lambda rule: rule.id)
    category_kinds = {record.model.code: record.model.kind for record in categories}
    department_ids = {record.model.id for record in departments}
    street_codes = {record.model.code for record in streets}

    def known(
        record: Record[RoutingRule], field: str, values: Sequence[str], ids: set[str]
    ) -> None:
        what, source = _REFERENCED[field]
        for index, value in enumerate(values):
            if value not in ids:
                raise ReferenceDataError(
                    file,
                    record.label,
                    f"{field}[{index}]",
                    f"unknown {what} {value!r} (not in {source})",
                )

    # What each rule covers, resolved to sets, to find rules that can never match first.
    covered: list[tuple[Record[RoutingRule], frozenset[str], frozenset[str], frozenset[str]]] = []
    for record in rules:
        rule = record.model
        match = rule.match
        known(record, "match.categories", match.categories, set(category_kinds))
        known(record, "match.streets", match.streets, street_codes)
        if rule.owner is not None and rule.owner not in department_ids:
            raise ReferenceDataError(
                file,
                record.label,
                "owner",
                f"unknown department {rule.owner!r} (not in departments.json)",
            )
        for index, candidate in enumerate(rule.candidates or ()):
            if candidate not in CANDIDATE_WORDS and candidate not in department_ids:
                raise ReferenceDataError(
                    file,
                    record.label,
                    f"candidates[{index}]",
                    f"unknown department {candidate!r} (not in departments.json,"
                    f" and not one of {list(CANDIDATE_WORDS)})",
                )
        known(record, "co_departments", rule.co_departments, department_ids)

        cats = frozenset(
            code
            for code, kind in category_kinds.items()
            if (not match.categories or code in match.categories)
            and (not match.kinds or kind in match.kinds)
        )
        if not cats:
            raise ReferenceDataError(
                file,
                record.label,
                "match.kinds",
                "no category of the listed categories is of the listed kinds",
            )
        places = frozenset(match.streets) if match.streets else frozenset(street_codes)
        classes = frozenset(match.area_classes) if match.area_classes else frozenset(AreaClass)
        for earlier, e_cats, e_places, e_classes in covered:
            if cats <= e_cats and places <= e_places and classes <= e_classes:
                raise ReferenceDataError(
                    file,
                    record.label,
                    "match",
                    f"can never match: {earlier.label} comes first and matches every case"
                    " this rule matches (put the more specific rule first)",
                )
        covered.append((record, cats, places, classes))
