"""Reading "to the end" of a topic sees every record, even the rest of the last batch; deleting topics.

Tansu answers ListOffsets(latest) with the last batch's base offset + 1, so a
tool trusting it (scores recompute, the DLQ listing, the fault audit) missed
up to a linger's worth of records at the tail of each partition.
"""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from shared.kafka import client_options, delete_topics, end_offsets, ensure_topics
from tests.integration.conftest import kafka_settings


async def test_end_offsets_count_every_record_of_a_batched_tail(bootstrap, prefix):
    cfg = kafka_settings(bootstrap)
    topic = f"{prefix}tail"
    await ensure_topics(cfg, {topic: 2})
    producer = AIOKafkaProducer(linger_ms=50, acks="all", **client_options(cfg))
    await producer.start()
    try:
        sent = [await producer.send(topic, b"x", partition=i % 2) for i in range(101)]
        for future in sent:
            await future
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(enable_auto_commit=False, **client_options(cfg))
    await consumer.start()
    try:
        tps = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
        consumer.assign(tps)
        assert await end_offsets(consumer, tps) == {tps[0]: 51, tps[1]: 50}
    finally:
        await consumer.stop()


async def test_deleted_topics_are_gone_and_a_missing_one_is_no_error(bootstrap, prefix):
    cfg = kafka_settings(bootstrap)
    names = [f"{prefix}scratch0", f"{prefix}scratch1"]
    await ensure_topics(cfg, {n: 2 for n in names})
    await delete_topics(cfg, [*names, f"{prefix}never-made"])
    consumer = AIOKafkaConsumer(**client_options(cfg))
    await consumer.start()
    try:
        assert not set(names) & await consumer.topics()
    finally:
        await consumer.stop()
