"""Events on ``scores``: each unit's indicators, score, band and rank for a period (DOMAIN.md §6).

Published when a unit's figures change and once more, ``final``, when the
period closes; the latest event per (unit, period) is the truth, so a
dashboard can keep just that. Keyed by unit id.
"""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Literal

from pydantic import Field, StringConstraints, model_validator

from shared.events.envelope import HEADER_AREA, HEADER_DEPARTMENT, EventData
from shared.events.types import Count, Identifier, Ordinal, Rate, ValueObject

UnitType = Literal["department", "area", "community", "grid"]
PeriodType = Literal["day", "week", "month", "quarter", "year"]
Band = Literal["A", "B", "C", "D", "E"]

#: Period labels in Asia/Shanghai: ``2026-11-17``, ``2026-W47``, ``2026-11``, ``2026-Q4``, ``2026``.
PERIOD_LABEL_PATTERNS: dict[str, str] = {
    "day": r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$",
    "week": r"^[0-9]{4}-W(0[1-9]|[1-4][0-9]|5[0-3])$",
    "month": r"^[0-9]{4}-(0[1-9]|1[0-2])$",
    "quarter": r"^[0-9]{4}-Q[1-4]$",
    "year": r"^[0-9]{4}$",
}


class Indicators(ValueObject):
    """Counts for the unit's cohort: cases first dispatched in the period (ISSUE 6 defaults)."""

    due: Count = Field(description="cohort size (应处置数)")
    closed: Count = Field(description="cohort cases closed")
    on_time: Count = Field(
        description="cohort cases handled by the deadline in force, then verified"
    )
    overdue: Count = Field(description="cohort cases ever overdue")
    rework: Count = Field(description="rework orders on cohort cases")
    responded: Count = Field(description="cohort cases accepted before the sign-for deadline")
    rated: Count
    satisfied: Count
    basically_satisfied: Count
    rebounds: Count = Field(description="bounce-backs raised in the period")
    failed_verification_3x: Count = Field(
        default=0, description="cohort cases that failed verification three or more times"
    )


class Rates(ValueObject):
    """Rates as fractions; null where the denominator is zero (not 0)."""

    on_time_rate: Rate | None = Field(description="on_time / due")
    closure_rate: Rate | None = Field(description="closed / due")
    response_rate: Rate | None = Field(description="responded / due")
    # Above 1 is possible: a case may be reworked more than once.
    rework_rate: Annotated[float, Field(ge=0)] | None = Field(description="rework / closed")
    satisfaction_rate: Rate | None = Field(
        description="(satisfied + 0.9 basically_satisfied) / rated"
    )


class ScoreFlags(ValueObject):
    """Consequences the seeds attach to a ranking."""

    bottom_three: bool = Field(description="among the three lowest-ranked units")
    talk: bool = Field(description="last in two months of one quarter: called in for a talk (约谈)")


class ScorePublished(EventData):
    """A unit's indicators, rates, composite score, band and rank for one period.

    Departments (条) and areas (块) are scored and ranked; communities and grid
    cells get indicators for the heat map. Units with nothing due are not
    ranked and may have no score.
    """

    event_type: ClassVar[str] = "score.published"
    topic: ClassVar[str] = "scores"
    subject_field: ClassVar[str] = "unit_id"

    unit_type: UnitType
    unit_id: Identifier
    period_type: PeriodType
    period: Annotated[str, StringConstraints(min_length=4, max_length=10)] = Field(
        description="period label: 2026-11-17, 2026-W47, 2026-11, 2026-Q4 or 2026"
    )
    indicators: Indicators
    rates: Rates
    score: Annotated[float, Field(ge=0, le=100)] | None
    rank: Ordinal | None = Field(description="1 is best; ties share a rank; null when not ranked")
    ranked_units: Count = Field(description="how many units of this type were ranked")
    band: Band | None
    flags: ScoreFlags
    final: bool = Field(description="the period is closed and these figures will not change")

    @model_validator(mode="after")
    def _period_matches_type(self) -> ScorePublished:
        if not re.fullmatch(PERIOD_LABEL_PATTERNS[self.period_type], self.period):
            raise ValueError(f"period {self.period!r} is not a {self.period_type} label")
        return self

    def routing(self) -> dict[str, str]:
        """A department's or area's own scores carry its id, so it can filter them like its cases."""
        if self.unit_type == "department":
            return {HEADER_DEPARTMENT: self.unit_id}
        if self.unit_type == "area":
            return {HEADER_AREA: self.unit_id}
        return {}
