"""Small tools the integration tests share: produce, read a topic, wait for a condition."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from shared.events.envelope import Envelope, encode, kafka_headers
from shared.kafka import client_options, ensure_topics
from shared.settings import KafkaSettings

T = TypeVar("T")


async def create_topics(
    cfg: KafkaSettings, prefix: str, names: list[str], partitions: int = 3
) -> None:
    await ensure_topics(cfg, {prefix + n: partitions for n in names})


async def produce(
    cfg: KafkaSettings, topic: str, items: list[Envelope | bytes], key: str | None = None
) -> None:
    producer = AIOKafkaProducer(enable_idempotence=False, acks="all", **client_options(cfg))
    await producer.start()
    try:
        for item in items:
            if isinstance(item, bytes):
                await producer.send_and_wait(topic, item, key=(key or "poison").encode())
            else:
                await producer.send_and_wait(
                    topic,
                    encode(item),
                    key=(key or item.subject).encode(),
                    headers=kafka_headers(item),
                )
    finally:
        await producer.stop()


async def read_topic(
    cfg: KafkaSettings, topic: str, expect_at_least: int = 0, seconds: float = 10
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record on the topic from the start (no consumer group)."""
    consumer = AIOKafkaConsumer(
        enable_auto_commit=False, auto_offset_reset="earliest", **client_options(cfg)
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        for _ in range(50):
            if partitions:
                break
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic)
            await asyncio.sleep(0.1)
        tps = [TopicPartition(topic, p) for p in sorted(partitions or ())]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        out: list[ConsumerRecord[bytes, bytes]] = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for records in batch.values():
                out.extend(records)
            # Tansu's ListOffsets can be a batch short; the high watermark of the fetch is not.
            listed = await consumer.end_offsets(tps)
            end = {tp: max(listed[tp], consumer.highwater(tp) or 0) for tp in tps}
            positions = {tp: await consumer.position(tp) for tp in tps}
            if len(out) >= expect_at_least and all(positions[tp] >= end[tp] for tp in tps):
                break
        return out
    finally:
        await consumer.stop()


async def eventually(
    check: Callable[[], Awaitable[T]],
    until: Callable[[T], bool],
    seconds: float = 30,
    what: str = "condition",
) -> T:
    deadline = time.monotonic() + seconds
    value = await check()
    while not until(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {seconds}s; last value: {value!r}")
        await asyncio.sleep(0.1)
        value = await check()
    return value


def as_role(database_url: str, role: str) -> str:
    """``database_url`` logging in as ``role`` instead (local Postgres trusts local users)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(database_url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{role}@{host}"))
