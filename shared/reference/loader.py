"""Loading and validating a reference-data set from a directory of plain files.

``REFERENCE_DATA_DIR`` replaces the whole set (every file comes from that
directory; nothing falls back to the sample city), so a real city ships its
own folder in the same format. Any problem stops the load with a
``ReferenceDataError`` naming the file, the record and the field.
"""

from __future__ import annotations

import os
from pathlib import Path

from shared.reference import consistency
from shared.reference.calendar_data import CalendarData
from shared.reference.catalogue import Category, CategoryMajor
from shared.reference.dataset import ReferenceData
from shared.reference.dispatching import DispatchRules
from shared.reference.errors import ReferenceDataError
from shared.reference.files import read_csv_records, read_document, read_records
from shared.reference.geography import Community, District, GridCell, Street
from shared.reference.organisation import Channel, Department
from shared.reference.routing import RoutingRule
from shared.reference.scoring import ScoringRules
from shared.reference.supervision import SupervisionRules

ENV_VAR = "REFERENCE_DATA_DIR"
SAMPLE_CITY_DIR = Path(__file__).resolve().parents[2] / "reference_data" / "sample-city"

#: Every file of a set; a folder given in REFERENCE_DATA_DIR must hold them all.
FILES = (
    "district.json",
    "streets.json",
    "communities.json",
    "grid_cells.csv",
    "departments.json",
    "category_majors.json",
    "categories.json",
    "channels.json",
    "calendar.json",
    "scoring.json",
    "supervision.json",
    "routing.json",
    "dispatch.json",
)


def reference_directory() -> Path:
    """``REFERENCE_DATA_DIR`` if set, else the sample city shipped with the repository."""
    configured = os.environ.get(ENV_VAR)
    return Path(configured) if configured else SAMPLE_CITY_DIR


def load_reference(directory: Path | None = None) -> ReferenceData:
    """Read and validate the whole set from ``directory`` (default: ``reference_directory()``)."""
    directory = reference_directory() if directory is None else directory
    if not directory.is_dir():
        raise ReferenceDataError(
            str(directory),
            None,
            None,
            f"is not a directory (set {ENV_VAR} to a reference-data folder)",
        )

    district = read_document(directory, "district.json", District)
    streets = read_records(directory, "streets.json", Street)
    communities = read_records(directory, "communities.json", Community)
    cells = read_csv_records(directory, "grid_cells.csv", GridCell)
    departments = read_records(directory, "departments.json", Department)
    majors = read_records(directory, "category_majors.json", CategoryMajor)
    categories = read_records(directory, "categories.json", Category)
    channels = read_records(directory, "channels.json", Channel)
    calendar = read_document(directory, "calendar.json", CalendarData)
    scoring = read_document(directory, "scoring.json", ScoringRules)
    supervision = read_document(directory, "supervision.json", SupervisionRules)
    routing = read_records(directory, "routing.json", RoutingRule)
    dispatch = read_document(directory, "dispatch.json", DispatchRules)

    consistency.check_places(district, streets, communities, cells)
    consistency.check_departments(departments, streets)
    consistency.check_catalogue(majors, categories, departments)
    consistency.check_channels(channels)
    consistency.check_calendar(calendar)
    consistency.check_routing(routing, categories, departments, streets)

    return ReferenceData(
        directory=directory,
        district=district,
        streets=tuple(record.model for record in streets),
        communities=tuple(record.model for record in communities),
        cells=tuple(record.model for record in cells),
        departments=tuple(record.model for record in departments),
        category_majors=tuple(record.model for record in majors),
        categories=tuple(record.model for record in categories),
        channels=tuple(record.model for record in channels),
        calendar=calendar,
        scoring=scoring,
        supervision=supervision,
        routing=tuple(record.model for record in routing),
        dispatch=dispatch,
    )
