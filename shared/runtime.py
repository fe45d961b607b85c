"""A service's lifecycle: pool, migrations, outbox relay, consumers, HTTP, background tasks.

Every service is the same machine with different parts plugged in: its
schema and migrations, its batch handlers per topic, its HTTP routes and any
background loops (supervision's timer scheduler). ``python -m services.X``
builds a :class:`ServiceRuntime` and calls :meth:`run`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import uvicorn
import uvloop
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from shared import auth
from shared.apikeys import register_key
from shared.clock import Clock, clock_from_settings
from shared.consumer import BatchHandler, ConsumerContext, ReadWatcher, subscribe
from shared.db import create_pool
from shared.http import TooLarge, add_operational_routes, limit_request_bodies
from shared.inbox import run_pruner, topic_retentions
from shared.kafka import adopt_offsets, ensure_topics, make_broker, make_producer
from shared.logs import configure_logging
from shared.migrations import migrate
from shared.offsets import OffsetCommits
from shared.outbox import OutboxRelay, Tx
from shared.ratelimit import RateLimiter
from shared.reference import load_reference
from shared.settings import ServiceSettings
from shared.topics import DLQ_SUFFIX, topic_partitions

if TYPE_CHECKING:
    from shared.db import Connection

log = logging.getLogger(__name__)


#: Container objects alive beyond the last collection before the young generation is
#: collected (CPython's default is 700). A batch of thousands of events holds a few hundred
#: thousand objects that die with it; collecting every 700 (or 10,000) of them scanned them
#: again and again, a sixth of a consumer's CPU. Above a batch's worth, collections run only
#: when garbage really accumulates; what waits meanwhile is bounded by this count.
GC_YOUNG_THRESHOLD = 200_000


def _settle_heap() -> None:
    """Move what start-up built (modules, reference data, clients) out of the collector's sight.

    It lives as long as the process, so scanning it again at every full
    collection is pure cost; what batches allocate is still collected.
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


@contextlib.contextmanager
def settled_heap() -> Iterator[None]:
    """:func:`_settle_heap` for a block, then the collector as it was.

    For a service run inside another process (the benchmarks), so that it is measured
    with the heap it keeps when it runs as ``python -m services.<name>``.
    """
    threshold = gc.get_threshold()
    _settle_heap()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the runtime owns SIGTERM/SIGINT
    so it can stop consumers and the relay after the HTTP server."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


Background = Callable[["ServiceRuntime"], Coroutine[Any, Any, None]]


@dataclass
class Subscription:
    #: base name(s), without prefix; several make one consumer whose batches mix them
    topic: str | tuple[str, ...]
    handler: BatchHandler
    group_suffix: str = ""
    # Not on a case's forward path (report → case → department): polls with the follower
    # fetch wait, trading a few hundred milliseconds for bigger batches (shared.consumer).
    follower: bool = False

    #: Each of the topics was read in a group of its own, ``<service>.<topic>``, before they
    #: shared this one (until 2026-12): it starts where those left off (adopt_offsets).
    adopts_topic_groups: bool = False

    @property
    def topics(self) -> tuple[str, ...]:
        return (self.topic,) if isinstance(self.topic, str) else self.topic


@dataclass
class ServiceRuntime:
    settings: ServiceSettings
    schema: str
    migrations_dir: Path | None
    subscriptions: list[Subscription] = field(default_factory=list)
    app: FastAPI | None = None
    background: list[Background] = field(default_factory=list)
    clock: Clock | None = None
    # Fault-injection points for crash tests; no-ops in service.
    before_ack: Callable[[], None] = lambda: None
    after_publish: Callable[[], None] = lambda: None
    # Told when a subscription has applied everything its partitions held as of an instant,
    # and asked when it needs the reads by (shared.consumer.ReadWatcher): supervision's
    # timers wait for the reads.
    reads: ReadWatcher | None = None
    # The 413 for a body over HTTP_MAX_BODY_BYTES, in the service's problem shape.
    body_too_large: TooLarge | None = None

    pool: asyncpg.Pool | None = None
    relay: OutboxRelay | None = None
    producer: AIOKafkaProducer | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _broker_ready: bool = False
    _offset_commits: list[OffsetCommits] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.settings.db_schema:
            self.schema = self.settings.db_schema
        if self.clock is None:
            self.clock = clock_from_settings(
                self.settings.clock_scale, self.settings.clock_start, self.settings.clock_anchor
            )
        self.broker = make_broker(self.settings.kafka, client_id=self.settings.service_name)
        limiter = RateLimiter(self.settings.api_rate_per_second, self.settings.api_rate_burst)
        self.auth = auth.Authenticator(lambda: self.db, limiter)
        if self.app is not None:
            auth.install(self.app, self.settings.service_name)
            limit_request_bodies(self.app, self.settings.http_max_body_bytes, self.body_too_large)

    @property
    def db(self) -> asyncpg.Pool:
        assert self.pool is not None, "runtime not started"
        return self.pool

    def notify_outbox(self) -> None:
        if self.relay is not None:
            self.relay.notify()

    async def start(self) -> None:
        s = self.settings
        applied = await self.migrate()
        if applied:
            log.info("migrations applied: %s", ", ".join(applied))
        self.pool = await create_pool(s.database_url, self.schema, s.db_pool_min, s.db_pool_max)
        await self._register_dev_keys()
        if s.kafka.create_topics:
            await ensure_topics(s.kafka, topic_partitions(s.topic_prefix))
        producer = make_producer(s.kafka, client_id=f"{s.service_name}-relay")
        await producer.start()
        self.producer = producer
        self.relay = OutboxRelay(
            self.pool,
            producer,
            s.service_name,
            self.schema,
            batch=s.relay_batch,
            poll_seconds=s.relay_poll_seconds,
            max_backoff=s.retry_max_backoff_seconds,
        )
        self.relay.after_publish = self.after_publish
        self._tasks.append(asyncio.create_task(self.relay.run(), name="outbox-relay"))
        ctx = ConsumerContext(
            service=s.service_name,
            pool=self.pool,
            kafka=s.kafka,
            topic_prefix=s.topic_prefix,
            on_commit=self.notify_outbox,
            max_backoff=s.retry_max_backoff_seconds,
            before_ack=self.before_ack,
            reads=self.reads,
        )
        self._offset_commits = self.subscribe_all(ctx)
        await self.adopt_earlier_offsets()
        if self.subscriptions:
            await self.broker.start()
            self._broker_ready = True
        if s.inbox_prune and self.subscriptions:
            self._tasks.append(asyncio.create_task(self._prune_inbox(), name="inbox-pruner"))
        for job in self.background:
            self._tasks.append(asyncio.create_task(job(self), name=getattr(job, "__name__", "job")))

    def _prune_inbox(self) -> Coroutine[Any, Any, None]:
        """The inbox's pruner, bounded by every topic an event may come back from: the ones
        read, and their dead-letter topics, from which an operator re-drives."""
        s = self.settings
        read = [s.topic_prefix + t for sub in self.subscriptions for t in sub.topics]
        topics = sorted({*read, *(t + DLQ_SUFFIX for t in read)})
        return run_pruner(
            s.service_name,
            self.db,
            self.schema,
            lambda: topic_retentions(s.kafka, topics),
            timedelta(days=s.inbox_retention_days),
            s.inbox_prune_interval_seconds,
        )

    def subscribe_all(self, ctx: ConsumerContext) -> list[OffsetCommits]:
        """Register every subscription with the broker, each in its group and at its pace."""
        return [
            subscribe(
                self.broker,
                ctx,
                sub.topic,
                self.group_for(sub.topics[0]),
                sub.handler,
                follower=sub.follower,
            )
            for sub in self.subscriptions
        ]

    async def adopt_earlier_offsets(self) -> None:
        """Groups that replace earlier ones start where those left off (once, after an upgrade)."""
        s = self.settings
        for sub in self.subscriptions:
            if not sub.adopts_topic_groups:
                continue
            group = self.group_for(sub.topics[0])
            earlier = {
                s.topic_prefix + topic: f"{s.topic_prefix}{s.service_name}.{topic}"
                for topic in sub.topics
            }
            carried = await adopt_offsets(s.kafka, group, earlier)
            if carried:
                log.info(
                    "group %s starts where %s left off (%d partitions)",
                    group,
                    ", ".join(sorted(set(earlier.values()))),
                    len(carried),
                )

    def group_for(self, topic: str) -> str:
        """The consumer group this service reads the base topic ``topic`` under."""
        s = self.settings
        for sub in self.subscriptions:
            if topic in sub.topics:
                return f"{s.topic_prefix}{s.service_name}{sub.group_suffix}"
        raise ValueError(f"{s.service_name} does not consume {topic!r}")

    async def migrate(self) -> list[str]:
        """Apply migrations as the schema's owner (DATABASE_MIGRATION_URL), not as the runtime role."""
        s = self.settings
        conn = await asyncpg.connect(s.database_migration_url or s.database_url)
        try:
            return await migrate(conn, self.schema, self.migrations_dir)
        finally:
            await conn.close()

    async def _register_dev_keys(self) -> None:
        keys = self.settings.dev_api_keys
        if not keys:
            return
        directory = self.settings.reference_data_dir
        ref = load_reference(Path(directory) if directory else None)
        known = {
            "channel": {c.id for c in ref.channels},
            "department": {d.id for d in ref.departments},
        }
        unknown = sorted(str(p) for p, _ in keys if p.kind in known and p.id not in known[p.kind])
        if unknown:
            raise ValueError(f"API_KEYS names principals the city does not have: {unknown}")
        async with self.db.acquire() as conn:
            for principal, key in keys:
                await register_key(conn, key, principal, label="API_KEYS")

    async def stop(self) -> None:
        if self.relay is not None:
            self.relay.stop()
        if self._broker_ready:
            # Handled offsets go out while the consumers are still members of their groups,
            # so a clean restart reads nothing twice.
            await asyncio.gather(*(c.close() for c in self._offset_commits))
            await self.broker.stop()
            self._broker_ready = False
            for commits in self._offset_commits:
                commits.discard()  # a batch that finished during the stop: read again later
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self.producer is not None:
            await self.producer.stop()
            self.producer = None
        if self.pool is not None:
            await self.pool.close()
            self.pool = None

    @contextlib.asynccontextmanager
    async def transaction(self, conn: Connection | None = None) -> AsyncIterator[Tx]:
        """A unit of work outside a consumer (an HTTP request, a timer): state and outbox commit together.

        On ``conn`` when given (a worker that holds its connection, and a session lock on
        it, across units of work); otherwise on a connection from the pool.
        """
        async with contextlib.AsyncExitStack() as stack:
            if conn is None:
                conn = await stack.enter_async_context(self.db.acquire())
            async with conn.transaction():
                tx = Tx(conn, self.settings.topic_prefix)
                yield tx
                await tx.flush()
        tx.run_committed()
        self.notify_outbox()

    async def readiness(self) -> dict[str, bool]:
        checks = {"database": False, "broker": self._broker_ready or not self.subscriptions}
        if self.pool is not None:
            try:
                async with self.pool.acquire(timeout=2) as conn:
                    checks["database"] = await conn.fetchval("SELECT 1") == 1
            except Exception:
                checks["database"] = False
        checks["relay"] = bool(self._tasks) and not self._tasks[0].done()
        return checks

    async def run(self) -> None:
        """Run until SIGTERM/SIGINT, then stop cleanly."""
        configure_logging(self.settings.service_name, self.settings.log_level)
        app = self.app or FastAPI(title=self.settings.service_name)
        add_operational_routes(app, self.readiness)
        await self.start()
        _settle_heap()
        server = _QuietServer(
            uvicorn.Config(
                app,
                host=self.settings.http_host,
                port=self.settings.http_port,
                log_config=None,
                access_log=False,
                lifespan="off",
            )
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        serving = asyncio.create_task(server.serve())
        await stop.wait()
        server.should_exit = True
        await serving
        await self.stop()


def main(runtime: ServiceRuntime) -> None:
    """``python -m services.X``: ``runtime`` until SIGTERM/SIGINT, on uvloop (libuv, in C)."""
    uvloop.run(runtime.run())
