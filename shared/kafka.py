"""Kafka clients built the same way for every service: security, acks, idempotence.

The faststream broker carries the consumers; the outbox relay owns a plain
aiokafka producer so it controls acks and ordering itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import CommitFailedError, TopicAlreadyExistsError, for_code
from aiokafka.structs import ConsumerRecord
from faststream.kafka import KafkaBroker
from faststream.security import (
    BaseSecurity,
    SASLPlaintext,
    SASLScram256,
    SASLScram512,
)

from shared.settings import KafkaSettings


def _ssl_context(cfg: KafkaSettings) -> ssl.SSLContext | None:
    if cfg.security_protocol not in ("SSL", "SASL_SSL"):
        return None
    context = ssl.create_default_context(cafile=cfg.ssl_cafile)
    if cfg.ssl_certfile:
        context.load_cert_chain(cfg.ssl_certfile, cfg.ssl_keyfile)
    return context


def client_options(cfg: KafkaSettings) -> dict[str, Any]:
    """aiokafka keyword arguments for bootstrap and security."""
    options: dict[str, Any] = {
        "bootstrap_servers": cfg.bootstrap_servers,
        "security_protocol": cfg.security_protocol,
    }
    context = _ssl_context(cfg)
    if context is not None:
        options["ssl_context"] = context
    if cfg.security_protocol.startswith("SASL"):
        if not (cfg.sasl_mechanism and cfg.sasl_username and cfg.sasl_password):
            raise ValueError(
                "KAFKA_SECURITY_PROTOCOL is SASL_*: set KAFKA_SASL_MECHANISM, "
                "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
            )
        options["sasl_mechanism"] = cfg.sasl_mechanism
        options["sasl_plain_username"] = cfg.sasl_username
        options["sasl_plain_password"] = cfg.sasl_password
    return options


def broker_security(cfg: KafkaSettings) -> BaseSecurity | None:
    """The same security settings in faststream's terms."""
    context = _ssl_context(cfg)
    if not cfg.security_protocol.startswith("SASL"):
        return BaseSecurity(ssl_context=context, use_ssl=True) if context else None
    client_options(cfg)  # validates the SASL settings are complete
    assert cfg.sasl_username and cfg.sasl_password
    kinds: dict[str | None, type[SASLPlaintext] | type[SASLScram256] | type[SASLScram512]] = {
        "PLAIN": SASLPlaintext,
        "SCRAM-SHA-256": SASLScram256,
        "SCRAM-SHA-512": SASLScram512,
    }
    kind = kinds[cfg.sasl_mechanism]
    return kind(
        cfg.sasl_username,
        cfg.sasl_password,
        ssl_context=context,
        use_ssl=context is not None,
    )


class ServiceBroker(KafkaBroker):
    """faststream's broker, starting its subscribers side by side.

    Each subscriber joins its consumer group on start, which takes a session
    timeout's worth of waiting on some brokers; one after another, a service
    with four subscriptions sat idle for four of them.
    """

    async def start(self) -> None:
        await self.connect()
        await asyncio.gather(*(sub.start() for sub in self.subscribers))
        for pub in self.publishers:
            await pub.start()
        self.running = True


def make_broker(cfg: KafkaSettings, client_id: str) -> KafkaBroker:
    return ServiceBroker(
        cfg.bootstrap_servers,
        client_id=client_id,
        security=broker_security(cfg),
        enable_idempotence=cfg.idempotence,
        acks="all",
        linger_ms=cfg.linger_ms,
        logger=None,
    )


def make_producer(cfg: KafkaSettings, client_id: str) -> AIOKafkaProducer:
    # acks=all: a row leaves the outbox only once every in-sync replica has it.
    return AIOKafkaProducer(
        client_id=client_id,
        acks="all",
        enable_idempotence=cfg.idempotence,
        linger_ms=cfg.linger_ms,
        max_batch_size=256 * 1024,
        **client_options(cfg),
    )


async def ensure_topics(
    cfg: KafkaSettings, topics: dict[str, int], replication: int = 1
) -> list[str]:
    """Create missing topics (name -> partitions); returns those created."""
    async with _admin(cfg) as admin:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(name, partitions, replication)
            for name, partitions in sorted(topics.items())
            if name not in existing
        ]
        if not wanted:
            return []
        try:
            await admin.create_topics(wanted)
        except TopicAlreadyExistsError:
            pass
        return [t.name for t in wanted]


async def delete_topics(cfg: KafkaSettings, names: list[str]) -> None:
    """Delete topics (a benchmark's scratch topics); ones already gone are no error."""
    async with _admin(cfg) as admin:
        existing = set(await admin.list_topics())
        gone = [n for n in names if n in existing]
        if gone:
            await admin.delete_topics(gone)


async def topic_configs(cfg: KafkaSettings, names: list[str]) -> dict[str, dict[str, str]]:
    """The configuration the broker reports for each of ``names`` that exists.

    Apache Kafka reports every setting, defaults included; the development broker only
    those a topic was created with. A topic missing from the result does not exist.
    """
    async with _admin(cfg) as admin:
        existing = set(await admin.list_topics())
        wanted = [n for n in names if n in existing]
        if not wanted:
            return {}
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, n) for n in wanted]
        )
    found: dict[str, dict[str, str]] = {}
    for response in responses:
        # (error_code, error_message, resource_type, resource_name, [(name, value, ...)])
        for code, message, _, name, entries in response.resources:
            if code:
                raise for_code(code)(f"describe configs of {name}: {message}")
            found[name] = {e[0]: e[1] for e in entries if e[1] is not None}
    return found


@contextlib.asynccontextmanager
async def _admin(cfg: KafkaSettings) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(client_id="citycases-admin", **client_options(cfg))
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


async def end_offsets(
    consumer: AIOKafkaConsumer, tps: list[TopicPartition]
) -> dict[TopicPartition, int]:
    """The offset after each partition's last record, for a consumer with ``tps`` assigned.

    ListOffsets alone is not enough: Tansu answers it with the last *batch's* base
    offset + 1, so the rest of that batch (up to ``linger_ms`` worth of records)
    would be missed by anything that reads "to the end". The high watermark of a
    fetch is right on every broker, so one fetch from just before that answer
    settles it. Moves the consumer's positions (callers seek afterwards).
    """
    listed = await consumer.end_offsets(tps)
    out = {tp: 0 for tp in tps if listed[tp] == 0}
    todo = [tp for tp in tps if listed[tp] > 0]
    for tp in todo:
        consumer.seek(tp, listed[tp] - 1)
    # One fetch covers every partition still to settle (not one round trip each): a topic
    # list of a whole city's topics is settled in a fetch or two.
    for _ in range(20):
        if not todo:
            break
        await consumer.getmany(*todo, timeout_ms=250, max_records=len(todo))
        waiting = []
        for tp in todo:
            high = consumer.highwater(tp)
            if high is None:
                waiting.append(tp)
            else:
                out[tp] = max(listed[tp], high)
        todo = waiting
    for tp in todo:
        out[tp] = listed[tp]
    return out


async def partitions_of(consumer: AIOKafkaConsumer, topics: list[str]) -> list[TopicPartition]:
    """Every partition of ``topics``, in order; metadata refreshed once if one is unknown yet."""
    if any(not consumer.partitions_for_topic(t) for t in topics):
        await consumer._client.force_metadata_update()
    return [
        TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())
    ]


async def read_to_end(
    consumer: AIOKafkaConsumer,
    topics: list[str],
    *,
    max_records: int = 2000,
    timeout_ms: int = 1000,
) -> AsyncIterator[tuple[TopicPartition, list[ConsumerRecord[bytes, bytes]]]]:
    """Each partition's records from offset 0 up to its end as found at the start, in batches.

    For tools that read a whole topic without a consumer group (recompute, DLQ
    listing, audits): assigns the partitions itself, and stops at the end offsets
    seen first (see :func:`end_offsets`), so records published meanwhile are not
    waited for.
    """
    tps = await partitions_of(consumer, topics)
    if not tps:
        return
    consumer.assign(tps)
    ends = await end_offsets(consumer, tps)
    await consumer.seek_to_beginning(*tps)
    remaining = {tp for tp in tps if ends[tp] > 0}
    while remaining:
        fetched = await consumer.getmany(*remaining, timeout_ms=timeout_ms, max_records=max_records)
        for tp, records in fetched.items():
            records = [r for r in records if r.offset < ends[tp]]
            if records:
                yield tp, records
            if await consumer.position(tp) >= ends[tp]:
                remaining.discard(tp)


async def adopt_offsets(
    cfg: KafkaSettings, group: str, earlier: dict[str, str]
) -> dict[TopicPartition, int]:
    """Start a new consumer group where the groups it replaces left off; returns what it took.

    ``earlier`` maps each topic to the group that read it before (a service that merged its
    per-topic groups into one). Done only while ``group`` has committed nothing at all, so
    it happens once, on the first start after the upgrade; without it the new group would
    read every topic again from the start (harmless, the inboxes drop it all, but days of
    reading on a long retention). A commit refused because an instance of the new group
    joined meanwhile means that instance adopted them already.
    """
    options = client_options(cfg)
    new = AIOKafkaConsumer(group_id=group, enable_auto_commit=False, **options)
    await new.start()
    try:
        tps = await partitions_of(new, sorted(earlier))
        for tp in tps:
            if await new.committed(tp) is not None:
                return {}
        carried: dict[TopicPartition, int] = {}
        for old_group in sorted(set(earlier.values())):
            old = AIOKafkaConsumer(group_id=old_group, enable_auto_commit=False, **options)
            await old.start()
            try:
                for tp in tps:
                    if earlier[tp.topic] == old_group:
                        offset = await old.committed(tp)
                        if offset is not None:
                            carried[tp] = offset
            finally:
                await old.stop()
        if carried:
            new.assign(list(carried))
            try:
                await new.commit(carried)
            except CommitFailedError:
                return {}
        return carried
    finally:
        await new.stop()
