"""Each service built and started against the real Postgres (and broker) for the fuzz suite.

Two ways to run a service here:

* ``offline``: started (pool, migrations, reference data) without consumers,
  outbox relay or background loops, shared by a whole session. Batches are
  handed to ``shared.consumer.handle_batch`` in-process and HTTP goes through
  ASGI, so the outbox keeps every row written (dead letters included) for the
  tests to count, and nothing but the input under test changes state.
* ``online``: the whole service with its consumers and relay on the real
  broker, for the end-to-end runs.

Every HTTP request goes through :func:`client`, the one place the write endpoints'
API keys are put on requests.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from shared.clock import ManualClock
from shared.consumer import BatchHandler
from shared.events.examples import T0
from shared.runtime import ServiceRuntime
from shared.topics import TOPICS
from tests.integration import conftest as integration
from tests.integration.conftest import service_settings
from tests.integration.helpers import create_topics
from tests.integration.keys import KeyFromBody, dev_key

pytestmark = pytest.mark.integration
# The provisioned database and broker, as the integration tests have them.
database_url = integration.database_url
bootstrap = integration.bootstrap

SERVICES = ("intake", "dispatch", "supervision", "scoring")
#: Topics each service consumes, from the topic registry (shared/topics.py).
CONSUMED = {s: tuple(t.base for t in TOPICS if s in t.consumers) for s in SERVICES}
#: Intake's Open311 key for the dev channel (the suite's API_KEYS, tests/integration/keys.py).
OPEN311_KEY = dev_key("channel", "open311")


def client(runtime: ServiceRuntime, name: str) -> httpx.AsyncClient:
    """An HTTP client on the service's app, in-process (ASGI)."""
    assert runtime.app is not None
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=runtime.app),
        base_url=f"http://{name}.test",
        # The key a real caller of each write endpoint would hold, so inputs reach the
        # handlers rather than stopping at authentication.
        auth=KeyFromBody(),
    )


def settings_for(name: str, prefix: str, database_url: str, bootstrap: str) -> Any:
    base = service_settings(name, prefix, database_url, bootstrap).model_dump()
    if name == "intake":
        from services.intake.settings import Settings as IntakeSettings

        return IntakeSettings.model_validate(base)
    if name == "dispatch":
        from services.dispatch.settings import Settings as DispatchSettings

        return DispatchSettings.model_validate(base)
    if name == "supervision":
        from services.supervision.settings import Settings as SupervisionSettings

        return SupervisionSettings.model_validate({**base, "timer_recheck_seconds": 0.5})
    from services.scoring.settings import Settings as ScoringSettings

    return ScoringSettings.model_validate({**base, "publish_poll_seconds": 0.2})


def build_service(name: str, settings: Any) -> ServiceRuntime:
    if name == "intake":
        from services.intake.app import build as build_intake

        return build_intake(settings)
    if name == "dispatch":
        from services.dispatch.app import build as build_dispatch

        return build_dispatch(settings)
    if name == "supervision":
        from services.supervision.app import build as build_supervision

        return build_supervision(settings)
    from services.scoring.app import build as build_scoring

    return build_scoring(settings)


@dataclass
class Service:
    """A started service and what the fuzz tests read from it."""

    name: str
    prefix: str
    runtime: ServiceRuntime
    database_url: str
    handlers: dict[str, BatchHandler]

    @property
    def schema(self) -> str:
        return self.runtime.schema

    def http(self) -> httpx.AsyncClient:
        return client(self.runtime, self.name)

    async def query(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        async with self.runtime.db.acquire() as conn:
            return list(await conn.fetch(sql, *args))

    async def row_counts(self, *, plumbing: bool = False) -> dict[str, int]:
        """Rows per table of the service's schema; state tables only unless ``plumbing``."""
        tables = await self.query(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = $1 AND table_type = 'BASE TABLE' ORDER BY 1",
            self.schema,
        )
        # Never counted: a request spends its key's rate token whether it is refused or not,
        # and supervision's consumer saves its read marks whatever requests come.
        skip = {"rate_buckets", "read_marks"}
        if not plumbing:
            skip |= {"inbox", "outbox", "schema_migrations"}
        names = [r["table_name"] for r in tables if r["table_name"] not in skip]
        if not names:
            return {}
        counts = " UNION ALL ".join(
            f'SELECT \'{n}\' AS t, count(*) AS n FROM "{self.schema}"."{n}"' for n in names
        )
        return {r["t"]: r["n"] for r in await self.query(counts)}


async def _start(
    name: str, database_url: str, bootstrap: str, *, online: bool
) -> tuple[Service, Callable[[], Awaitable[None]]]:
    prefix = f"f{uuid.uuid4().hex[:8]}_"
    settings = settings_for(name, prefix, database_url, bootstrap)
    topics = [*CONSUMED[name], *(f"{t}.dlq" for t in CONSUMED[name])]
    topics += [t.base for t in TOPICS if t.owner == name]
    await create_topics(settings.kafka, prefix, sorted(set(topics)), partitions=2)
    runtime = build_service(name, settings)
    runtime.clock = ManualClock(T0)
    handlers = {topic: sub.handler for sub in runtime.subscriptions for topic in sub.topics}
    if not online:
        runtime.subscriptions = []
        runtime.background = []
    await runtime.start()
    if not online:
        assert runtime.relay is not None
        runtime.relay.stop()  # dead letters and events stay in the outbox, to be counted
    return Service(name, prefix, runtime, database_url, handlers), runtime.stop


@pytest.fixture(scope="session")
async def offline(database_url: str, bootstrap: str) -> AsyncIterator[dict[str, Service]]:
    """Every service started without consumers, relay or background loops, for the session."""
    started: dict[str, Service] = {}
    stops = []
    try:
        for name in SERVICES:
            service, stop = await _start(name, database_url, bootstrap, online=False)
            started[name] = service
            stops.append(stop)
        yield started
    finally:
        for stop in reversed(stops):
            await stop()


@pytest.fixture
async def online(database_url: str, bootstrap: str) -> AsyncIterator[Callable[..., Any]]:
    """Start a whole service (consumers, relay) on the real broker; stopped after the test."""
    stops = []

    async def start(name: str) -> Service:
        service, stop = await _start(name, database_url, bootstrap, online=True)
        stops.append(stop)
        return service

    try:
        yield start
    finally:
        for stop in reversed(stops):
            await stop()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The fuzz counts (inputs per surface), for the closing note."""
    from tests.fuzz.budget import COUNTS

    if not COUNTS:
        return
    terminalreporter.section("fuzz counts")
    for surface, count in sorted(COUNTS.items()):
        terminalreporter.write_line(f"{count:8d}  {surface}")
