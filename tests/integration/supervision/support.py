"""What supervision's integration tests share: settings, topics, events, and reading results."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from services.supervision.app import build
from services.supervision.settings import Settings
from shared.clock import Clock
from shared.events.envelope import Envelope, decode, make_event
from shared.events.examples import example_data
from shared.runtime import ServiceRuntime
from shared.settings import KafkaSettings
from tests.integration.conftest import service_settings
from tests.integration.helpers import create_topics, eventually, produce, read_topic

TOPICS = ["cases", "assignments", "feedback", "supervision"]
NAME = "supervision"


def settings(prefix: str, database_url: str, bootstrap: str, **extra: Any) -> Settings:
    base = service_settings(NAME, prefix, database_url, bootstrap)
    return Settings.model_validate({**base.model_dump(), "timer_recheck_seconds": 0.5, **extra})


def schema(prefix: str) -> str:
    return f"{prefix}{NAME}"


async def make_topics(cfg: KafkaSettings, prefix: str, partitions: int = 3) -> None:
    names = TOPICS + [f"{t}.dlq" for t in TOPICS]
    await create_topics(cfg, prefix, names, partitions=partitions)


def runtime(
    prefix: str, database_url: str, bootstrap: str, clock: Clock | None = None, **extra: Any
) -> ServiceRuntime:
    return build(settings(prefix, database_url, bootstrap, **extra), clock=clock)


def event(event_type: str, at: datetime, **data: Any) -> Envelope:
    payload = example_data(event_type, **data)
    return make_event(payload, source="test", time=at)


def dispatch(
    case_id: str,
    at: datetime,
    *,
    sign_for: timedelta,
    handle: timedelta,
    verify: timedelta = timedelta(minutes=30),
    clock: str = "natural",
    number: int = 1,
    redispatch: str | None = None,
    **data: Any,
) -> Envelope:
    kind = "case.redispatched" if redispatch else "case.dispatched"
    extra = {"reason": redispatch} if redispatch else {}
    return event(
        kind,
        at,
        case_id=case_id,
        dispatched_at=at,
        dispatch_number=number,
        deadlines={
            "sign_for": at + sign_for,
            "handle": at + handle,
            "verify_limit": verify,
            "clock": clock,
        },
        **extra,
        **data,
    )


def feedback(event_type: str, case_id: str, at: datetime, **data: Any) -> Envelope:
    return event(event_type, at, case_id=case_id, **data)


async def send(cfg: KafkaSettings, prefix: str, topic: str, events: Sequence[Envelope]) -> None:
    await produce(cfg, prefix + topic, list(events))


async def published(cfg: KafkaSettings, prefix: str, seconds: float = 3) -> list[Envelope]:
    """Every event on the supervision topic, decoded, in each case's order."""
    return [decode(r.value) for r in await read_topic(cfg, prefix + "supervision", seconds=seconds)]


def of_case(events: Sequence[Envelope], case_id: str) -> list[Envelope]:
    return [e for e in events if e.subject == case_id]


def describe(env: Envelope) -> tuple[Any, ...]:
    """An event as (type, timer, level) for readable assertions."""
    return (env.type, getattr(env.data, "timer", None), getattr(env.data, "level", None))


async def wait_for_events(
    cfg: KafkaSettings, prefix: str, check: Any, seconds: float = 30, what: str = "events"
) -> list[Envelope]:
    return await eventually(
        lambda: published(cfg, prefix, seconds=0.5), check, seconds=seconds, what=what
    )


async def fetch(database_url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


async def warm_up(
    cfg: KafkaSettings, prefix: str, database_url: str, at: datetime, seconds: float = 30
) -> None:
    """Wait until the consumers of all three topics have joined and handled an event each.

    A scaled clock runs while consumer groups form; tests that race the clock
    start their story only once the service really listens.
    """
    probe = "warm-up-probe"
    await asyncio.gather(
        send(cfg, prefix, "cases", [event("case.registered", at, case_id=probe)]),
        send(
            cfg,
            prefix,
            "assignments",
            [dispatch(probe, at, sign_for=timedelta(days=300), handle=timedelta(days=300))],
        ),
        send(cfg, prefix, "feedback", [feedback("case.accepted", probe, at)]),
    )

    async def seen() -> list[asyncpg.Record]:
        return await fetch(
            database_url,
            f"SELECT registered_at, dispatch_number, accepted_at FROM {schema(prefix)}.cases "
            "WHERE case_id = $1",
            probe,
        )

    await eventually(
        seen,
        lambda rows: bool(rows) and all(v is not None for v in rows[0].values()),
        seconds=seconds,
        what="all three consumers handling events",
    )
