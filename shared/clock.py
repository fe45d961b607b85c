"""The injectable clock: real, scaled (simulate a month in minutes) or manual (tests).

Domain code takes ``now`` as an argument; only the I/O rooms ask a clock.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...

    async def sleep_until(self, instant: datetime) -> None: ...

    def real_seconds(self, span: timedelta) -> float:
        """How many wall-clock seconds a span of clock time takes."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, instant: datetime) -> None:
        await asyncio.sleep(max(0.0, self.real_seconds(instant - self.now())))

    def real_seconds(self, span: timedelta) -> float:
        return span.total_seconds()


class ScaledClock:
    """Clock time runs ``scale`` times faster than the wall clock (3600 = an hour a second)."""

    def __init__(
        self, scale: float, start: datetime | None = None, anchor: float | None = None
    ) -> None:
        """``anchor`` is the Unix time at which clock time is ``start``.

        Processes given the same start and anchor share one clock, whenever each
        of them started; without an anchor the clock starts when it is made.
        """
        if scale <= 0:
            raise ValueError("clock scale must be positive")
        self.scale = scale
        self._start = start or datetime.now(UTC)
        self._anchor = time.time() if anchor is None else anchor

    def now(self) -> datetime:
        elapsed = (time.time() - self._anchor) * self.scale
        return self._start + timedelta(seconds=elapsed)

    async def sleep_until(self, instant: datetime) -> None:
        await asyncio.sleep(max(0.0, self.real_seconds(instant - self.now())))

    def real_seconds(self, span: timedelta) -> float:
        return span.total_seconds() / self.scale


class ManualClock:
    """A clock that only moves when told to; sleepers wake when it passes their instant."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._moved = asyncio.Event()

    def now(self) -> datetime:
        return self._now

    def advance(self, span: timedelta) -> None:
        self.set(self._now + span)

    def set(self, instant: datetime) -> None:
        self._now = instant
        self._moved.set()
        self._moved = asyncio.Event()

    async def sleep_until(self, instant: datetime) -> None:
        while self._now < instant:
            await self._moved.wait()

    def real_seconds(self, span: timedelta) -> float:
        return 0.0


def clock_span(clock: Clock, real_seconds: float) -> timedelta:
    """The span of ``clock`` time that passes in ``real_seconds`` of wall-clock time.

    For waits that exist in real time (a message on its way through the broker)
    but are compared with clock instants. A manual clock moves only when told
    to, so no span of it passes by itself: zero.
    """
    per_clock_second = clock.real_seconds(timedelta(seconds=1))
    if per_clock_second <= 0:
        return timedelta(0)
    return timedelta(seconds=real_seconds / per_clock_second)


def clock_from_settings(scale: float, start: str | None, anchor: float | None = None) -> Clock:
    if scale == 1.0 and start is None:
        return SystemClock()
    begin = datetime.fromisoformat(start) if start else None
    if begin is not None and begin.tzinfo is None:
        raise ValueError("CLOCK_START must carry a UTC offset, e.g. 2026-11-02T08:30:00+08:00")
    return ScaledClock(scale, begin, anchor)
