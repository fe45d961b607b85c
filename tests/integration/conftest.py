"""Fixtures for tests against the real broker and Postgres provisioned by shared.devstack."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from shared.settings import KafkaSettings, ServiceSettings
from tests.integration.keys import DEV_API_KEYS

pytestmark = pytest.mark.integration


def _require(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run the suite with `make test`, which provisions it")
    return value


@pytest.fixture(scope="session")
def database_url() -> str:
    return _require("DATABASE_URL")


@pytest.fixture(scope="session")
def bootstrap() -> str:
    return _require("KAFKA_BOOTSTRAP_SERVERS")


@pytest.fixture
def prefix() -> str:
    """Each test its own topics, groups and schemas, so tests never depend on order."""
    return f"t{uuid.uuid4().hex[:8]}_"


def kafka_settings(bootstrap: str) -> KafkaSettings:
    # A short session makes group joins quick on the development broker.
    return KafkaSettings(
        bootstrap_servers=bootstrap,
        session_timeout_ms=3000,
        heartbeat_interval_ms=500,
        batch_timeout_ms=20,
    )


def service_settings(
    name: str, prefix: str, database_url: str, bootstrap: str, **extra: object
) -> ServiceSettings:
    return ServiceSettings(
        service_name=name,
        database_url=database_url,
        topic_prefix=prefix,
        db_schema=f"{prefix}{name.removeprefix(prefix)}",
        relay_poll_seconds=0.2,
        retry_max_backoff_seconds=1.0,
        kafka=kafka_settings(bootstrap),
        # Every principal has a development key; rates are the rate-limit test's business.
        **{"api_keys": DEV_API_KEYS, "api_rate_per_second": 1e6, "api_rate_burst": 1_000_000}
        | extra,  # type: ignore[arg-type]
    )


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()
