"""score.published on the real broker: on change, at most once per interval, final when a period closes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from shared.events import ScorePublished, decode
from tests.integration.helpers import eventually, read_topic
from tests.integration.scoring.conftest import (
    produce_events,
    scoring_settings,
    start_scoring,
    wait_consumed,
)
from tests.unit.scoring.story import CST, Story, at

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]


async def publications(settings, unit_type, unit_id, period) -> list[ScorePublished]:
    records = await read_topic(settings.kafka, settings.topic_prefix + "scores", seconds=2)
    out = []
    for record in records:
        data = decode(record.value).data
        assert isinstance(data, ScorePublished)
        if (data.unit_type, data.unit_id, data.period) == (unit_type, unit_id, period):
            out.append(data)
    return out


async def test_published_on_change_at_most_once_per_interval_and_final_at_period_end(
    prefix, database_url, bootstrap
):
    settings = scoring_settings(prefix, database_url, bootstrap, publish_interval_seconds=600)
    runtime, clock = await start_scoring(settings, datetime(2026, 11, 30, 20, 0, tzinfo=CST))
    consumed = 0

    async def send(events):
        nonlocal consumed
        await produce_events(settings, events)
        consumed += len(events)
        await wait_consumed(settings, consumed)

    def sanitation_november():
        return publications(settings, "department", "sanitation", "2026-11")

    try:
        case = Story("K1", department="sanitation")
        case.registered(at(30, 9))
        case.dispatched(at(30, 10))
        case.accepted(at(30, 10.5))
        await send(case.events)
        first = await eventually(sanitation_november, lambda p: len(p) >= 1, what="a first score")
        assert len(first) == 1
        assert (first[0].indicators.due, first[0].indicators.closed) == (1, 0)
        assert (first[0].rank, first[0].ranked_units, first[0].final) == (1, 1, False)
        assert first[0].score == 0.0  # nothing closed yet: 0 over the closure and on-time terms

        # Closed within the interval: the change waits for the interval to pass.
        await send(case.handled_verified_closed(at(30, 14)))
        await asyncio.sleep(1.5)  # several looks by the publisher
        assert len(await sanitation_november()) == 1

        clock.advance(timedelta(seconds=601))
        second = await eventually(sanitation_november, lambda p: len(p) >= 2, what="the update")
        assert len(second) == 2
        assert (second[1].indicators.closed, second[1].score, second[1].final) == (1, 100.0, False)

        # Past the month's end: every unit of the month gets a final publication.
        clock.set(datetime(2026, 12, 1, 0, 0, 1, tzinfo=CST))
        third = await eventually(
            sanitation_november, lambda p: any(x.final for x in p), what="the final"
        )
        assert [x.final for x in third] == [False, False, True]
        assert third[-1].indicators.closed == 1
        day = await publications(settings, "department", "sanitation", "2026-11-30")
        assert day[-1].final
        week = await publications(settings, "department", "sanitation", "2026-W49")
        assert week and not any(x.final for x in week), "30 Nov - 6 Dec is still running"
        grid = await publications(settings, "grid", case.grid, "2026-11")
        assert grid[-1].final and grid[-1].score is None and grid[-1].rank is None

        # A late rating still changes November's cohort figures, but not what was published.
        await send([case.rated(at(1, 10, month=12), "satisfied")])
        clock.advance(timedelta(seconds=601))
        await asyncio.sleep(1.5)
        assert len(await sanitation_november()) == 3
    finally:
        await runtime.stop()


async def test_the_recompute_command_rebuilds_and_compares(prefix, database_url, bootstrap):
    settings = scoring_settings(prefix, database_url, bootstrap)
    runtime, _clock = await start_scoring(settings, datetime(2026, 11, 30, 20, 0, tzinfo=CST))
    try:
        case = Story("K2", department="parks")
        case.registered(at(30, 9))
        case.dispatched(at(30, 10))
        case.handled_verified_closed(at(30, 12))
        await produce_events(settings, case.events)
        await wait_consumed(settings, len(case.events))
    finally:
        await runtime.stop()
    env = {
        **os.environ,
        "TOPIC_PREFIX": prefix,
        "DB_SCHEMA": f"{prefix}scoring",
        "LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "services.scoring.recompute", "--quiet"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"recomputed {len(case.events)} events" in done.stdout
    assert "are equal" in done.stdout

    # Tamper with the live figures: the same command now reports the difference and fails.
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            f"UPDATE {prefix}scoring.unit_figures SET closed = closed + 1 "
            "WHERE unit_type = 'department' AND unit_id = 'parks' AND period = '2026-11'"
        )
    finally:
        await conn.close()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "department parks month 2026-11: closed 2→1" in done.stdout
