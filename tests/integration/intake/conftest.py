"""A running intake for the tests of a module: its own topics and schema, HTTP through ASGI."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest

from services.intake.app import build
from services.intake.settings import Settings
from shared.events import ReportSubmitted
from shared.events.envelope import Envelope, PoisonMessage, decode, make_event
from shared.ids import new_ulid
from shared.reference import GridCell, ReferenceData, load_reference
from shared.runtime import ServiceRuntime
from shared.settings import KafkaSettings
from tests.integration.conftest import service_settings
from tests.integration.helpers import create_topics, read_topic
from tests.integration.keys import KeyFromBody

TOPICS = [
    "reports",
    "cases",
    "assignments",
    "feedback",
    "supervision",
    "reports.dlq",
    "assignments.dlq",
    "feedback.dlq",
    "supervision.dlq",
]


def intake_settings(prefix: str, database_url: str, bootstrap: str, **extra: Any) -> Settings:
    base = service_settings("intake", prefix, database_url, bootstrap)
    kafka = base.kafka.model_copy(update={"create_topics": False})
    doc = base.model_dump(exclude={"kafka"})
    doc.update(extra)
    return Settings(**doc, kafka=kafka)


@dataclass
class Stack:
    prefix: str
    settings: Settings
    runtime: ServiceRuntime
    http: httpx.AsyncClient
    database_url: str

    @property
    def kafka(self) -> KafkaSettings:
        return self.settings.kafka

    @property
    def schema(self) -> str:
        assert self.settings.db_schema is not None
        return self.settings.db_schema

    def topic(self, base: str) -> str:
        return self.prefix + base

    async def events(self, base: str, expect_at_least: int = 0) -> list[Envelope]:
        out = []
        for record in await read_topic(self.kafka, self.topic(base), expect_at_least, seconds=3):
            try:
                out.append(decode(record.value))
            except PoisonMessage:
                continue
        return out

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(
            self.database_url, server_settings={"search_path": self.schema}
        )
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()


@pytest.fixture(scope="module")
async def stack(database_url: str, bootstrap: str) -> AsyncIterator[Stack]:
    prefix = f"t{uuid.uuid4().hex[:8]}_"
    settings = intake_settings(prefix, database_url, bootstrap)
    await create_topics(settings.kafka, prefix, TOPICS, partitions=3)
    runtime = build(settings)
    await runtime.start()
    assert runtime.app is not None
    transport = httpx.ASGITransport(app=runtime.app)
    http = httpx.AsyncClient(transport=transport, base_url="http://intake.test", auth=KeyFromBody())
    try:
        yield Stack(prefix, settings, runtime, http, database_url)
    finally:
        await http.aclose()
        await runtime.stop()


@pytest.fixture(scope="session")
def ref() -> ReferenceData:
    return load_reference()


def cell(ref: ReferenceData, code: str) -> GridCell:
    found = ref.cell(code)
    assert found is not None, code
    return found


def report(
    *,
    category_code: str = "E0104",
    lat: float | None = None,
    long: float | None = None,
    grid_code: str | None = None,
    external_id: str | None = None,
    channel: str = "hotline_12345",
    **overrides: Any,
) -> ReportSubmitted:
    location: dict[str, Any] = {}
    if lat is not None:
        location.update(lat=lat, long=long)
    if grid_code is not None:
        location["grid_code"] = grid_code
    doc: dict[str, Any] = {
        "report_id": new_ulid(),
        "channel": channel,
        "external_id": external_id or f"ext-{uuid.uuid4().hex[:12]}",
        "category_code": category_code,
        "description": "rubbish heap by the canal",
        "location": location,
        "media_urls": ["https://media.example.org/r/1.jpg"],
        "reported_at": datetime.now(UTC),
    }
    doc.update(overrides)
    return ReportSubmitted.model_validate(doc)


def submitted(data: ReportSubmitted, time: datetime | None = None) -> Envelope:
    return make_event(data, source="hotline-gateway", time=time or datetime.now(UTC))


def about(events: Sequence[Envelope], **fields: Any) -> list[Envelope]:
    """Events whose data has all of ``fields``."""
    return [e for e in events if all(getattr(e.data, k, None) == v for k, v in fields.items())]
