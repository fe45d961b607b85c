"""Intake benchmark: registrations per second from Kafka, and report -> registered latency.

1. Throughput: N reports are produced to ``reports`` first, then intake starts
   and registers them all; the rate is the verdicts (``case.registered``,
   ``case.merged``, ``report.rejected``) over the time from the first verdict
   published to the last, watched in intake's inbox and outbox every 50 ms
   (a verdict counts once the broker has acknowledged it).
2. Latency: with intake running and idle, reports are produced at a steady
   rate below capacity; latency is a verdict's publish timestamp minus the
   report's ``reported_at`` (stamped when it was produced): p50 and p99.

The service's own CPU time for the backlog is reported too (it runs in this
process): on a machine shared with other work it is the steadier figure.

Reports are spread over the sample city's cells and categories, a few are
near-duplicates and a few lack their photo, so all three verdicts occur.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from services.intake.app import build
from services.intake.settings import Settings
from shared.events import ReportSubmitted
from shared.events.envelope import decode, encode, kafka_headers, make_event
from shared.kafka import client_options, end_offsets, ensure_topics
from shared.reference import Category, ReferenceData, load_reference
from shared.runtime import ServiceRuntime, settled_heap
from shared.settings import KafkaSettings
from shared.topics import topic_partitions

REPORTS = int(os.environ.get("BENCH_INTAKE_REPORTS", "20000"))
STEADY_RATE = int(os.environ.get("BENCH_INTAKE_RATE", "500"))  # reports/s for the latency run
STEADY_SECONDS = float(os.environ.get("BENCH_INTAKE_SECONDS", "10"))
PARTITIONS = 3
FLOOR = 2000.0


def _answers(category: Category) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attribute in category.filing.attributes:
        if not attribute.required:
            continue
        if attribute.values:
            out[attribute.code] = attribute.values[0].key
        elif attribute.datatype.value == "number":
            out[attribute.code] = 10
        elif attribute.datatype.value == "datetime":
            out[attribute.code] = "2026-11-17T09:00:00+08:00"
        else:
            out[attribute.code] = "x"
    return out


class Reports:
    """Reports of the sample city: random cells and categories, some duplicates, some incomplete."""

    def __init__(self, ref: ReferenceData, run: str) -> None:
        self.ref = ref
        self.run = run
        self.rng = random.Random(7)
        self.cells = list(ref.cells)
        self.categories = list(ref.categories)
        self.serial = 0
        self.recent: list[tuple[str, float, float]] = []

    def next(self, now: datetime) -> ReportSubmitted:
        self.serial += 1
        rng = self.rng
        if self.recent and rng.random() < 0.05:
            code, lat, long = rng.choice(self.recent)  # the same problem reported again nearby
            lat += rng.uniform(-0.00003, 0.00003)
        else:
            cell = rng.choice(self.cells)
            code = rng.choice(self.categories).code
            lat = rng.uniform(cell.min_lat, cell.max_lat)
            long = rng.uniform(cell.min_lon, cell.max_lon)
            self.recent = [*self.recent[-200:], (code, lat, long)]
        category = self.ref.category(code)
        assert category is not None
        photo = rng.random() > 0.02
        return ReportSubmitted.model_validate(
            {
                "report_id": f"B{self.run}{self.serial:08d}",
                "channel": rng.choice(["hotline_12345", "inspector", "citizen_app", "video"]),
                "external_id": f"bench-{self.run}-{self.serial}",
                "category_code": code,
                "description": f"{category.name_zh} / {category.name_en}",
                "location": {"lat": lat, "long": long},
                "attributes": _answers(category),
                "media_urls": [f"https://media.example.invalid/{self.serial}.jpg"] if photo else [],
                "reported_at": now,
                "reporter": {"name": "市民", "phone": f"139{rng.randrange(10**8):08d}"}
                if rng.random() < 0.5
                else None,
            }
        )


async def _produce(producer: AIOKafkaProducer, topic: str, data: ReportSubmitted) -> Any:
    envelope = make_event(data, source="bench", time=data.reported_at)
    return await producer.send(
        topic, encode(envelope), key=envelope.subject.encode(), headers=kafka_headers(envelope)
    )


def _per_second(count: int, seconds: float) -> float:
    # A backlog small enough to be decided between two looks (a smoke run) has no rate.
    return count / seconds if seconds > 0 else float("inf")


async def _watch_published(
    runtime: ServiceRuntime, topic: str, expected: int, seconds: float
) -> tuple[float, float, float]:
    """Wall-clock instants: first verdict published, all ``expected`` decided, all published.

    A verdict counts once its report is consumed and the relay has deleted
    its outbox row, which it does only after the broker acknowledged it.
    (The development broker's end offsets lag behind what it holds, so they
    cannot serve here.)
    """
    deadline = time.monotonic() + seconds
    first: float | None = None
    decided: float | None = None
    while time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        if runtime.pool is None:
            continue  # not started yet
        try:
            async with runtime.pool.acquire() as conn:
                consumed = await conn.fetchval("SELECT count(*) FROM inbox WHERE topic = $1", topic)
                backlog = await conn.fetchval("SELECT count(*) FROM outbox")
        except asyncpg.UndefinedTableError:
            continue  # migrations still running
        published = int(consumed) - int(backlog)
        now = time.time()
        if first is None and published > 0:
            first = now
        if decided is None and int(consumed) >= expected:
            decided = now
        if published >= expected and first is not None and decided is not None:
            return first, decided, now
    raise RuntimeError(f"intake did not publish {expected} verdicts in {seconds}s")


async def _verdicts(cfg: KafkaSettings, topic: str) -> list[tuple[int, Any]]:
    """(publish timestamp ms, event) of every record on ``cases``."""
    consumer = AIOKafkaConsumer(enable_auto_commit=False, **client_options(cfg))
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        end = await end_offsets(consumer, tps)
        await consumer.seek_to_beginning(*tps)
        out: list[tuple[int, Any]] = []
        while any([await consumer.position(tp) < end[tp] for tp in tps]):
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for records in batch.values():
                out += [(r.timestamp, decode(r.value)) for r in records]
        return out
    finally:
        await consumer.stop()


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def main() -> dict[str, object]:
    run = uuid.uuid4().hex[:6]
    prefix = f"bench{run}_"
    # The service's own defaults, from the environment devstack sets, without topic creation.
    kafka = Settings().kafka.model_copy(update={"create_topics": False})
    settings = Settings(
        database_url=os.environ["DATABASE_URL"],
        topic_prefix=prefix,
        db_schema=f"{prefix}intake",
        log_level="WARNING",
        kafka=kafka,
    )
    await ensure_topics(kafka, topic_partitions(prefix, PARTITIONS))
    ref = load_reference()
    reports = Reports(ref, run)
    producer = AIOKafkaProducer(
        acks="all", enable_idempotence=False, linger_ms=10, **client_options(kafka)
    )
    await producer.start()
    topic = prefix + "reports"
    try:
        started = time.perf_counter()
        futures = [
            await _produce(producer, topic, reports.next(datetime.now(UTC))) for _ in range(REPORTS)
        ]
        await asyncio.gather(*futures)
        produce_seconds = time.perf_counter() - started

        runtime = build(settings)
        start_wall = time.time()
        start_cpu = time.process_time()
        watch = asyncio.create_task(_watch_published(runtime, topic, REPORTS, 240))
        await runtime.start()
        try:
            # The heap as the service keeps it when it runs on its own (``ServiceRuntime.run``).
            with settled_heap():
                first_wall, decided_wall, drained_wall = await watch
                # The service runs in this process: its CPU time is what registering cost,
                # whatever else the machine was doing meanwhile.
                cpu_seconds = time.process_time() - start_cpu
                backlog = await _verdicts(kafka, prefix + "cases")

                # Steady load: reports stamped as they are produced, intake keeping up.
                steady_from = len(backlog)
                interval = 1.0 / STEADY_RATE
                futures = []
                sent_at: dict[str, float] = {}
                t0 = time.perf_counter()
                sent = 0
                while time.perf_counter() - t0 < STEADY_SECONDS:
                    due = int((time.perf_counter() - t0) / interval) + 1
                    while sent < due:
                        data = reports.next(datetime.now(UTC))
                        sent_at[data.report_id] = data.reported_at.timestamp()
                        futures.append(await _produce(producer, topic, data))
                        sent += 1
                    await asyncio.sleep(0.005)
                await asyncio.gather(*futures)
                await _watch_published(runtime, topic, REPORTS + sent, 120)
                everything = await _verdicts(kafka, prefix + "cases")
        finally:
            await runtime.stop()
    finally:
        await producer.stop()

    drain_seconds = drained_wall - first_wall
    kinds = Counter(env.type for _, env in backlog)
    steady = everything[steady_from:] if len(everything) > steady_from else []
    latencies = [
        ts / 1000 - sent_at[env.data.report_id]
        for ts, env in steady
        if env.data.report_id in sent_at
    ]
    rate = _per_second(len(backlog), drain_seconds)
    return {
        "reports": REPORTS,
        "produce_seconds": round(produce_seconds, 2),
        "verdicts": dict(kinds),
        "drain_seconds_first_to_last_verdict": round(drain_seconds, 2),
        "decided_per_second": round(_per_second(REPORTS, decided_wall - first_wall), 1),
        "registrations_per_second": round(rate, 1),
        "registrations_per_second_including_startup": round(
            REPORTS / (drained_wall - start_wall), 1
        ),
        "seconds_from_start_to_first_verdict": round(first_wall - start_wall, 2),
        "service_cpu_ms_per_report": round(1000 * cpu_seconds / REPORTS, 3),
        "reports_per_cpu_second": round(REPORTS / cpu_seconds, 1),
        "floor_per_second": FLOOR,
        "floor_met": rate >= FLOOR,
        "steady_rate_per_second": STEADY_RATE,
        "steady_reports": sent,
        "steady_verdicts_seen": len(steady),
        "latency_p50_ms": round(1000 * statistics.median(latencies), 1) if latencies else None,
        "latency_p99_ms": round(1000 * _percentile(latencies, 0.99), 1) if latencies else None,
        "latency_max_ms": round(1000 * max(latencies), 1) if latencies else None,
        "consumer_batch_max": kafka.max_batch,
        "partitions": PARTITIONS,
    }
