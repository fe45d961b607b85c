"""Dead letters: list what a `<topic>.dlq` holds and re-drive chosen messages to their topic."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from shared.kafka import client_options, read_to_end
from shared.settings import KafkaSettings
from shared.topics import DLQ_SUFFIX, ERROR_HEADERS


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]

    def error(self, name: str) -> str:
        wanted = ERROR_HEADERS[name]
        for key, value in self.headers:
            if key == wanted:
                return value.decode(errors="replace")
        return ""

    @property
    def original_headers(self) -> list[tuple[str, bytes]]:
        errors = set(ERROR_HEADERS.values())
        return [(k, v) for k, v in self.headers if k not in errors]


async def read_dead_letters(cfg: KafkaSettings, dlq_topic: str) -> list[DeadLetter]:
    """Everything on the DLQ topic, oldest first (no consumer group: reading changes nothing)."""
    consumer = AIOKafkaConsumer(enable_auto_commit=False, **client_options(cfg))
    await consumer.start()
    try:
        out = [
            DeadLetter(r.partition, r.offset, r.key, r.value or b"", tuple(r.headers or ()))
            async for _, records in read_to_end(consumer, [dlq_topic])
            for r in records
        ]
        return sorted(out, key=lambda d: (d.partition, d.offset))
    finally:
        await consumer.stop()


async def redrive(cfg: KafkaSettings, letters: Iterable[DeadLetter]) -> int:
    """Publish each dead letter's original bytes and headers back to the topic it came from.

    The consuming service's inbox keeps DLQ positions, not the event ids, so a
    re-driven event is handled afresh (once the cause is fixed) exactly once.
    """
    producer = AIOKafkaProducer(
        acks="all", enable_idempotence=cfg.idempotence, **client_options(cfg)
    )
    await producer.start()
    sent = 0
    try:
        for letter in letters:
            topic = letter.error("topic")
            if not topic or topic.endswith(DLQ_SUFFIX):
                raise ValueError(
                    f"dead letter at offset {letter.offset} does not name its source topic"
                )
            await producer.send_and_wait(
                topic, letter.value, key=letter.key, headers=letter.original_headers
            )
            sent += 1
    finally:
        await producer.stop()
    return sent
