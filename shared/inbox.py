"""The inbox's retention: an event id is forgotten once no copy of its event can come back.

The inbox (``shared.consumer``) is what makes a redelivered event harmless, so an id
must stay while a copy of its event may still be delivered: while a topic the service
reads holds the record (a redelivery after a crash, an operator's ``replay``), or while
the topic's dead-letter topic holds one that an operator may re-drive. Kafka deletes a
record only with its whole segment, once the segment's newest record is older than
``retention.ms``, and a segment is closed at the latest ``segment.ms`` after it was
opened: a record lives at most ``retention.ms + segment.ms``. Ids are kept for the
longest such lifetime among those topics plus a day (clock skew between producers and
the broker, the broker's deletion check), and never less than the service's
``INBOX_RETENTION_DAYS``. A topic kept forever (``retention.ms`` -1, or compacted), or
one whose retention the broker does not report, keeps every id: the development broker
reports only what a topic was created with, and never deletes anything.

The decision is pure (:func:`inbox_keep`); :func:`prune` deletes, and :func:`run_pruner`
asks the broker again before every round, so a retention an operator lengthens is
honoured from the next round on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from shared import metrics
from shared.db import schema_lock_id, session_lock
from shared.kafka import topic_configs

if TYPE_CHECKING:
    import asyncpg

    from shared.settings import KafkaSettings

log = logging.getLogger(__name__)

#: Beyond the longest lifetime of a record: producer clock skew, the broker's deletion check.
MARGIN = timedelta(days=1)
#: Rows deleted per statement: short transactions, and a first prune of a long-grown inbox
#: does not hold millions of row locks or write one huge WAL record run.
CHUNK = 10_000
#: One instance of a service prunes its schema's inbox at a time; the others skip the round.
_PRUNE_LOCK_BASE = 93_000_000


@dataclass(frozen=True)
class TopicRetention:
    """What the broker says of one topic; ``None`` where it says nothing."""

    topic: str
    retention_ms: int | None
    segment_ms: int | None
    cleanup_policy: str | None


@dataclass(frozen=True)
class Keep:
    """How long inbox ids are kept: ``None`` keeps them all, for ``reason``."""

    keep: timedelta | None
    reason: str


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


async def topic_retentions(cfg: KafkaSettings, topics: Sequence[str]) -> list[TopicRetention]:
    """What the broker says of each of ``topics`` that exists (one that does not holds nothing)."""
    configs = await topic_configs(cfg, list(topics))
    return [
        TopicRetention(
            topic=name,
            retention_ms=_int_or_none(c.get("retention.ms")),
            segment_ms=_int_or_none(c.get("segment.ms")),
            cleanup_policy=c.get("cleanup.policy"),
        )
        for name, c in sorted(configs.items())
    ]


def record_lifetime(t: TopicRetention) -> timedelta | None:
    """The longest a record can stay in ``t``; ``None`` if forever or unknown."""
    if t.cleanup_policy is not None and "compact" in t.cleanup_policy:
        return None
    if t.retention_ms is None or t.segment_ms is None or t.retention_ms < 0:
        return None
    return timedelta(milliseconds=t.retention_ms + t.segment_ms)


def inbox_keep(minimum: timedelta, topics: Sequence[TopicRetention]) -> Keep:
    """How long the inbox must keep an id, given every topic an event may come back from."""
    if not topics:
        return Keep(None, "no topics to bound the retention by")
    longest = timedelta(0)
    for t in topics:
        lifetime = record_lifetime(t)
        if lifetime is None:
            if t.cleanup_policy is not None and "compact" in t.cleanup_policy:
                why = "is compacted"
            elif t.retention_ms is not None and t.retention_ms < 0:
                why = "keeps records forever (retention.ms -1)"
            else:
                why = "has no retention.ms and segment.ms the broker reports"
            return Keep(None, f"topic {t.topic} {why}")
        longest = max(longest, lifetime)
    bound = longest + MARGIN
    if minimum >= bound:
        return Keep(minimum, "INBOX_RETENTION_DAYS")
    return Keep(bound, f"the longest record lifetime (retention.ms + segment.ms) + {MARGIN.days} d")


async def prune(pool: asyncpg.Pool, schema: str, keep: timedelta, chunk: int = CHUNK) -> int | None:
    """Delete ids of ``schema``'s inbox received more than ``keep`` ago; returns how many,
    ``None`` if another instance of the service is pruning (it holds the lock)."""
    lock_id = schema_lock_id(_PRUNE_LOCK_BASE, schema)
    async with pool.acquire() as conn, session_lock(conn, lock_id) as taken:
        if not taken:
            return None
        # One cutoff for the whole round, so the chunks agree on what is old.
        cutoff = await conn.fetchval(
            "SELECT now() - make_interval(secs => $1)", keep.total_seconds()
        )
        deleted = 0
        while True:
            # Old ids lie at the start of the heap (the table is appended to), so each
            # chunk's scan finds its rows early; by ctid, each chunk is a short statement.
            status = await conn.execute(
                "DELETE FROM inbox WHERE ctid = ANY (ARRAY("
                "SELECT ctid FROM inbox WHERE received_at < $1 LIMIT $2))",
                cutoff,
                chunk,
            )
            n = int(status.split()[-1])
            deleted += n
            if n < chunk:
                return deleted


async def run_pruner(
    service: str,
    pool: asyncpg.Pool,
    schema: str,
    retentions: Callable[[], Awaitable[Sequence[TopicRetention]]],
    minimum: timedelta,
    every_seconds: float,
) -> None:
    """Prune the inbox now and every ``every_seconds``, asking the broker each time."""
    said = ""
    while True:
        try:
            decision = inbox_keep(minimum, await retentions())
            seconds = decision.keep.total_seconds() if decision.keep is not None else 0.0
            metrics.INBOX_KEEP_SECONDS.labels(service).set(seconds)
            if decision.keep is None:
                if decision.reason != said:
                    log.info("inbox keeps every event id: %s", decision.reason)
            else:
                deleted = await prune(pool, schema, decision.keep)
                if deleted:
                    metrics.INBOX_PRUNED.labels(service).inc(deleted)
                    log.info(
                        "inbox: %d event ids older than %.1f d forgotten (%s)",
                        deleted,
                        seconds / 86_400,
                        decision.reason,
                    )
            said = decision.reason
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # The broker or the database away: the ids stay, and the next round tries again.
            log.warning("inbox prune skipped: %r", exc)
        await asyncio.sleep(every_seconds)
