"""Fixtures for scoring's real-broker tests: a scoring runtime on its own topics and schema."""

from __future__ import annotations

from datetime import datetime

import asyncpg
import httpx

from services.scoring.app import TOPICS, build
from services.scoring.settings import Settings
from shared.clock import ManualClock
from shared.events import Envelope
from shared.runtime import ServiceRuntime
from tests.integration.conftest import kafka_settings
from tests.integration.helpers import create_topics, eventually, produce

ALL_TOPICS = [*TOPICS, *(f"{t}.dlq" for t in TOPICS), "scores"]


def scoring_settings(prefix: str, database_url: str, bootstrap: str, **extra: object) -> Settings:
    return Settings(
        service_name="scoring",
        database_url=database_url,
        topic_prefix=prefix,
        db_schema=f"{prefix}scoring",
        relay_poll_seconds=0.2,
        retry_max_backoff_seconds=1.0,
        kafka=kafka_settings(bootstrap),
        publish_poll_seconds=0.2,
        **extra,  # type: ignore[arg-type]
    )


async def start_scoring(settings: Settings, now: datetime) -> tuple[ServiceRuntime, ManualClock]:
    await create_topics(settings.kafka, settings.topic_prefix, ALL_TOPICS, partitions=2)
    runtime = build(settings)
    clock = ManualClock(now)
    runtime.clock = clock
    await runtime.start()
    return runtime, clock


async def produce_events(settings: Settings, events: list[Envelope]) -> None:
    by_topic: dict[str, list[Envelope]] = {}
    for event in events:
        by_topic.setdefault(event.topic, []).append(event)
    for topic, items in by_topic.items():
        await produce(settings.kafka, settings.topic_prefix + topic, list(items))


async def inbox_count(database_url: str, schema: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM {schema}.inbox"))
    finally:
        await conn.close()


async def wait_consumed(settings: Settings, count: int, seconds: float = 60) -> None:
    schema = settings.db_schema
    assert schema is not None
    await eventually(
        lambda: inbox_count(settings.database_url, schema),
        lambda n: n >= count,
        seconds=seconds,
        what=f"{count} events consumed",
    )


def http_client(runtime: ServiceRuntime) -> httpx.AsyncClient:
    assert runtime.app is not None
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=runtime.app), base_url="http://scoring"
    )
