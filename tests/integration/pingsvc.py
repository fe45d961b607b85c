"""A tiny service for testing the plumbing itself: pings in, state, pongs out.

Run in-process by the tests, or as ``python -m tests.integration.pingsvc`` so a
fault test can crash a real process at a chosen instant (``CRASH_AT``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path

from shared.events.envelope import Envelope, EventData, make_event
from shared.outbox import Tx
from shared.runtime import ServiceRuntime, Subscription
from shared.settings import KafkaSettings, ServiceSettings

MIGRATIONS = Path(__file__).parent / "pingsvc_migrations"


class Ping(EventData):
    event_type = "test.ping"
    topic = "pings"
    subject_field = "key"
    key: str
    n: int
    fail: bool = False


class Pong(EventData):
    event_type = "test.pong"
    topic = "pongs"
    subject_field = "key"
    key: str
    n: int


#: Pings the handler refuses for now: a fault a test can "fix" by clearing it.
REFUSED: set[int] = set()
#: Pings counted by ``Tx.on_commit``: what a service's own metrics would count.
COUNTED: list[int] = []


async def handle_pings(tx: Tx, events: Sequence[Envelope]) -> None:
    for env in events:
        assert isinstance(env.data, Ping)
        # Before the checks: a ping that then fails must take its callback down with it.
        tx.on_commit(lambda n=env.data.n: COUNTED.append(n))
        if env.data.fail:
            raise ValueError(f"ping {env.data.n} asks to fail")
        if env.data.n in REFUSED:
            raise LookupError(f"ping {env.data.n} is refused until the fault is fixed")
        await tx.conn.execute(
            "INSERT INTO applied (event_id, n) VALUES ($1, $2)", env.id, env.data.n
        )
        tx.emit(make_event(Pong(key=env.data.key, n=env.data.n), source="pingsvc", time=env.time))


async def handle_pongs(tx: Tx, events: Sequence[Envelope]) -> None:
    for env in events:
        assert isinstance(env.data, Pong)
        await tx.conn.execute(
            "INSERT INTO applied (event_id, n) VALUES ($1, $2)", env.id, env.data.n
        )


def ping_runtime(settings: ServiceSettings, schema: str) -> ServiceRuntime:
    return ServiceRuntime(
        settings=settings,
        schema=schema,
        migrations_dir=MIGRATIONS,
        subscriptions=[Subscription("pings", handle_pings)],
    )


def pong_runtime(settings: ServiceSettings, schema: str) -> ServiceRuntime:
    return ServiceRuntime(
        settings=settings,
        schema=schema,
        migrations_dir=MIGRATIONS,
        subscriptions=[Subscription("pongs", handle_pongs)],
    )


def _crash() -> None:
    os._exit(17)


async def main() -> None:
    settings = ServiceSettings(
        service_name=os.environ["PING_SERVICE"],
        kafka=KafkaSettings(
            session_timeout_ms=3000, heartbeat_interval_ms=500, batch_timeout_ms=20
        ),
        relay_poll_seconds=0.2,
    )
    runtime = ping_runtime(settings, os.environ["PING_SCHEMA"])
    crash_at = os.environ.get("CRASH_AT", "")
    if crash_at == "before_ack":
        runtime.before_ack = _crash
    elif crash_at == "after_publish":
        runtime.after_publish = _crash
    await runtime.start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
