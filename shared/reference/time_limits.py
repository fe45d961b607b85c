"""Durations as the reference data writes them: a value and a unit.

Working units count only working time on the work calendar; natural units
count the clock. ``shared.calendar.WorkCalendar.deadline`` turns one into an
instant.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class TimeUnit(StrEnum):
    MINUTES = "minutes"
    HOURS = "hours"
    DAYS = "days"
    WORKING_MINUTES = "working_minutes"
    WORKING_HOURS = "working_hours"
    WORKING_DAYS = "working_days"

    @property
    def is_working_time(self) -> bool:
        return self.value.startswith("working_")


class Duration(BaseModel):
    """A non-negative amount of time, e.g. a notice interval that may be zero."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: float = Field(ge=0, allow_inf_nan=False)
    unit: TimeUnit


class TimeLimit(Duration):
    """A time limit (处置时限): strictly positive, since a zero limit is always late."""

    value: float = Field(gt=0, allow_inf_nan=False)
