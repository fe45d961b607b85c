"""Dispatch benchmark: dispatches per second from a backlog, and registered → dispatched latency.

Runs ``python -m services.dispatch`` as its own process against the broker and
Postgres that devstack provides (KAFKA_BOOTSTRAP_SERVERS, DATABASE_URL), on a
topic prefix and schema of its own:

1. throughput: N ``case.registered`` of the sample city (every category,
   street and area class) are produced first; then the service starts and the
   clock runs until N ``case.dispatched`` are on ``assignments``. Reported from
   the process's start (Python start-up, migrations and the consumer group
   join included), and from its first dispatch to its last (the rate it
   dispatches at, which the floor is about);
2. latency: with the service caught up, cases are produced at a steady rate
   below its capacity, and each one's latency is the Kafka timestamp of its
   ``case.dispatched`` minus that of its ``case.registered`` (both stamped by
   producers on this machine).

Floor (issue): 3,000 dispatches per second.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from services.dispatch.domain.routing import route
from shared.devstack import free_port
from shared.events import CaseRegistered, encode, kafka_headers, make_event
from shared.kafka import client_options, ensure_topics
from shared.reference import ReferenceData, load_reference
from shared.settings import KafkaSettings
from shared.topics import topic_partitions

ROOT = Path(__file__).resolve().parents[1]
BACKLOG = int(os.environ.get("BENCH_DISPATCH_CASES", "30000"))
LATENCY_CASES = int(os.environ.get("BENCH_DISPATCH_LATENCY_CASES", "3000"))
LATENCY_RATE = float(os.environ.get("BENCH_DISPATCH_LATENCY_RATE", "1000"))  # cases per second
PARTITIONS = 12
FLOOR = 3000.0
SHANGHAI = ZoneInfo("Asia/Shanghai")


def cases(ref: ReferenceData, count: int, tag: str, seed: int) -> list[CaseRegistered]:
    rng = random.Random(seed)
    cells = list(ref.cells)
    out: list[CaseRegistered] = []
    n = 0
    while len(out) < count:
        category = ref.categories[n % len(ref.categories)]
        cell = rng.choice(cells)
        n += 1
        found = route(ref, category, cell.street, cell.area_class, fallback_area=cell.street)
        if found.lead is None:
            continue  # the rules leave it to a human dispatcher: escalated, not dispatched
        out.append(
            CaseRegistered(
                case_id=f"{tag}-{len(out):07d}",
                report_id=f"R{tag}-{len(out):07d}",
                channel="hotline_12345",
                external_id=f"bench-{tag}-{n}",
                category_code=category.code,
                kind=category.kind.value,
                major=category.major,
                minor=category.minor,
                grid_code=cell.code,
                community=cell.community,
                street=cell.street,
                district=cell.district,
                area=ref.street_office(cell.street).id,
                area_class=cell.area_class.value,
                urgency=category.urgency.value,
                tier=category.tier.value,
                reported_at=datetime(2026, 3, 10, 9, tzinfo=SHANGHAI),
                registered_at=datetime(2026, 3, 10, 9, tzinfo=SHANGHAI),
            )
        )
    return out


async def produce(
    cfg: KafkaSettings, topic: str, items: Sequence[CaseRegistered], rate: float | None = None
) -> dict[str, float]:
    """Produce ``items``; returns each case's Kafka timestamp (ms). ``rate`` paces them."""
    producer = AIOKafkaProducer(
        enable_idempotence=False, acks="all", linger_ms=5, **client_options(cfg)
    )
    await producer.start()
    stamps: dict[str, float] = {}
    try:
        began = time.monotonic()
        futures = []
        start = datetime(2026, 3, 10, 9, tzinfo=SHANGHAI)
        for n, data in enumerate(items):
            if rate is not None:
                due = began + n / rate
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            envelope = make_event(data, source="bench", time=start + timedelta(seconds=n))
            stamp = int(time.time() * 1000)
            stamps[data.case_id] = stamp
            futures.append(
                await producer.send(
                    topic,
                    encode(envelope),
                    key=data.case_id.encode(),
                    headers=kafka_headers(envelope),
                    timestamp_ms=stamp,
                )
            )
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return stamps


class AssignmentWatch:
    """Counts ``case.dispatched`` on ``assignments`` and keeps each one's Kafka timestamp."""

    def __init__(self, cfg: KafkaSettings, topic: str) -> None:
        self.cfg = cfg
        self.topic = topic
        self.dispatched: dict[str, float] = {}
        self.consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            enable_auto_commit=False, auto_offset_reset="earliest", **client_options(self.cfg)
        )
        await consumer.start()
        tps = [TopicPartition(self.topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        self.consumer = consumer

    async def until(self, count: int, seconds: float) -> None:
        assert self.consumer is not None
        deadline = time.monotonic() + seconds
        while len(self.dispatched) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {len(self.dispatched)} of {count} dispatched")
            batch = await self.consumer.getmany(timeout_ms=200, max_records=5000)
            for records in batch.values():
                for record in records:
                    headers = dict(record.headers or ())
                    if headers.get("ce_type") == b"case.dispatched" and record.key is not None:
                        self.dispatched.setdefault(record.key.decode(), float(record.timestamp))

    async def stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()


async def wait_ready(port: int, proc: asyncio.subprocess.Process) -> None:
    async with httpx.AsyncClient(timeout=2) as http:
        for _ in range(600):
            if proc.returncode is not None:
                raise RuntimeError(f"dispatch exited with {proc.returncode}")
            try:
                if (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError("dispatch never became ready")


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def main() -> dict[str, object]:
    bootstrap = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    cfg = KafkaSettings(bootstrap_servers=bootstrap)
    prefix = f"bench{uuid.uuid4().hex[:6]}_"
    await ensure_topics(cfg, topic_partitions(prefix, PARTITIONS))
    ref = load_reference()
    backlog = cases(ref, BACKLOG, "B", seed=1)
    began = time.monotonic()
    await produce(cfg, prefix + "cases", backlog)
    produce_seconds = time.monotonic() - began

    watch = AssignmentWatch(cfg, prefix + "assignments")
    await watch.start()
    port = free_port()
    env = {
        **os.environ,
        "TOPIC_PREFIX": prefix,
        "DB_SCHEMA": prefix.rstrip("_") + "_dispatch",
        "HTTP_PORT": str(port),
        "LOG_LEVEL": "WARNING",
    }
    started_wall = time.time()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.dispatch", cwd=ROOT, env=env
    )
    try:
        await wait_ready(port, proc)
        await watch.until(BACKLOG, seconds=150)
        stamps = sorted(watch.dispatched.values())
        first, last = stamps[0] / 1000, stamps[-1] / 1000
        from_start = BACKLOG / (last - started_wall)
        steady = (BACKLOG - 1) / (last - first) if last > first else float("inf")

        paced = cases(ref, LATENCY_CASES, "L", seed=2)
        registered_at = await produce(cfg, prefix + "cases", paced, rate=LATENCY_RATE)
        await watch.until(BACKLOG + LATENCY_CASES, seconds=60)
        latencies = [
            (watch.dispatched[case_id] - stamp) / 1000 for case_id, stamp in registered_at.items()
        ]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
        await watch.stop()

    return {
        "backlog_cases": BACKLOG,
        "partitions": PARTITIONS,
        "produce_seconds": round(produce_seconds, 2),
        "process_start_to_first_dispatch_seconds": round(first - started_wall, 2),
        "dispatches_per_s_from_process_start": round(from_start),
        "dispatches_per_s_after_first_dispatch": round(steady),
        "floor_per_s": FLOOR,
        "floor_met_after_first_dispatch": steady >= FLOOR,
        "latency_cases": LATENCY_CASES,
        "latency_rate_per_s": LATENCY_RATE,
        "latency_p50_ms": round(percentile(latencies, 0.50) * 1000, 1),
        "latency_p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
        "latency_max_ms": round(max(latencies) * 1000, 1),
    }
