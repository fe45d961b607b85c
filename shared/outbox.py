"""The outbox: events written in the state change's transaction, published by a relay.

:class:`Tx` is what a handler gets: the open connection for its store, and
``emit`` for outgoing events. Emitted events are buffered and written to the
outbox just before commit, in one COPY. :class:`OutboxRelay` publishes
committed rows in id order (so in order per key) with acks=all and deletes
what the broker acknowledged; a crash between publish and delete republishes,
and the downstream inbox drops the duplicate.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import asyncpg
from aiokafka import AIOKafkaProducer

from shared import metrics
from shared.db import is_transient, schema_lock_id, session_lock

if TYPE_CHECKING:
    from shared.db import Connection
from shared.events.envelope import Envelope, encode, kafka_headers

log = logging.getLogger(__name__)

_COLUMNS = ("topic", "key", "value", "header_keys", "header_values", "event_type")
# One relay per service schema publishes at a time, so rows leave in id order.
_RELAY_LOCK_BASE = 91_000_000


@dataclass
class OutboxRow:
    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    event_type: str | None


@dataclass
class Tx:
    """A handler's unit of work: the connection inside the open transaction, and its outbox."""

    conn: Connection
    topic_prefix: str = ""
    pending: list[OutboxRow] = field(default_factory=list)
    # Run once the transaction has committed, in order; dropped with it if it rolls back.
    # Counters go here: a batch rolled back and retried must not count twice.
    committed: list[Callable[[], None]] = field(default_factory=list)

    def emit(
        self, envelope: Envelope, key: str | None = None, data_json: str | None = None
    ) -> None:
        """Publish ``envelope`` when this transaction commits (keyed by its subject).

        ``data_json``: the data already serialised, for a handler that stores it too.
        """
        self.pending.append(
            OutboxRow(
                topic=self.topic_prefix + envelope.topic,
                key=(key or envelope.subject).encode(),
                value=encode(envelope, data_json),
                headers=kafka_headers(envelope),
                event_type=envelope.type,
            )
        )

    def emit_raw(self, row: OutboxRow) -> None:
        self.pending.append(row)

    def on_commit(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after the commit (metrics, wake-ups), never for a rolled-back attempt."""
        self.committed.append(callback)

    def run_committed(self) -> None:
        """For the owner of the transaction, once it has committed."""
        callbacks, self.committed = self.committed, []
        for callback in callbacks:
            callback()

    def mark(self) -> tuple[int, int]:
        return len(self.pending), len(self.committed)

    def rollback_to(self, mark: tuple[int, int]) -> None:
        del self.pending[mark[0] :]
        del self.committed[mark[1] :]

    async def flush(self) -> None:
        if not self.pending:
            return
        await self.conn.copy_records_to_table(
            "outbox",
            columns=_COLUMNS,
            records=[
                (
                    r.topic,
                    r.key,
                    r.value,
                    [k for k, _ in r.headers],
                    [v for _, v in r.headers],
                    r.event_type,
                )
                for r in self.pending
            ],
        )
        self.pending.clear()


# The rows published last are deleted, and the next ones read, in one statement. The
# DELETE's rows are still visible to the SELECT (one snapshot), hence the filter.
_DELETE_AND_READ = (
    "WITH published AS (DELETE FROM outbox WHERE id = ANY($1::bigint[])) "
    "SELECT id, topic, key, value, header_keys, header_values, event_type, "
    "extract(epoch FROM clock_timestamp() - created_at) AS age "
    "FROM outbox WHERE id <> ALL($1::bigint[]) ORDER BY id LIMIT $2"
)


class OutboxRelay:
    """Publishes the service's outbox. Wake it with :meth:`notify` after a commit."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        producer: AIOKafkaProducer,
        service: str,
        schema: str,
        batch: int = 500,
        poll_seconds: float = 1.0,
        max_backoff: float = 5.0,
    ) -> None:
        self.pool = pool
        self.producer = producer
        self.service = service
        self.lock_id = schema_lock_id(_RELAY_LOCK_BASE, schema)
        self.batch = batch
        self.poll_seconds = poll_seconds
        self.max_backoff = max_backoff
        self._wake = asyncio.Event()
        self._stopping = False
        self.published = 0
        # Called between the broker's acknowledgement and the outbox delete. Fault tests crash here.
        self.after_publish: Callable[[], None] = lambda: None

    def notify(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        backoff = 0.1
        while not self._stopping:
            try:
                async with self.pool.acquire() as conn, session_lock(conn, self.lock_id) as leader:
                    if leader:
                        await self._publish_loop(conn)
                if not leader:
                    # Another instance is the publisher; stand by, and let its gauges
                    # speak for the backlog rather than this replica's last reading.
                    metrics.OUTBOX_BACKLOG.labels(self.service).set(0)
                    metrics.OUTBOX_AGE.labels(self.service).set(0)
                    await self._sleep(self.poll_seconds)
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                metrics.RELAY_ERRORS.labels(self.service).inc()
                level = logging.WARNING if is_transient(exc) else logging.ERROR
                log.log(level, "outbox relay failed, retrying in %.1fs: %r", backoff, exc)
                await self._sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        except TimeoutError:
            pass
        self._wake.clear()

    async def _publish_loop(self, conn: Connection) -> None:
        # Ids the broker has acknowledged and the outbox still holds: deleted by the next
        # read, in the same statement, so a batch costs two round trips, not three. Should
        # anything fail before that read, they stay and go again (consumers drop repeats).
        published: list[int] = []
        while not self._stopping:
            # Clear before reading: a notify that lands while we publish is not lost.
            self._wake.clear()
            rows = await conn.fetch(_DELETE_AND_READ, published, self.batch)
            published = []
            if not rows:
                metrics.OUTBOX_BACKLOG.labels(self.service).set(0)
                metrics.OUTBOX_AGE.labels(self.service).set(0)
                await self._sleep(self.poll_seconds)
                continue
            metrics.OUTBOX_AGE.labels(self.service).set(float(rows[0]["age"]))
            await self._publish(rows)
            self.after_publish()
            published = [r["id"] for r in rows]
            self.published += len(rows)
            if len(rows) == self.batch:
                backlog = await conn.fetchval("SELECT count(*) FROM outbox")
                metrics.OUTBOX_BACKLOG.labels(self.service).set(backlog - len(rows))
            else:
                metrics.OUTBOX_BACKLOG.labels(self.service).set(0)
        if published:
            # Stopping: what was sent goes now, or the next start would send it again.
            await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", published)

    async def _publish(self, rows: Sequence[asyncpg.Record]) -> None:
        # send() only enqueues; the producer keeps one batch in flight per partition,
        # so the broker receives each key's events in id order.
        futures = []
        for r in rows:
            headers = list(
                zip(r["header_keys"], [bytes(v) for v in r["header_values"]], strict=True)
            )
            futures.append(
                await self.producer.send(
                    r["topic"], value=bytes(r["value"]), key=r["key"], headers=headers
                )
            )
        await asyncio.gather(*futures)
        # One labelled-series lookup per topic and type, not per row.
        for (topic, event_type), count in Counter(
            (r["topic"], r["event_type"] or "") for r in rows
        ).items():
            metrics.EVENTS_OUT.labels(self.service, topic, event_type).inc(count)
