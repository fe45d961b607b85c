"""The inbox forgets event ids only once no copy of their event can come back.

Against the real broker (what it says of a topic's retention) and Postgres (the delete).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from aiokafka.admin import NewTopic
from prometheus_client import REGISTRY

from shared.db import create_pool, schema_lock_id, session_lock
from shared.inbox import _PRUNE_LOCK_BASE, MARGIN, prune, topic_retentions
from shared.kafka import _admin
from shared.migrations import migrate
from tests.integration.conftest import kafka_settings, service_settings
from tests.integration.helpers import create_topics, eventually, produce
from tests.integration.pingsvc import ping_runtime
from tests.integration.test_plumbing import applied, pings

DAY_MS = 86_400_000


async def _create_with_configs(cfg, topics: dict[str, dict[str, str]]) -> None:
    async with _admin(cfg) as admin:
        await admin.create_topics(
            [NewTopic(name, 1, 1, topic_configs=configs) for name, configs in topics.items()]
        )


async def _inbox_ids(db, schema: str) -> set[str]:
    return {r["event_id"] for r in await db.fetch(f"SELECT event_id FROM {schema}.inbox")}


async def _age(db, schema: str, ids: list[str], days: int) -> None:
    await db.execute(
        f"INSERT INTO {schema}.inbox (event_id, topic, received_at) "
        "SELECT unnest($1::text[]), 'old', now() - make_interval(days => $2::int)",
        ids,
        days,
    )


async def test_the_broker_tells_each_topics_retention(prefix, bootstrap):
    cfg = kafka_settings(bootstrap)
    await _create_with_configs(
        cfg,
        {
            prefix + "kept": {"retention.ms": str(7 * DAY_MS), "segment.ms": str(DAY_MS)},
            prefix + "compacted": {"cleanup.policy": "compact"},
        },
    )
    await create_topics(cfg, prefix, ["plain"], partitions=1)
    found = {
        t.topic: t
        for t in await topic_retentions(
            cfg, [prefix + n for n in ("kept", "compacted", "plain", "missing")]
        )
    }
    assert sorted(found) == sorted(prefix + n for n in ("kept", "compacted", "plain"))
    kept = found[prefix + "kept"]
    assert (kept.retention_ms, kept.segment_ms) == (7 * DAY_MS, DAY_MS)
    assert found[prefix + "compacted"].cleanup_policy == "compact"
    # The development broker reports only what a topic was created with.
    plain = found[prefix + "plain"]
    assert (plain.retention_ms, plain.segment_ms) == (None, None)


async def test_prune_deletes_only_ids_older_than_kept_in_chunks(database_url, db):
    schema = f"inbox_{uuid.uuid4().hex[:8]}"
    await migrate(db, schema, None)
    pool = await create_pool(database_url, schema, min_size=1, max_size=2)
    try:
        old = [f"old-{i}" for i in range(10)]
        await _age(db, schema, old, days=40)
        await _age(db, schema, ["edge"], days=29)
        await db.execute(f"INSERT INTO {schema}.inbox (event_id, topic) VALUES ('new', 't')")
        # Chunks of 3: four statements, the last one short.
        assert await prune(pool, schema, timedelta(days=30), chunk=3) == 10
        assert await _inbox_ids(db, schema) == {"edge", "new"}
        assert await prune(pool, schema, timedelta(days=30), chunk=3) == 0

        # Another instance pruning the same schema holds the lock: this one skips the round.
        await _age(db, schema, ["late"], days=40)
        async with (
            pool.acquire() as other,
            session_lock(other, schema_lock_id(_PRUNE_LOCK_BASE, schema)) as taken,
        ):
            assert taken
            assert await prune(pool, schema, timedelta(days=30)) is None
        assert "late" in await _inbox_ids(db, schema)
    finally:
        await pool.close()
        await db.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def _keep_seconds(service: str) -> float | None:
    return REGISTRY.get_sample_value("inbox_keep_seconds", {"service": service})


async def test_a_service_forgets_ids_past_its_topics_retention_and_no_sooner(
    prefix, database_url, bootstrap, db
):
    """Topics that keep records 2 days (+ 1 day segments): ids are kept 4 days, so an id 40
    days old goes, one 3 days old stays, and a redelivered event is still dropped."""
    cfg = kafka_settings(bootstrap)
    retention = {"retention.ms": str(2 * DAY_MS), "segment.ms": str(DAY_MS)}
    await _create_with_configs(
        cfg, {prefix + n: retention for n in ("pings", "pongs", "pings.dlq")}
    )
    name, schema = f"{prefix}ping", f"{prefix}ping"
    settings = service_settings(
        name,
        prefix,
        database_url,
        bootstrap,
        inbox_retention_days=1.0,
        inbox_prune_interval_seconds=0.2,
    )
    runtime = ping_runtime(settings, schema)
    await runtime.start()
    try:
        (ping,) = pings([1])
        await produce(cfg, prefix + "pings", [ping])
        await eventually(lambda: applied(database_url, schema), lambda v: v == [1], what="ping")
        await _age(db, schema, ["ancient"], days=40)
        await _age(db, schema, ["recent"], days=3)
        ids = await eventually(
            lambda: _inbox_ids(db, schema), lambda v: "ancient" not in v, what="pruned"
        )
        assert {"recent", ping.id} <= ids
        expected = timedelta(milliseconds=3 * DAY_MS) + MARGIN
        assert _keep_seconds(name) == expected.total_seconds()
        assert REGISTRY.get_sample_value("inbox_pruned_total", {"service": name}) == 1
        await produce(cfg, prefix + "pings", [ping])  # a redelivery within the retention
        await asyncio.sleep(1.5)
        assert await applied(database_url, schema) == [1]
    finally:
        await runtime.stop()


async def test_a_topic_of_unknown_retention_keeps_every_id(prefix, database_url, bootstrap, db):
    """On the development broker's plain topics no retention is reported: nothing is pruned."""
    cfg = kafka_settings(bootstrap)
    await create_topics(cfg, prefix, ["pings", "pongs", "pings.dlq"], partitions=1)
    name, schema = f"{prefix}ping", f"{prefix}ping"
    settings = service_settings(
        name, prefix, database_url, bootstrap, inbox_prune_interval_seconds=0.2
    )
    runtime = ping_runtime(settings, schema)
    await runtime.start()
    try:
        await eventually(
            lambda: asyncio.sleep(0, _keep_seconds(name)), lambda v: v == 0, what="decision"
        )
        await _age(db, schema, ["ancient"], days=400)
        await asyncio.sleep(1.0)  # several rounds
        assert "ancient" in await _inbox_ids(db, schema)
        assert REGISTRY.get_sample_value("inbox_pruned_total", {"service": name}) is None
    finally:
        await runtime.stop()
