"""Reliable consumption: manual acknowledgement, inbox dedupe, DLQ, retry without skipping.

A service registers a *batch handler* for a topic. For every batch the broker
hands us, in one Postgres transaction:

1. each record is decoded; undecodable or invalid ones become DLQ rows;
2. each event id (or poison position) goes into the inbox, and those already
   there are dropped — a redelivered batch changes nothing;
3. the handler updates state and emits events through ``Tx``;
4. outgoing events and DLQ rows are written to the outbox.

Only after the commit is the batch acknowledged (offsets committed). A
transient failure (database or broker down) rewinds the partitions and retries
with backoff, forever; a handler that fails on one event is retried with each
event in its own savepoint, so only the culprit goes to the DLQ and the rest
of the partition flows on.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
import weakref
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, Protocol, cast

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from faststream import AckPolicy
from faststream.kafka import KafkaBroker

from shared import metrics
from shared.db import is_transient
from shared.events.envelope import Envelope, PoisonMessage, decode
from shared.offsets import Committer, OffsetCommits, last_offsets
from shared.outbox import OutboxRow, Tx
from shared.settings import KafkaSettings
from shared.topics import DLQ_SUFFIX, ERROR_HEADERS

log = logging.getLogger(__name__)

BatchHandler = Callable[[Tx, Sequence[Envelope]], Awaitable[None]]
#: The partitions a consumer holds, as ``(topic, partition)``.
Partitions = tuple[tuple[str, int], ...]


class ReadWatcher(Protocol):
    """Whoever waits on a subscription's reads (supervision's timer scheduler)."""

    def caught_up(self, subscription: str, as_of: float, partitions: Partitions) -> None:
        """The subscription has read and committed everything its partitions (those it
        holds) held at ``as_of`` (wall-clock seconds of the fetch that showed it)."""

    def reads_needed_by(self) -> float | None:
        """The wall-clock instant by which the reads must have gone past (supervision: its
        next due timer, plus the margin for a fact still being produced then); None: none."""


@dataclass
class ConsumerContext:
    """What every consumer of a service shares."""

    service: str
    pool: asyncpg.Pool
    kafka: KafkaSettings
    topic_prefix: str = ""
    on_commit: Callable[[], None] = lambda: None
    # Called between the database commit and the offset commit. Fault tests crash here.
    before_ack: Callable[[], None] = lambda: None
    max_backoff: float = 5.0
    attempts: dict[tuple[str, int, int], int] = field(default_factory=dict)
    #: Told when a subscription has applied everything its partitions held as of an instant,
    #: and asked when it needs the reads by: a settling read ends there rather than hold
    #: what it read any longer. None: nobody waits, and nothing is computed.
    reads: ReadWatcher | None = None


async def _raw(msg: Any) -> Any:
    # Keep the bytes: decoding is ours, so a poison record cannot break the batch. The
    # handler's one argument is the message itself. Asked for as ``KafkaMessage`` (a
    # ``Context`` field), fast_depends would resolve it in a worker thread for every batch:
    # a thread hand-off per batch, 5–8 % of a quiet service's CPU on this VM. A weak proxy,
    # because the message caches what its decoder returns: the message itself would make
    # it, its records and their headers a reference cycle, left for the garbage collector
    # (60,000–130,000 objects a service over a 20,000-report run, and a pause to find them).
    return weakref.proxy(msg)


async def _lean_batch(records: tuple[Any, ...], original: Any) -> Any:
    # faststream's batch parser decodes every record's headers into a dict of str, which
    # nothing here reads (decoding is ours, from the records): let it see the first record
    # only, and hand the whole batch on, which is what nack and the handler use.
    message = await original(records[:1])
    message.raw_message = records
    return message


async def caught_up_as_of(consumer: AIOKafkaConsumer) -> float | None:
    """When the consumer last saw the end of every partition it holds, if it is there now.

    Wall-clock seconds of the oldest of those partitions' last fetch responses, provided
    the position of each has reached the high watermark that fetch reported; None while
    any partition has more to read, or holds none, or has not been fetched yet.
    """
    tps = consumer.assignment()
    if not tps:
        return None
    oldest: float | None = None
    for tp in tps:
        high = consumer.highwater(tp)
        polled = consumer.last_poll_timestamp(tp)
        if high is None or polled is None or await consumer.position(tp) < high:
            return None
        oldest = polled if oldest is None else min(oldest, polled)
    return None if oldest is None else oldest / 1000


def held_partitions(consumer: AIOKafkaConsumer) -> Partitions:
    return tuple(sorted((tp.topic, tp.partition) for tp in consumer.assignment()))


@dataclass
class _CaughtUp:
    """Where a subscription stands against the end of its partitions, between its reads."""

    #: caught up as of this instant once the batch just read is committed (None: behind)
    pending: float | None = None
    #: the partitions it was caught up on
    partitions: Partitions = ()


async def _settled(
    consumer: AIOKafkaConsumer,
    records: tuple[ConsumerRecord[bytes, bytes], ...],
    settle: float,
    max_records: int,
    until: float | None = None,
) -> tuple[ConsumerRecord[bytes, bytes], ...]:
    """``records``, and what is fetched until the oldest of them is ``settle`` old.

    Read on meanwhile rather than slept through: the consumer fetches a partition again only
    once what it fetched before has been taken, so one read at the end would hold only the
    first fetch of each. By the records' Kafka timestamps (their producers' clocks), capped
    at ``settle`` from now, so a producer's clock running ahead cannot hold the batch longer.
    Never past ``until`` (wall clock), when someone needs the reads by then.
    """
    deadline = min(time.time(), min(r.timestamp for r in records) / 1000) + settle
    if until is not None:
        deadline = min(deadline, until)
    batch = list(records)
    while len(batch) < max_records and (left := deadline - time.time()) > 0:
        more = await consumer.getmany(
            timeout_ms=max(1, round(left * 1000)), max_records=max_records - len(batch)
        )
        batch.extend(chain.from_iterable(more.values()))
    return tuple(batch)


def _batch_reader(
    ctx: ConsumerContext, label: str, caught: _CaughtUp, follower: bool = False
) -> Callable[[AIOKafkaConsumer], Awaitable[tuple[ConsumerRecord[bytes, bytes], ...]]]:
    """What the subscriber's loop awaits for its next batch, in place of faststream's own.

    faststream's batch reader sleeps ``batch_timeout_ms`` again after every empty poll, and
    records that arrive meanwhile wait it out: up to 50 ms more per hop on a quiet stream,
    which put a quiet pipeline's report → dispatched at 126 ms p50 instead of 43 (measured
    with BENCH_PIPELINE_PACED_ONLY=1 at 2–5 reports/s). ``getmany`` already returns
    as soon as a record arrives, and waits the timeout when none does, so nothing spins.

    A busy follower's read settles (``KafkaSettings.follower_settle_ms``): the events of a
    case on its several topics, a few hundred ms apart under load, then mostly come in one
    batch, and the case is locked, folded and saved once for all of them. It settles only
    until ``ctx.reads.reads_needed_by()``: a due timer waiting on the reads outweighs the saving.

    With ``ctx.reads`` set it also looks whether the consumer has reached the end of
    its partitions: told at once after an empty read, or left in ``caught`` for ``consume``
    to tell once the batch read is committed.
    """
    cfg = ctx.kafka
    settle = cfg.follower_settle_ms / 1000 if follower else 0.0

    async def next_batch(consumer: AIOKafkaConsumer) -> tuple[ConsumerRecord[bytes, bytes], ...]:
        fetched = await consumer.getmany(timeout_ms=cfg.batch_timeout_ms, max_records=cfg.max_batch)
        records = tuple(chain.from_iterable(fetched.values()))
        if settle and len(records) >= cfg.follower_settle_min_batch:
            until = ctx.reads.reads_needed_by() if ctx.reads is not None else None
            records = await _settled(consumer, records, settle, cfg.max_batch, until)
        if ctx.reads is not None:
            as_of = await caught_up_as_of(consumer)
            partitions = held_partitions(consumer) if as_of is not None else ()
            if records:
                # Told once the batch is committed (``consume``).
                caught.pending, caught.partitions = as_of, partitions
            elif as_of is not None:
                ctx.reads.caught_up(label, as_of, partitions)
        return records

    return next_batch


def subscribe(
    broker: KafkaBroker,
    ctx: ConsumerContext,
    topics: str | Sequence[str],
    group_id: str,
    handler: BatchHandler,
    *,
    follower: bool = False,
) -> OffsetCommits:
    """Register ``handler`` for the base topic(s) ``topics`` under consumer group ``group_id``.

    Several topics make one consumer whose batches mix them: a handler that folds every
    topic into the same rows loads and saves a case once for the events of all of them
    (a case's registration and dispatch, on two topics, when they meet in one batch: a busy
    follower's read settles so that they do more often, ``KafkaSettings.follower_settle_ms``).

    ``follower``: the subscription keeps the service's state in step with the topic but is
    not on a case's forward path, so it polls with the follower fetch wait (bigger batches,
    fewer polls) instead of the forward path's short one.

    Returns the subscription's offset commits, for its owner to close at stop.
    """
    bases = (topics,) if isinstance(topics, str) else tuple(topics)
    full_topics = [ctx.topic_prefix + t for t in bases]
    # What metrics and logs call the subscription: its topic, or its topics joined.
    label = "+".join(full_topics)
    cfg = ctx.kafka
    fetch_max_wait_ms = cfg.follower_fetch_max_wait_ms if follower else cfg.fetch_max_wait_ms

    subscriber = broker.subscriber(
        *full_topics,
        group_id=group_id,
        batch=True,
        ack_policy=AckPolicy.MANUAL,
        auto_offset_reset="earliest",
        max_records=cfg.max_batch,
        batch_timeout_ms=cfg.batch_timeout_ms,
        fetch_max_wait_ms=fetch_max_wait_ms,
        session_timeout_ms=cfg.session_timeout_ms,
        heartbeat_interval_ms=cfg.heartbeat_interval_ms,
        decoder=_raw,
        parser=_lean_batch,
        title=f"{ctx.service}:{'+'.join(bases)}",
    )

    caught = _CaughtUp()
    subscriber.get_msg = _batch_reader(ctx, label, caught, follower)  # type: ignore[method-assign,assignment]
    commits = OffsetCommits(cfg.commit_interval_ms / 1000)

    @subscriber
    async def consume(msg: Any) -> None:
        records: tuple[ConsumerRecord[bytes, bytes], ...] = tuple(msg.raw_message)
        outcome = await handle_batch(ctx, label, records, handler, group=group_id)
        if outcome == "retry":
            caught.pending = None
            await msg.nack()  # rewinds every partition of the batch to its first record
            return
        ctx.before_ack()
        # Acknowledged through our own commits (explicit offsets, coalesced), never through
        # faststream's ack, which commits every consumed position.
        last = last_offsets(records)
        await commits.handled(cast(Committer, msg.consumer), last)
        ctx.on_commit()
        if caught.pending is not None and ctx.reads is not None:
            # Committed to the database: what the broker held at ``pending`` is applied.
            ctx.reads.caught_up(label, caught.pending, caught.partitions)
            caught.pending = None
        _record_lag(ctx, msg, last)

    return commits


def _record_lag(ctx: ConsumerContext, msg: Any, last: dict[tuple[str, int], int]) -> None:
    consumer = getattr(msg, "consumer", None)
    if consumer is None or not hasattr(consumer, "highwater"):
        return
    for (topic, partition), offset in last.items():
        high = consumer.highwater(TopicPartition(topic, partition))
        if high is not None:
            metrics.CONSUMER_LAG.labels(ctx.service, topic, str(partition)).set(
                max(0, high - offset - 1)
            )


async def handle_batch(
    ctx: ConsumerContext,
    topic: str,
    records: Sequence[ConsumerRecord[bytes, bytes]],
    handler: BatchHandler,
    group: str = "",
) -> str:
    """Apply one batch exactly once; returns "done" or "retry" (after backing off).

    ``topic`` names the subscription in metrics and logs: its topic, or its topics joined
    with ``+``. Each record is judged by the topic it came from.
    """
    decoded: list[tuple[ConsumerRecord[bytes, bytes], Envelope]] = []
    poison: list[tuple[ConsumerRecord[bytes, bytes], str]] = []
    prefix = ctx.topic_prefix
    for record in records:
        try:
            envelope = decode(record.value)
        except PoisonMessage as exc:
            poison.append((record, str(exc)))
            continue
        base = record.topic.removeprefix(prefix)
        if envelope.topic != base:
            # A handler only knows its own topic's types; another's would be misread or dropped.
            poison.append((record, f"{envelope.type} belongs on {envelope.topic!r}, not {base!r}"))
        else:
            decoded.append((record, envelope))
    metrics.BATCH_SIZE.labels(ctx.service, topic).observe(len(records))
    started = time.perf_counter()
    first = records[0] if records else None
    key = (first.topic, first.partition, first.offset) if first else (topic, -1, -1)
    try:
        await _apply(ctx, topic, group, decoded, poison, handler, isolate=False)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        if is_transient(exc):
            return await _back_off(ctx, topic, key, exc)
        metrics.EVENTS_FAILED.labels(ctx.service, topic, "handler").inc()
        log.warning(
            "batch failed (%r); retrying one event at a time to isolate the culprit",
            exc,
            extra={"topic": topic, "partition": key[1], "offset": key[2]},
        )
        try:
            await _apply(ctx, topic, group, decoded, poison, handler, isolate=True)
        except asyncio.CancelledError:
            raise
        except Exception as again:
            if is_transient(again):
                return await _back_off(ctx, topic, key, again)
            raise
    ctx.attempts.pop(key, None)
    metrics.HANDLE_SECONDS.labels(ctx.service, topic).observe(time.perf_counter() - started)
    return "done"


async def _back_off(
    ctx: ConsumerContext, topic: str, key: tuple[str, int, int], exc: BaseException
) -> str:
    attempt = ctx.attempts.get(key, 0) + 1
    ctx.attempts[key] = attempt
    delay = min(0.1 * 2 ** min(attempt, 10), ctx.max_backoff)
    metrics.EVENTS_FAILED.labels(ctx.service, topic, "transient").inc()
    log.warning(
        "transient failure (attempt %d), retrying in %.1fs: %r",
        attempt,
        delay,
        exc,
        extra={"topic": topic, "partition": key[1], "offset": key[2]},
    )
    await asyncio.sleep(delay)
    return "retry"


def _poison_id(record: ConsumerRecord[bytes, bytes]) -> str:
    return f"poison:{record.topic}:{record.partition}:{record.offset}"


async def _apply(
    ctx: ConsumerContext,
    topic: str,
    group: str,
    decoded: list[tuple[ConsumerRecord[bytes, bytes], Envelope]],
    poison: list[tuple[ConsumerRecord[bytes, bytes], str]],
    handler: BatchHandler,
    *,
    isolate: bool,
) -> None:
    async with ctx.pool.acquire() as conn, conn.transaction():
        ids = [env.id for _, env in decoded] + [_poison_id(r) for r, _ in poison]
        topics = [r.topic for r, _ in decoded] + [r.topic for r, _ in poison]
        # The ids inserted come back as one array, and only when some were not (a redelivery,
        # an id twice in the batch): most batches are all new, and thousands of returned rows
        # cost the service more than the insert costs Postgres.
        inserted = await conn.fetchval(
            "WITH new AS (INSERT INTO inbox (event_id, topic) "
            "SELECT * FROM unnest($1::text[], $2::text[]) "
            "ON CONFLICT DO NOTHING RETURNING event_id) "
            "SELECT CASE WHEN count(*) < cardinality($1::text[]) "
            "THEN coalesce(array_agg(event_id), '{}') END "
            "FROM new",
            ids,
            topics,
        )
        fresh_ids = set(ids if inserted is None else inserted)
        tx = Tx(conn, ctx.topic_prefix)
        # Counted once the transaction commits: an attempt rolled back and tried again
        # (one event at a time, or after an outage) must not count its poison twice.
        poisoned: Counter[str] = Counter()
        dead: Counter[str] = Counter()
        for record, reason in poison:
            if _poison_id(record) in fresh_ids:
                tx.emit_raw(_dead_letter(record, group, "PoisonMessage", reason, attempt=1))
                poisoned[record.topic] += 1
                dead[record.topic] += 1
        fresh: list[tuple[ConsumerRecord[bytes, bytes], Envelope]] = []
        for record, env in decoded:
            # The same id twice in one batch (a producer retry) is also a duplicate.
            if env.id in fresh_ids:
                fresh_ids.discard(env.id)
                fresh.append((record, env))
        duplicates = len(decoded) - len(fresh)
        if not isolate:
            await handler(tx, [env for _, env in fresh])
        else:
            for record, env in fresh:
                mark = tx.mark()
                try:
                    async with conn.transaction():  # a savepoint
                        await handler(tx, [env])
                except Exception as exc:
                    if is_transient(exc):
                        raise
                    tx.rollback_to(mark)
                    # Keep the dead letter exactly-once by its position, but free the event
                    # id: a re-driven copy of this event must be handled, not dropped.
                    await conn.execute(
                        "UPDATE inbox SET event_id = $2 WHERE event_id = $1",
                        env.id,
                        _poison_id(record),
                    )
                    log.error(
                        "event sent to the dead-letter topic: %r",
                        exc,
                        extra={"event_id": env.id, "case_id": env.subject, "event_type": env.type},
                    )
                    tx.emit_raw(
                        _dead_letter(
                            record, group, type(exc).__name__, str(exc), attempt=2, exc=exc
                        )
                    )
                    dead[record.topic] += 1
        await tx.flush()
    tx.run_committed()
    # Per topic of origin, whatever the subscription: dashboards read them by topic.
    for source, count in poisoned.items():
        metrics.EVENTS_FAILED.labels(ctx.service, source, "poison").inc(count)
    for source, count in dead.items():
        metrics.DLQ_MESSAGES.labels(ctx.service, source).inc(count)
    if duplicates:
        fresh_records = {id(r) for r, _ in fresh}
        for source, count in Counter(
            r.topic for r, _ in decoded if id(r) not in fresh_records
        ).items():
            metrics.EVENTS_DUPLICATE.labels(ctx.service, source).inc(count)
    for (source, event_type), count in Counter([(r.topic, env.type) for r, env in fresh]).items():
        metrics.EVENTS_IN.labels(ctx.service, source, event_type).inc(count)


def _dead_letter(
    record: ConsumerRecord[bytes, bytes],
    group: str,
    exception: str,
    message: str,
    attempt: int,
    exc: BaseException | None = None,
) -> OutboxRow:
    # Header names are stored as text, which cannot hold a NUL; the bytes of values are kept.
    original = [(k.replace("\x00", "\\x00"), v) for k, v in (record.headers or ())]
    error_headers = {
        "exception": exception,
        "message": message[:2000],
        "topic": record.topic,
        "partition": str(record.partition),
        "offset": str(record.offset),
        "attempt": str(attempt),
        "group": group,
    }
    if exc is not None:
        error_headers["stacktrace"] = "".join(traceback.format_exception(exc))[-4000:]
    headers = original + [
        (ERROR_HEADERS[k], v.encode()) for k, v in error_headers.items() if k in ERROR_HEADERS
    ]
    return OutboxRow(
        topic=record.topic + DLQ_SUFFIX,
        key=record.key,
        value=record.value if record.value is not None else b"",
        headers=headers,
        event_type=None,
    )
