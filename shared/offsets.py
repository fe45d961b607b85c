"""Offset commits, coalesced: a batch's offsets reach the broker at most every interval.

The contract is unchanged: a batch's offsets are committed only after its Postgres
transaction, and what a crash leaves uncommitted is delivered again and dropped by the
inbox. What changes is how often the broker is asked. An offset commit costs about
1.5 ms of CPU on the development broker and its client together (600 µs Tansu,
900 µs aiokafka), whatever the batch size. A consumer on the forward path commits up to
50 batches a second, so at paced load commits alone took a tenth of the machine.
Coalesced, a crash redelivers at most ``interval`` more of a partition, which the inbox
drops.

Offsets are always explicit: the next offset after the last record each partition
handled. The consumer's own "consumed positions" would include a batch already fetched
but not yet committed to Postgres. A deferred commit of those, sent while that batch
was in the handler, would lose it in a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

log = logging.getLogger(__name__)


def last_offsets(records: Iterable[Any]) -> dict[tuple[str, int], int]:
    """The offset of each partition's last record in ``records`` (in offset order).

    Keyed by a plain tuple: a TopicPartition (a NamedTuple, built in Python) per record
    cost 2.4 ms a 4,000-record batch against 0.7 ms for this.
    """
    last: dict[tuple[str, int], int] = {}
    for r in records:
        last[r.topic, r.partition] = r.offset
    return last


class Committer(Protocol):
    """What of an aiokafka consumer the commits need."""

    def assignment(self) -> set[TopicPartition]: ...

    async def commit(self, offsets: dict[TopicPartition, int]) -> None: ...


class OffsetCommits:
    """One subscription's handled offsets, sent to the broker at most every ``interval``."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self.pending: dict[TopicPartition, int] = {}
        self.consumer: Committer | None = None
        self.sent_at = -float("inf")
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def handled(self, consumer: Committer, last: Mapping[tuple[str, int], int]) -> None:
        """Records up to ``last`` (``last_offsets`` of a batch) are committed to Postgres:
        commit their offsets now or soon."""
        self.consumer = consumer
        for (topic, partition), offset in last.items():
            self.pending[TopicPartition(topic, partition)] = offset + 1
        wait = self.sent_at + self.interval - self.clock()
        if wait <= 0:
            await self.flush()
        elif self._timer is None:
            # Nothing may follow this batch for a while: the commit must not wait for one.
            self._timer = asyncio.get_running_loop().call_later(wait, self._flush_later)

    def _flush_later(self) -> None:
        self._timer = None
        self._flushing = asyncio.ensure_future(self.flush())

    async def flush(self) -> None:
        """Send what is pending (on a timer, when the interval is up, and at stop)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        async with self._lock:
            consumer, offsets = self.consumer, self.pending
            if consumer is None or not offsets:
                return
            self.pending = {}
            # A partition given to another member since: its new owner reads on from the
            # last commit, and the inbox drops what it reads twice.
            assigned = consumer.assignment()
            offsets = {tp: o for tp, o in offsets.items() if tp in assigned}
            if not offsets:
                return
            self.sent_at = self.clock()
            try:
                await consumer.commit(offsets)
            except KafkaError as exc:
                # Kept for the next try; newer offsets handled meanwhile win.
                self.pending = offsets | self.pending
                log.warning("offset commit failed, kept for the next one: %r", exc)

    async def close(self) -> None:
        """At stop: send what is pending, while the consumer is still in its group."""
        with contextlib.suppress(KafkaError, asyncio.CancelledError):
            await self.flush()
        self.discard()

    def discard(self) -> None:
        """Once the consumer has stopped: forget what a batch finishing meanwhile left.

        Its offsets can no longer be committed; the next owner reads those records
        again and the inbox drops them.
        """
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._flushing is not None:
            self._flushing.cancel()
        self.pending = {}
