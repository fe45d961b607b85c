"""A group that replaces per-topic groups starts where they left off, once.

Supervision and scoring each read several topics under one group, where each
topic once had a group of its own. Without adopting their offsets, the first
start after the upgrade would read every topic again from the start.
"""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.kafka import adopt_offsets, client_options
from tests.integration.conftest import kafka_settings
from tests.integration.helpers import create_topics


async def _commit(cfg, group: str, offsets: dict[TopicPartition, int]) -> None:
    consumer = AIOKafkaConsumer(group_id=group, enable_auto_commit=False, **client_options(cfg))
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit(offsets)
    finally:
        await consumer.stop()


async def _committed(cfg, group: str, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(group_id=group, enable_auto_commit=False, **client_options(cfg))
    await consumer.start()
    try:
        return {tp: n for tp in tps if (n := await consumer.committed(tp)) is not None}
    finally:
        await consumer.stop()


async def test_the_new_group_starts_where_the_per_topic_groups_left_off_and_only_once(
    bootstrap, prefix
):
    cfg = kafka_settings(bootstrap)
    cases, feedback = f"{prefix}cases", f"{prefix}feedback"
    await create_topics(cfg, "", [cases, feedback], partitions=2)
    c0, c1 = TopicPartition(cases, 0), TopicPartition(cases, 1)
    f0, f1 = TopicPartition(feedback, 0), TopicPartition(feedback, 1)
    await _commit(cfg, f"{prefix}svc.cases", {c0: 5, c1: 7})
    await _commit(cfg, f"{prefix}svc.feedback", {f0: 3})  # partition 1 never committed
    earlier = {cases: f"{prefix}svc.cases", feedback: f"{prefix}svc.feedback"}

    carried = await adopt_offsets(cfg, f"{prefix}svc", earlier)

    assert carried == {c0: 5, c1: 7, f0: 3}
    assert await _committed(cfg, f"{prefix}svc", [c0, c1, f0, f1]) == carried

    # Once the new group has offsets of its own, the old groups are history.
    await _commit(cfg, f"{prefix}svc.cases", {c0: 50})
    assert await adopt_offsets(cfg, f"{prefix}svc", earlier) == {}
    assert await _committed(cfg, f"{prefix}svc", [c0]) == {c0: 5}


async def test_a_group_with_no_predecessors_commits_nothing(bootstrap, prefix):
    cfg = kafka_settings(bootstrap)
    topic = f"{prefix}cases"
    await create_topics(cfg, "", [topic], partitions=2)
    tps = [TopicPartition(topic, 0), TopicPartition(topic, 1)]

    assert await adopt_offsets(cfg, f"{prefix}svc", {topic: f"{prefix}svc.cases"}) == {}
    assert await _committed(cfg, f"{prefix}svc", tps) == {}
