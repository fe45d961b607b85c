"""Deadlines: when a dispatch's clocks run out, and how an extension moves them.

A dispatch starts three limits of the case's category (处置时限): signing
for it, handling it (per area class where the catalogue says so) and, once
handled, the inspector's verification. Ordinary cases count working time on
the work calendar; urgent cases, and limits written in natural units, count
the clock. The start is an event's own time, never the wall clock, so
replaying a topic gives the same deadlines.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from shared.calendar import WorkCalendar
from shared.events.types import Deadlines
from shared.reference import Category, TimeLimit, TimeUnit

ClockKind = Literal["working", "natural"]

_DAY = timedelta(days=1)
_UNIT = {
    TimeUnit.MINUTES: timedelta(minutes=1),
    TimeUnit.HOURS: timedelta(hours=1),
    TimeUnit.DAYS: _DAY,
    TimeUnit.WORKING_MINUTES: timedelta(minutes=1),
    TimeUnit.WORKING_HOURS: timedelta(hours=1),
    TimeUnit.WORKING_DAYS: _DAY,
}
_DAY_UNITS = (TimeUnit.DAYS, TimeUnit.WORKING_DAYS)


def clock_of(limit: TimeLimit, urgent: bool) -> ClockKind:
    """How ``limit`` counts for a case: urgent cases and natural units count natural time."""
    return "working" if limit.unit.is_working_time and not urgent else "natural"


def limit_span(limit: TimeLimit, urgent: bool, calendar: WorkCalendar) -> timedelta:
    """``limit`` as a span on its own clock: a working day is the calendar's working day."""
    if clock_of(limit, urgent) == "working" and limit.unit is TimeUnit.WORKING_DAYS:
        return calendar.working_day * limit.value
    return _UNIT[limit.unit] * limit.value


def deadlines_for(
    start: datetime,
    category: Category,
    area_class: str,
    urgent: bool,
    calendar: WorkCalendar,
    tier_handle: TimeLimit | None = None,
) -> Deadlines:
    """The deadlines of a dispatch at ``start``: sign for, handle, and the verification limit."""
    plan = LimitPlan.of(category, area_class, urgent, calendar, tier_handle)
    return plan.deadlines(start, calendar)


@dataclass(frozen=True)
class LimitPlan:
    """The limits of a category for one area class and urgency, ready to start at any instant."""

    sign_for: TimeLimit
    handle: TimeLimit
    urgent: bool
    verify_limit: timedelta
    verify_clock: ClockKind
    handle_clock: ClockKind

    @classmethod
    def of(
        cls,
        category: Category,
        area_class: str,
        urgent: bool,
        calendar: WorkCalendar,
        tier_handle: TimeLimit | None = None,
    ) -> LimitPlan:
        """``tier_handle`` replaces the handling limit for a case of another tier than its category's."""
        verify = category.limits.verify
        handle = tier_handle or category.handle_limit(area_class)
        return cls(
            sign_for=category.limits.sign_for,
            handle=handle,
            urgent=urgent,
            verify_limit=limit_span(verify, urgent, calendar),
            verify_clock=clock_of(verify, urgent),
            handle_clock=clock_of(handle, urgent),
        )

    def deadlines(self, start: datetime, calendar: WorkCalendar) -> Deadlines:
        """The deadlines of a dispatch at ``start``."""
        return Deadlines(
            sign_for=calendar.deadline(start, self.sign_for, urgent=self.urgent),
            handle=calendar.deadline(start, self.handle, urgent=self.urgent),
            verify_limit=self.verify_limit,
            clock=self.verify_clock,
        )


def extension_amount(requested: timedelta, clock: ClockKind, calendar: WorkCalendar) -> timedelta:
    """A requested extension as time on the handling deadline's clock.

    On the work calendar a department asking for "2 days" means two working
    days, so each whole day of the request is one working day (7.5 h in the
    sample city) and the rest counts as working hours and minutes.
    """
    if clock == "natural":
        return requested
    whole_days = requested.days
    return calendar.working_day * whole_days + (requested - _DAY * whole_days)


def maximum_amount(limit: TimeLimit, clock: ClockKind, calendar: WorkCalendar) -> timedelta:
    """The configured maximum extension as time on the handling deadline's clock, like a request."""
    if limit.unit in _DAY_UNITS:
        day = calendar.working_day if clock == "working" else _DAY
        return day * limit.value
    return _UNIT[limit.unit] * limit.value


def extend(
    deadline: datetime, amount: timedelta, clock: ClockKind, calendar: WorkCalendar
) -> datetime:
    """``deadline`` moved later by ``amount`` of time on ``clock``."""
    if clock == "working":
        return calendar.add_working_time(deadline, amount)
    return calendar.add_natural_time(deadline, amount)
