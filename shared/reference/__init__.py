"""Reference data: the city's places, category catalogue, departments, channels and rules.

Plain data files (JSON, and CSV for the grid) validated at start-up by
``load_reference``; the sample city lives in ``reference_data/sample-city``
and ``REFERENCE_DATA_DIR`` points at another city's folder of the same format.
"""

from shared.reference.calendar_data import (
    CalendarData,
    Holiday,
    MakeupWorkingDay,
    Weekday,
    WorkingPeriod,
)
from shared.reference.catalogue import (
    AssignmentOrder,
    AttributeType,
    Category,
    CategoryKind,
    CategoryLimits,
    CategoryMajor,
    DuplicateRule,
    FilingAttribute,
    FilingConditions,
    HandlingTier,
    ReportField,
    Urgency,
)
from shared.reference.dataset import ReferenceData
from shared.reference.dispatching import DispatchRules
from shared.reference.errors import ReferenceDataError
from shared.reference.geography import (
    AreaClass,
    Community,
    District,
    GridCell,
    GridGeometry,
    Street,
)
from shared.reference.loader import (
    ENV_VAR,
    FILES,
    SAMPLE_CITY_DIR,
    load_reference,
    reference_directory,
)
from shared.reference.organisation import Channel, ChannelKind, Department, DepartmentKind
from shared.reference.routing import RoutingRule, RuleMatch
from shared.reference.scoring import Band, Indicator, ScoreTerm, ScoringRules
from shared.reference.supervision import Addressee, NoticeLevel, SupervisionRules
from shared.reference.time_limits import Duration, TimeLimit, TimeUnit

__all__ = [
    "ENV_VAR",
    "FILES",
    "SAMPLE_CITY_DIR",
    "Addressee",
    "AreaClass",
    "AssignmentOrder",
    "AttributeType",
    "Band",
    "CalendarData",
    "Category",
    "CategoryKind",
    "CategoryLimits",
    "CategoryMajor",
    "Channel",
    "ChannelKind",
    "Community",
    "Department",
    "DepartmentKind",
    "DispatchRules",
    "District",
    "DuplicateRule",
    "Duration",
    "FilingAttribute",
    "FilingConditions",
    "GridCell",
    "GridGeometry",
    "HandlingTier",
    "Holiday",
    "Indicator",
    "MakeupWorkingDay",
    "NoticeLevel",
    "ReferenceData",
    "ReferenceDataError",
    "ReportField",
    "RoutingRule",
    "RuleMatch",
    "ScoreTerm",
    "ScoringRules",
    "Street",
    "SupervisionRules",
    "TimeLimit",
    "TimeUnit",
    "Urgency",
    "Weekday",
    "WorkingPeriod",
    "load_reference",
    "reference_directory",
]
