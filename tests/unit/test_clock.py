import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from shared.clock import ManualClock, ScaledClock, SystemClock, clock_from_settings

T0 = datetime(2026, 11, 2, 0, 30, tzinfo=UTC)


def test_scaled_clock_runs_faster_than_the_wall():
    clock = ScaledClock(3600, T0)
    assert clock.real_seconds(timedelta(hours=2)) == pytest.approx(2.0)
    first = clock.now()
    assert first >= T0
    assert first - T0 < timedelta(minutes=10), "a fresh clock starts at its start instant"


async def test_scaled_clock_sleeps_in_scaled_time():
    clock = ScaledClock(3600, T0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await clock.sleep_until(clock.now() + timedelta(minutes=6))  # 0.1 s of wall time
    assert 0.05 < loop.time() - started < 1.0


async def test_manual_clock_wakes_sleepers_only_when_moved_past_their_instant():
    clock = ManualClock(T0)
    woke = asyncio.Event()

    async def sleeper() -> None:
        await clock.sleep_until(T0 + timedelta(hours=1))
        woke.set()

    task = asyncio.create_task(sleeper())
    await asyncio.sleep(0)
    clock.advance(timedelta(minutes=59))
    await asyncio.sleep(0)
    assert not woke.is_set()
    clock.advance(timedelta(minutes=1))
    await asyncio.wait_for(task, 1)
    assert woke.is_set()


def test_clock_from_settings():
    assert isinstance(clock_from_settings(1.0, None), SystemClock)
    scaled = clock_from_settings(60, "2026-11-02T08:30:00+08:00")
    assert isinstance(scaled, ScaledClock)
    with pytest.raises(ValueError, match="UTC offset"):
        clock_from_settings(60, "2026-11-02T08:30:00")
    with pytest.raises(ValueError):
        ScaledClock(0)


def test_processes_with_one_anchor_share_one_clock():
    import time

    anchor = time.time() - 10  # the clock started ten wall seconds ago
    early = ScaledClock(60, T0, anchor)
    late = ScaledClock(60, T0, anchor)
    assert abs((early.now() - late.now()).total_seconds()) < 1
    assert timedelta(minutes=9, seconds=59) < early.now() - T0 < timedelta(minutes=11)
