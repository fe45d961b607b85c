"""The loaded reference-data set and the lookups services make against it.

A ``ReferenceData`` is built only by ``load_reference``, after every check has
passed, so its lookups can trust the data: a cell's community exists, every
street has a street office, every category's owner is a department.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from shared.reference.calendar_data import CalendarData
from shared.reference.catalogue import Category, CategoryKind, CategoryMajor
from shared.reference.dispatching import DispatchRules
from shared.reference.geography import Community, District, GridCell, Street
from shared.reference.organisation import Channel, Department, DepartmentKind
from shared.reference.routing import RoutingRule
from shared.reference.scoring import ScoringRules
from shared.reference.supervision import SupervisionRules


@dataclass(frozen=True, eq=False)
class ReferenceData:
    """One city's validated reference data: places, catalogue, organisation, rules."""

    directory: Path
    district: District
    streets: tuple[Street, ...]
    communities: tuple[Community, ...]
    cells: tuple[GridCell, ...]
    departments: tuple[Department, ...]
    category_majors: tuple[CategoryMajor, ...]
    categories: tuple[Category, ...]
    channels: tuple[Channel, ...]
    calendar: CalendarData
    scoring: ScoringRules
    supervision: SupervisionRules
    # Defaults keep a set built without them (tests, tools) routing by the catalogue alone.
    routing: tuple[RoutingRule, ...] = ()
    dispatch: DispatchRules = field(default_factory=DispatchRules)

    _streets: dict[str, Street] = field(init=False, repr=False)
    _communities: dict[str, Community] = field(init=False, repr=False)
    _cells: dict[str, GridCell] = field(init=False, repr=False)
    _cells_by_position: dict[tuple[int, int], GridCell] = field(init=False, repr=False)
    _departments: dict[str, Department] = field(init=False, repr=False)
    _street_offices: dict[str, Department] = field(init=False, repr=False)
    _majors: dict[tuple[CategoryKind, str], CategoryMajor] = field(init=False, repr=False)
    _categories: dict[str, Category] = field(init=False, repr=False)
    _channels: dict[str, Channel] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        indexes = {
            "_streets": {street.code: street for street in self.streets},
            "_communities": {community.code: community for community in self.communities},
            "_cells": {cell.code: cell for cell in self.cells},
            "_cells_by_position": {(cell.row, cell.col): cell for cell in self.cells},
            "_departments": {department.id: department for department in self.departments},
            "_street_offices": {
                department.street: department
                for department in self.departments
                if department.kind is DepartmentKind.STREET_OFFICE and department.street is not None
            },
            "_majors": {(major.kind, major.code): major for major in self.category_majors},
            "_categories": {category.code: category for category in self.categories},
            "_channels": {channel.id: channel for channel in self.channels},
        }
        for name, index in indexes.items():
            object.__setattr__(self, name, index)

    # -- catalogue -------------------------------------------------------------

    def category(self, code: str) -> Category | None:
        """The category with ``code`` (``C0101``, ``E0102``), or None if there is none."""
        return self._categories.get(code)

    def major_of(self, category: Category) -> CategoryMajor:
        """The major class (大类) a category belongs to."""
        return self._majors[(category.kind, category.major)]

    def routing_rule(self, category: Category, street: str, area_class: str) -> RoutingRule | None:
        """The first rule of ``routing.json`` matching such a case, or None: route by the catalogue."""
        for rule in self.routing:
            if rule.match.matches(category, street, area_class):
                return rule
        return None

    # -- places ----------------------------------------------------------------

    def cell(self, code: str) -> GridCell | None:
        """The grid cell with a 14-digit ``code``, or None."""
        return self._cells.get(code)

    def cell_at(self, lat: float, lon: float) -> GridCell | None:
        """The grid cell containing a WGS84 point, or None outside the city.

        The grid is a regular lattice, so the cell's row and column are
        computed, not searched for: constant time whatever the grid's size.
        """
        if not (math.isfinite(lat) and math.isfinite(lon)):
            return None
        grid = self.district.grid
        row = math.floor((lat - grid.origin_lat) / grid.cell_lat_deg)
        col = math.floor((lon - grid.origin_lon) / grid.cell_lon_deg)
        return self._cells_by_position.get((row, col))

    def street(self, code: str) -> Street | None:
        return self._streets.get(code)

    def community(self, code: str) -> Community | None:
        return self._communities.get(code)

    def community_of(self, cell: GridCell) -> Community:
        return self._communities[cell.community]

    def street_of(self, place: GridCell | Community) -> Street:
        return self._streets[place.street]

    # -- organisation ----------------------------------------------------------

    def department(self, department_id: str) -> Department | None:
        return self._departments.get(department_id)

    def street_office(self, street_code: str) -> Department:
        """The street office (块) responsible for a street; KeyError for an unknown street."""
        return self._street_offices[street_code]

    def channel(self, channel_id: str) -> Channel | None:
        return self._channels.get(channel_id)
