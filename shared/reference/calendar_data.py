"""The work calendar as data: working periods, weekends, public holidays, make-up days.

China publishes next year's holidays and make-up working days (调休) each
November, so the calendar is extended yearly by editing ``calendar.json``.
``years`` says which years the holiday lists are complete for;
``shared.calendar.WorkCalendar`` documents what happens outside them.
"""

from __future__ import annotations

from datetime import date, time
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator


class Weekday(StrEnum):
    MONDAY = "monday"
    TUESDAY = "tuesday"
    WEDNESDAY = "wednesday"
    THURSDAY = "thursday"
    FRIDAY = "friday"
    SATURDAY = "saturday"
    SUNDAY = "sunday"

    @property
    def iso(self) -> int:
        """The number ``date.isoweekday()`` gives this day (Monday = 1)."""
        return list(Weekday).index(self) + 1


class WorkingPeriod(BaseModel):
    """One period of a working day, in local wall-clock time (``"08:30"``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: time
    end: time

    @field_validator("start", "end")
    @classmethod
    def _naive(cls, moment: time) -> time:
        if moment.tzinfo is not None:
            raise ValueError("must be local wall-clock time without an offset")
        return moment

    @field_validator("end")
    @classmethod
    def _after_start(cls, end: time, info: ValidationInfo) -> time:
        start = info.data.get("start")
        if start is not None and end <= start:
            raise ValueError(f"must be after start ({start.isoformat('minutes')})")
        return end


class Holiday(BaseModel):
    """A public holiday: every day from ``first`` to ``last`` inclusive is off."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name_zh: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    first: date
    last: date

    @field_validator("last")
    @classmethod
    def _not_before_first(cls, last: date, info: ValidationInfo) -> date:
        first = info.data.get("first")
        if first is not None and last < first:
            raise ValueError(f"must not be before first ({first.isoformat()})")
        return last


class MakeupWorkingDay(BaseModel):
    """A weekend day worked in exchange for a holiday (调休上班)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    day: date
    holiday: str = Field(min_length=1)  # the ``name_en`` of the holiday it makes up for


class CalendarData(BaseModel):
    """Everything ``calendar.json`` holds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str
    years: tuple[int, ...] = Field(min_length=1)
    source: str = ""
    working_periods: tuple[WorkingPeriod, ...] = Field(min_length=1)
    weekend_days: tuple[Weekday, ...]
    holidays: tuple[Holiday, ...] = ()
    makeup_working_days: tuple[MakeupWorkingDay, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {name!r}") from error
        return name

    @field_validator("weekend_days")
    @classmethod
    def _some_working_weekday(cls, days: tuple[Weekday, ...]) -> tuple[Weekday, ...]:
        if len(set(days)) != len(days):
            raise ValueError("must not repeat a day")
        if len(days) >= 7:
            raise ValueError("leaves no working weekday")
        return days

    @field_validator("years")
    @classmethod
    def _distinct_years(cls, years: tuple[int, ...]) -> tuple[int, ...]:
        if len(set(years)) != len(years):
            raise ValueError("must not repeat a year")
        if any(not 1900 < year < 2200 for year in years):
            raise ValueError("must be calendar years like 2026")
        return years
