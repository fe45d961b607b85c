"""Scoring scaled out: two runtimes sharing the partitions leave exactly the figures of one.

The benchmark's aggregation rate is measured with two processes sharing the
partitions; this is the test that such a deployment counts every event once:
the scripted month gives the expected table, and a one-process replay of the
topics gives the same figures, unit by unit and period by period.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest

from services.scoring.recompute import compare, recompute
from shared.runtime import ServiceRuntime
from tests.integration.helpers import eventually
from tests.integration.scoring.conftest import (
    http_client,
    produce_events,
    scoring_settings,
    start_scoring,
    wait_consumed,
)
from tests.integration.scoring.month import DEPARTMENTS_NOVEMBER, INDICATOR_ORDER, november
from tests.unit.scoring.story import CST

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=CST)


def assigned(runtime: ServiceRuntime) -> set[tuple[str, int]]:
    """The partitions this runtime's consumers hold now."""
    held: set[tuple[str, int]] = set()
    assert runtime.broker is not None
    for sub in runtime.broker.subscribers:
        consumer = getattr(sub, "consumer", None)
        if consumer is not None:
            held |= {(tp.topic, tp.partition) for tp in consumer.assignment()}
    return held


async def test_two_runtimes_sharing_the_partitions_count_the_month_once(database_url, bootstrap):
    events = november()
    prefix = f"t{uuid.uuid4().hex[:8]}_"
    settings = scoring_settings(prefix, database_url, bootstrap)
    first, _ = await start_scoring(settings, NOW)
    second, _ = await start_scoring(settings, NOW)
    try:
        # Both hold partitions of the same groups before anything is produced.
        await eventually(
            lambda: _both_hold(first, second),
            lambda both: both,
            seconds=60,
            what="the partitions shared between the two runtimes",
        )
        assert not assigned(first) & assigned(second)
        await produce_events(settings, events)
        await wait_consumed(settings, len(events))

        async with http_client(first) as http:
            got = await http.get(
                "/v1/scores", params={"unit_type": "department", "period": "2026-11"}
            )
        units = {row["unit_id"]: row for row in got.json()["units"]}
        assert {
            u: tuple(r["indicators"][name] for name in INDICATOR_ORDER) for u, r in units.items()
        } == DEPARTMENTS_NOVEMBER

        target = f"{prefix}scoring_one"
        await recompute(settings, target)
        assert await compare(database_url, settings.db_schema, target) == []
    finally:
        await second.stop()
        await first.stop()


async def _both_hold(first: ServiceRuntime, second: ServiceRuntime) -> bool:
    return bool(assigned(first)) and bool(assigned(second))
