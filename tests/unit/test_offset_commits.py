"""Coalesced offset commits: explicit, after the handler's commit, at most every interval."""

from __future__ import annotations

import asyncio
from typing import NamedTuple

from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError

from shared.offsets import OffsetCommits, last_offsets


class Record(NamedTuple):
    topic: str
    partition: int
    offset: int


class Consumer:
    def __init__(self, partitions: int = 3, fail: int = 0) -> None:
        self.assigned = {TopicPartition("t", p) for p in range(partitions)}
        self.commits: list[dict[TopicPartition, int]] = []
        self.fail = fail

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        if self.fail:
            self.fail -= 1
            raise CommitFailedError("rebalanced")
        self.commits.append(dict(offsets))


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def tp(p: int) -> TopicPartition:
    return TopicPartition("t", p)


async def test_the_first_batch_commits_at_once_the_next_within_the_interval_wait():
    clock, consumer = Clock(), Consumer()
    commits = OffsetCommits(0.5, clock)
    await commits.handled(consumer, last_offsets([Record("t", 0, 7), Record("t", 1, 3)]))
    assert consumer.commits == [{tp(0): 8, tp(1): 4}], "the offset after each last record"
    clock.now += 0.1
    await commits.handled(consumer, last_offsets([Record("t", 0, 8)]))
    clock.now += 0.1
    await commits.handled(consumer, last_offsets([Record("t", 0, 9), Record("t", 2, 0)]))
    assert len(consumer.commits) == 1, "coalesced while the interval runs"
    clock.now += 0.35  # past the interval since the first commit
    await commits.handled(consumer, last_offsets([Record("t", 1, 4)]))
    assert consumer.commits[1] == {tp(0): 10, tp(1): 5, tp(2): 1}


async def test_a_pending_commit_goes_out_on_its_timer_when_no_batch_follows():
    consumer = Consumer()
    commits = OffsetCommits(0.05)
    await commits.handled(consumer, last_offsets([Record("t", 0, 1)]))
    await commits.handled(consumer, last_offsets([Record("t", 0, 2)]))
    assert consumer.commits == [{tp(0): 2}]
    await asyncio.sleep(0.15)
    assert consumer.commits == [{tp(0): 2}, {tp(0): 3}]


async def test_interval_zero_commits_every_batch():
    consumer = Consumer()
    commits = OffsetCommits(0.0, Clock())
    for offset in range(3):
        await commits.handled(consumer, last_offsets([Record("t", 0, offset)]))
    assert consumer.commits == [{tp(0): 1}, {tp(0): 2}, {tp(0): 3}]


async def test_partitions_given_away_are_not_committed_and_a_failed_commit_is_kept():
    clock, consumer = Clock(), Consumer(fail=1)
    commits = OffsetCommits(0.5, clock)
    await commits.handled(consumer, last_offsets([Record("t", 0, 4), Record("t", 1, 9)]))
    assert consumer.commits == [], "the broker refused it"
    consumer.assigned.discard(tp(1))
    clock.now += 0.6
    await commits.handled(consumer, last_offsets([Record("t", 2, 0)]))
    assert consumer.commits == [{tp(0): 5, tp(2): 1}]


async def test_close_sends_what_is_pending_and_nothing_after():
    clock, consumer = Clock(), Consumer()
    commits = OffsetCommits(10.0, clock)
    await commits.handled(consumer, last_offsets([Record("t", 0, 1)]))
    await commits.handled(consumer, last_offsets([Record("t", 0, 2)]))
    await commits.close()
    assert consumer.commits == [{tp(0): 2}, {tp(0): 3}]
    await commits.close()
    assert len(consumer.commits) == 2


async def test_discard_after_the_consumer_stopped_sends_nothing_later():
    consumer = Consumer()
    commits = OffsetCommits(0.05)
    await commits.handled(consumer, last_offsets([Record("t", 0, 1)]))
    await commits.handled(consumer, last_offsets([Record("t", 0, 2)]))  # arms the timer
    commits.discard()
    await asyncio.sleep(0.15)
    assert consumer.commits == [{tp(0): 2}]


def test_last_offsets_keeps_each_partitions_last_record():
    batch = [Record("t", 0, 3), Record("t", 1, 9), Record("t", 0, 4), Record("u", 0, 1)]
    assert last_offsets(batch) == {("t", 0): 4, ("t", 1): 9, ("u", 0): 1}
