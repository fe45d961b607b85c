"""The work calendar: when a case's time limit runs out.

Ordinary cases count working time only: the working periods (08:30-12:00 and
13:30-17:30 in the sample city) of working days, where a working day is a
weekday that is not a public holiday, or a weekend day named as a make-up
working day (调休上班). Urgent cases count natural time. All of this comes from
``calendar.json`` (see ``shared.reference.calendar_data``).

Instants may come in any time zone and must be timezone-aware; arithmetic
happens in the calendar's zone (Asia/Shanghai) and results are returned in it.
Working periods are local wall-clock times.

Outside the years the holiday lists cover, the calendar by default falls back
to the weekend rule: weekdays work, weekend days don't, and there are no
holidays or make-up days, because next year's notice may not be published (or
loaded) yet when a December deadline runs into January. A calendar built with
``strict=True`` raises ``CalendarRangeError`` there instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from shared.reference.calendar_data import CalendarData
from shared.reference.time_limits import Duration, TimeUnit

_DAY = timedelta(days=1)
_ZERO = timedelta(0)

# Natural length of one unit; working units are read as natural time for urgent cases.
_NATURAL_UNIT = {
    TimeUnit.MINUTES: timedelta(minutes=1),
    TimeUnit.HOURS: timedelta(hours=1),
    TimeUnit.DAYS: timedelta(days=1),
    TimeUnit.WORKING_MINUTES: timedelta(minutes=1),
    TimeUnit.WORKING_HOURS: timedelta(hours=1),
    TimeUnit.WORKING_DAYS: timedelta(days=1),
}


class CalendarRangeError(ValueError):
    """A strict calendar was asked about a day outside the years its data covers."""


def _micros(span: timedelta) -> int:
    # Whole microseconds: integer arithmetic keeps add/between exact inverses.
    return (span.days * 86_400 + span.seconds) * 1_000_000 + span.microseconds


def _time_micros(moment: time) -> int:
    return (
        (moment.hour * 60 + moment.minute) * 60 + moment.second
    ) * 1_000_000 + moment.microsecond


def _require_aware(instant: datetime, name: str) -> None:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {instant.isoformat()}")


class WorkCalendar:
    """Working days and working time of one city, and deadlines counted on them."""

    def __init__(
        self,
        *,
        timezone: str | ZoneInfo,
        working_periods: Sequence[tuple[time, time]],
        weekend_days: Iterable[int],
        holidays: Iterable[date],
        makeup_working_days: Iterable[date],
        years: Iterable[int],
        strict: bool = False,
    ) -> None:
        """``weekend_days`` are ISO weekday numbers (Saturday = 6, Sunday = 7)."""
        self._tz = timezone if isinstance(timezone, ZoneInfo) else ZoneInfo(timezone)
        self._periods = tuple(
            (_time_micros(start), _time_micros(end)) for start, end in working_periods
        )
        if not self._periods:
            raise ValueError("a work calendar needs at least one working period")
        previous_end = 0
        for start, end in self._periods:
            if not previous_end <= start < end:
                raise ValueError("working periods must be increasing and must not overlap")
            previous_end = end
        self._weekend = frozenset(weekend_days)
        if len(self._weekend - {1, 2, 3, 4, 5, 6, 7}) or len(self._weekend) >= 7:
            raise ValueError("weekend days must be ISO weekday numbers and leave a working day")
        self._holidays = frozenset(holidays)
        self._makeup = frozenset(makeup_working_days)
        self._years = frozenset(years)
        self._strict = strict
        self._day_micros = sum(end - start for start, end in self._periods)

    @classmethod
    def from_data(cls, data: CalendarData, *, strict: bool = False) -> WorkCalendar:
        """The calendar described by ``calendar.json`` (``ReferenceData.calendar``)."""
        holidays = {
            date.fromordinal(ordinal)
            for holiday in data.holidays
            for ordinal in range(holiday.first.toordinal(), holiday.last.toordinal() + 1)
        }
        return cls(
            timezone=data.timezone,
            working_periods=[(period.start, period.end) for period in data.working_periods],
            weekend_days=[day.iso for day in data.weekend_days],
            holidays=holidays,
            makeup_working_days=[makeup.day for makeup in data.makeup_working_days],
            years=data.years,
            strict=strict,
        )

    @property
    def timezone(self) -> ZoneInfo:
        return self._tz

    @property
    def working_day(self) -> timedelta:
        """Working time in one working day (7.5 h in the sample city): one ``working_days`` unit."""
        return timedelta(microseconds=self._day_micros)

    def covers(self, day: date) -> bool:
        """Whether the holiday data covers ``day``'s year (else the weekend rule applies)."""
        return day.year in self._years

    def is_working_day(self, day: date) -> bool:
        """Whether ``day`` has working periods.

        A datetime counts as its date in the calendar's zone.
        """
        if isinstance(day, datetime):
            # A datetime is a date too, but never equal to one: the holiday sets would miss it.
            _require_aware(day, "day")
            day = day.astimezone(self._tz).date()
        if day.year not in self._years:
            if self._strict:
                covered = ", ".join(str(year) for year in sorted(self._years))
                raise CalendarRangeError(
                    f"{day.isoformat()} is outside the calendar's years ({covered})"
                )
            return day.isoweekday() not in self._weekend
        if day in self._makeup:
            return True
        if day in self._holidays:
            return False
        return day.isoweekday() not in self._weekend

    def is_working_time(self, instant: datetime) -> bool:
        """Whether ``instant`` falls inside a working period of a working day."""
        _require_aware(instant, "instant")
        local = instant.astimezone(self._tz)
        if not self.is_working_day(local.date()):
            return False
        offset = _time_micros(local.time())
        return any(start <= offset < end for start, end in self._periods)

    def add_working_time(self, start: datetime, duration: timedelta) -> datetime:
        """The instant when ``duration`` of working time has elapsed after ``start``.

        A start outside working time begins counting at the next working
        instant. Zero returns ``start`` unchanged. A duration that runs out
        exactly at the end of a period gives that end (12:00, not 13:30).
        """
        _require_aware(start, "start")
        if duration < _ZERO:
            raise ValueError(f"duration must not be negative, got {duration}")
        if duration == _ZERO:
            return start
        remaining = _micros(duration)
        local = start.astimezone(self._tz)
        day = local.date()
        offset = _time_micros(local.time())
        while True:
            if self.is_working_day(day):
                # Strictly more than a day left: skip the whole day in one step.
                if offset == 0 and remaining > self._day_micros:
                    remaining -= self._day_micros
                else:
                    for period_start, period_end in self._periods:
                        if offset >= period_end:
                            continue
                        begin = max(offset, period_start)
                        available = period_end - begin
                        if remaining <= available:
                            return self._instant(day, begin + remaining)
                        remaining -= available
                        offset = period_end
            day += _DAY
            offset = 0

    def working_time_between(self, earlier: datetime, later: datetime) -> timedelta:
        """Working time from ``earlier`` to ``later``; negative if they come the other way round."""
        _require_aware(earlier, "earlier")
        _require_aware(later, "later")
        if later < earlier:
            return -self.working_time_between(later, earlier)
        first = earlier.astimezone(self._tz)
        last = later.astimezone(self._tz)
        total = 0
        day = first.date()
        while day <= last.date():
            if self.is_working_day(day):
                low = _time_micros(first.time()) if day == first.date() else 0
                high = _time_micros(last.time()) if day == last.date() else 86_400_000_000
                for period_start, period_end in self._periods:
                    total += max(0, min(period_end, high) - max(period_start, low))
            day += _DAY
        return timedelta(microseconds=total)

    def add_natural_time(self, start: datetime, duration: timedelta) -> datetime:
        """``start`` plus elapsed time, ignoring the calendar (urgent cases, natural units)."""
        _require_aware(start, "start")
        # Through UTC: aware + timedelta in a zone with DST would add wall-clock time.
        return (start.astimezone(UTC) + duration).astimezone(self._tz)

    def deadline(
        self, start: datetime, limit: Duration, *, urgent: bool = False, share: float = 1.0
    ) -> datetime:
        """When ``limit`` (or ``share`` of it) runs out for a case whose clock starts at ``start``.

        ``working_days`` N is N working days' worth of working time (N x 7.5 h),
        ``working_hours`` and ``working_minutes`` count working time; ``days``,
        ``hours`` and ``minutes`` count natural time. An urgent case counts
        natural time for every unit: N working days become N x 24 h. ``share``
        gives earlier marks such as the yellow warning at 0.8 of the limit.
        """
        if not share >= 0:  # also rejects NaN
            raise ValueError(f"share must not be negative, got {share}")
        amount = limit.value * share
        if limit.unit.is_working_time and not urgent:
            unit = (
                self.working_day
                if limit.unit is TimeUnit.WORKING_DAYS
                else _NATURAL_UNIT[limit.unit]
            )
            return self.add_working_time(start, unit * amount)
        return self.add_natural_time(start, _NATURAL_UNIT[limit.unit] * amount)

    def _instant(self, day: date, offset_micros: int) -> datetime:
        wall = datetime.combine(day, time.min) + timedelta(microseconds=offset_micros)
        return wall.replace(tzinfo=self._tz)
