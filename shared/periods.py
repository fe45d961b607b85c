"""Reporting periods in Asia/Shanghai: a day, an ISO week, a month, a quarter, a year.

Assessments in the city are counted in local time whatever the server's
zone: an event at 23:30 on 30 November (UTC+8) belongs to November even
though it is 15:30 UTC. Labels are the ones the ``scores`` topic carries:
``2026-11-22``, ``2026-W47`` (ISO 8601 week, so a week's year can differ
from the calendar year of its days), ``2026-11``, ``2026-Q4`` and ``2026``.
A period is half-open: ``start <= instant < end``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal, get_args
from zoneinfo import ZoneInfo

__all__ = [
    "PERIOD_TYPES",
    "TIMEZONE",
    "Period",
    "PeriodType",
    "local_day",
    "parse_period",
    "period_of",
    "periods_of",
    "periods_of_day",
]

TIMEZONE = ZoneInfo("Asia/Shanghai")

PeriodType = Literal["day", "week", "month", "quarter", "year"]
#: From the shortest to the longest.
PERIOD_TYPES: tuple[PeriodType, ...] = get_args(PeriodType)

_LABELS: tuple[tuple[PeriodType, re.Pattern[str]], ...] = (
    ("day", re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")),
    ("week", re.compile(r"^(\d{4})-W(\d{2})$")),
    ("month", re.compile(r"^(\d{4})-(\d{2})$")),
    ("quarter", re.compile(r"^(\d{4})-Q(\d)$")),
    ("year", re.compile(r"^(\d{4})$")),
)


@dataclass(frozen=True, order=True)
class Period:
    """One period: its type, its label and its local first day."""

    type: PeriodType
    label: str
    first_day: date

    @property
    def start(self) -> datetime:
        """The first instant of the period (midnight in Asia/Shanghai)."""
        return datetime.combine(self.first_day, time(0), tzinfo=TIMEZONE)

    @property
    def end(self) -> datetime:
        """The first instant after the period."""
        return datetime.combine(self.next_first_day, time(0), tzinfo=TIMEZONE)

    @property
    def next_first_day(self) -> date:
        d = self.first_day
        if self.type == "day":
            return d + timedelta(days=1)
        if self.type == "week":
            return d + timedelta(days=7)
        if self.type == "month":
            return _add_months(d, 1)
        if self.type == "quarter":
            return _add_months(d, 3)
        return date(d.year + 1, 1, 1)

    def contains(self, instant: datetime) -> bool:
        return self.start <= instant < self.end

    def next(self) -> Period:
        return _period_of_day(self.type, self.next_first_day)

    def previous(self) -> Period:
        return _period_of_day(self.type, self.first_day - timedelta(days=1))

    def days(self) -> list[Period]:
        """The days of the period, in order."""
        count = (self.next_first_day - self.first_day).days
        return [_period_of_day("day", self.first_day + timedelta(days=i)) for i in range(count)]

    def months(self) -> list[Period]:
        """The months that start inside the period (a quarter's three, a year's twelve)."""
        out: list[Period] = []
        d = self.first_day if self.first_day.day == 1 else _add_months(self.first_day, 1)
        while d < self.next_first_day:
            out.append(_period_of_day("month", d.replace(day=1)))
            d = _add_months(d.replace(day=1), 1)
        return out

    def enclosing(self, period_type: PeriodType) -> Period:
        """The period of ``period_type`` that holds this period's first day."""
        return _period_of_day(period_type, self.first_day)

    def __str__(self) -> str:
        return self.label


def _add_months(d: date, months: int) -> date:
    index = d.year * 12 + (d.month - 1) + months
    return date(index // 12, index % 12 + 1, 1)


def _period_of_day(period_type: PeriodType, d: date) -> Period:
    if period_type == "day":
        return Period("day", d.isoformat(), d)
    if period_type == "week":
        iso = d.isocalendar()
        return Period(
            "week", f"{iso.year}-W{iso.week:02d}", date.fromisocalendar(iso.year, iso.week, 1)
        )
    if period_type == "month":
        return Period("month", f"{d.year}-{d.month:02d}", date(d.year, d.month, 1))
    if period_type == "quarter":
        quarter = (d.month - 1) // 3 + 1
        return Period("quarter", f"{d.year}-Q{quarter}", date(d.year, 3 * quarter - 2, 1))
    return Period("year", f"{d.year}", date(d.year, 1, 1))


def local_day(instant: datetime) -> date:
    """The calendar day of ``instant`` in Asia/Shanghai."""
    if instant.tzinfo is None:
        raise ValueError("an instant must carry its UTC offset")
    return instant.astimezone(TIMEZONE).date()


def period_of(period_type: PeriodType, instant: datetime) -> Period:
    """The period of ``period_type`` that contains ``instant``."""
    if period_type not in PERIOD_TYPES:
        raise ValueError(f"unknown period type {period_type!r}; one of {', '.join(PERIOD_TYPES)}")
    return _period_of_day(period_type, local_day(instant))


def periods_of(instant: datetime) -> tuple[Period, ...]:
    """Every period an instant falls in: its day, week, month, quarter and year."""
    return periods_of_day(local_day(instant))


def periods_of_day(day: date) -> tuple[Period, ...]:
    """Every period a (local) day falls in, from the day itself to its year."""
    return tuple(_period_of_day(t, day) for t in PERIOD_TYPES)


def parse_period(label: str, period_type: PeriodType | None = None) -> Period:
    """The period a label names; its type is read from the label's shape unless given.

    Raises ``ValueError`` with a readable reason for a label that has the
    wrong shape or names no real period (``2026-02-30``, ``2026-W54``).
    """
    for kind, pattern in _LABELS:
        match = pattern.match(label)
        if match is None:
            continue
        if period_type is not None and kind != period_type:
            raise ValueError(f"{label!r} is a {kind} label, not a {period_type} label")
        numbers = [int(g) for g in match.groups()]
        try:
            first = _first_day(kind, numbers)
        except ValueError:
            raise ValueError(f"{label!r} is not a real {kind}") from None
        period = _period_of_day(kind, first)
        if period.label != label:
            raise ValueError(f"{label!r} is not a real {kind}")
        return period
    expected = {
        "day": "YYYY-MM-DD",
        "week": "YYYY-Www",
        "month": "YYYY-MM",
        "quarter": "YYYY-Qn",
        "year": "YYYY",
    }
    shapes = expected[period_type] if period_type else ", ".join(expected.values())
    raise ValueError(f"{label!r} is not a period label ({shapes})")


def _first_day(kind: PeriodType, n: list[int]) -> date:
    if kind == "day":
        return date(n[0], n[1], n[2])
    if kind == "week":
        return date.fromisocalendar(n[0], n[1], 1)
    if kind == "month":
        return date(n[0], n[1], 1)
    if kind == "quarter":
        if not 1 <= n[1] <= 4:
            raise ValueError("quarter out of range")
        return date(n[0], 3 * n[1] - 2, 1)
    return date(n[0], 1, 1)
