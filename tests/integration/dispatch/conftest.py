"""A running dispatch service on its own topics and schema, with a client for its HTTP API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import httpx
import pytest

from services.dispatch.app import DispatchRuntime, build
from services.dispatch.settings import Settings
from shared.clock import ManualClock
from shared.events import Envelope, EventData, decode, make_event
from shared.settings import KafkaSettings
from tests.integration.conftest import kafka_settings, service_settings
from tests.integration.helpers import create_topics, eventually, produce, read_topic
from tests.integration.keys import KeyFromBody
from tests.unit.dispatch.cases import at

TOPICS = ["cases", "feedback", "supervision", "assignments", "cases.dlq", "feedback.dlq",
          "supervision.dlq"]  # fmt: skip
#: Where the dispatcher's clock stands: Monday 16 March 2026, 09:00 in Shanghai.
DISPATCHER_NOW = at(3, 16, 9)


@dataclass
class Dispatch:
    runtime: DispatchRuntime
    kafka: KafkaSettings
    prefix: str
    database_url: str
    http: httpx.AsyncClient

    async def send(self, data: EventData, time: datetime, source: str = "test") -> Envelope:
        envelope = make_event(data, source=source, time=time)
        await produce(self.kafka, self.prefix + data.topic, [envelope])
        return envelope

    async def assignments(self, case_id: str) -> list[Envelope]:
        """Everything dispatch published about ``case_id``, in order."""
        records = await read_topic(self.kafka, self.prefix + "assignments", seconds=3)
        return [env for env in map(decode, (r.value for r in records)) if env.subject == case_id]

    async def wait_for(self, case_id: str, count: int, what: str = "") -> list[Envelope]:
        return await eventually(
            lambda: self.assignments(case_id),
            lambda found: len(found) >= count,
            seconds=30,
            what=what or f"{count} assignment event(s) of {case_id}",
        )

    async def table(self, query: str, *args: object) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.database_url)
        try:
            await conn.execute(f"SET search_path TO {self.runtime.schema}")
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()


@pytest.fixture
async def dispatch(prefix: str, database_url: str, bootstrap: str) -> AsyncIterator[Dispatch]:
    kafka = kafka_settings(bootstrap)
    await create_topics(kafka, prefix, TOPICS)
    settings = Settings.model_validate(
        service_settings("dispatch", prefix, database_url, bootstrap).model_dump()
    )
    runtime = build(settings)
    assert isinstance(runtime, DispatchRuntime)
    runtime.clock = ManualClock(DISPATCHER_NOW)
    await runtime.start()
    transport = httpx.ASGITransport(app=runtime.app)
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url="http://dispatch", auth=KeyFromBody()
        ) as http:
            yield Dispatch(runtime, kafka, prefix, database_url, http)
    finally:
        await runtime.stop()
