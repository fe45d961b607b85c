"""Pipeline benchmark (issue 8): the four services end to end, against what the broker allows.

One run on the broker and Postgres devstack provides (KAFKA_BOOTSTRAP_SERVERS,
DATABASE_URL, KAFKA_IDEMPOTENCE), one topic prefix for the run and one schema
per service, the services' default settings and the real clock:

a. **the limit**: four passthrough hops ``hop0 -> hop1 -> hop2 -> hop3 -> hop4``,
   each its own process (``python -m bench.bench_pipeline hop SRC DST``):
   consume a batch, produce every record unchanged, commit the offsets once the
   broker acknowledged them (no logic, no database). Same clients as the
   services: aiokafka, ``make_producer`` (acks=all, idempotence from
   KAFKA_IDEMPOTENCE, the services' linger and batch size), batches of
   KAFKA_MAX_BATCH with the services' batch timeout and the forward path's fetch
   wait, offsets committed as the services commit them (``shared.offsets``), the
   same partition count. N encoded ``report.submitted`` CloudEvents (the very bytes
   the pipeline gets in (b)) go into hop0 as fast as the producer goes;
   limit = N / (last record's timestamp on hop4 - first send). Then the same
   fixed rate as (c) for a few seconds gives the chain's own latency.
b. **the pipeline**: ``python -m services.{intake,dispatch,supervision,scoring}``
   as four processes (as ``make run`` starts them). After a warm-up (group joins,
   connections), N reports (valid, distinct: each category's reports lie on a
   lattice wider than its duplicate radius, on cells whose rules route to a
   department) are produced as fast as the producer goes. A report is through
   when its case is registered (case.registered on ``cases``), dispatched
   (case.dispatched on ``assignments``), its timers armed (supervision's
   ``cases`` row has ``first_dispatched_at``: the dispatch and its timers commit
   in one transaction) and scored (scoring's ``case_facts`` row has
   ``first_dispatched_at``: the case is in its unit's cohort). The two topics
   are read as they fill; the two tables are counted every 0.25 s. Throughput =
   registered reports / (the instant the last one is through - first send).
c. **latency at a fixed load**: on topics of its own (the services restart on a
   new topic prefix and keep their schemas: the development broker's fetches cost
   more as its partitions fill, Apache Kafka's do not), RATE reports/s for
   SECONDS, each stamped with its Kafka timestamp as it is sent; the p99 report
   -> dispatched and the CPU are also given for each 10 s of the run in turn.
   report -> registered / dispatched = the Kafka timestamp of that case's
   case.registered / case.dispatched (set by the service's outbox relay as it
   sends) minus the report's. report -> armed /
   scored = when the row became visible in supervision's / scoring's table:
   every SAMPLE_EVERY-th case is polled by primary key (every 50 ms, slower
   when many are pending) from when its case.registered is read, and its commit
   is placed at the middle of the window between the last instant it had not
   happened (that event's timestamp, or the start of the last poll that missed
   it) and the end of the poll that saw it. A run is
   *sustained* when every report is through within 3 s of the last one sent
   (over 60 s: the pipeline kept up with at least ~95% of the rate). When RATE
   is beyond the pipeline, a sustainable rate is looked for, SUSTAINABLE_SECONDS
   each: 70% of (b)'s throughput, then 90% of what the last try got through (at
   most 80% of its rate), up to three tries; when (b) already shows RATE is beyond
   saturation, that search runs first (on the state (b) measured) and RATE last.
d. **CPU and memory**: every 0.5 s, psutil: CPU% (100 = one core) and RSS of
   each service process, the load generator (this process), the broker and
   the database's backends for this run's database; mean and max, per phase.
   For (b), also the rows Postgres wrote per report, by service and table
   (``pg_stat_user_tables``: inserted, updated, HOT updates, deleted).
e. **where the time goes**: every service is sampled by py-spy
   (``--nonblocking``, 100 Hz) through a second backlog like (b)'s; for each,
   the top functions by own time and by cumulative time, and own time by
   package; the summary details the one with the most CPU in (b). The
   collapsed stacks go to ``bench/results/pipeline_profile_<service>.txt``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import asyncpg
import httpx
import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from ops.simulator.model import load_behaviour
from ops.simulator.run import SAMPLE_BEHAVIOUR
from services.dispatch.domain.routing import route
from services.intake.domain.registration import case_id_for
from shared.db import create_pool
from shared.devstack import free_port
from shared.events import ReportSubmitted
from shared.events.envelope import encode, kafka_headers, make_event
from shared.events.reports import AttributeValue
from shared.geo import bounding_box, distance_m
from shared.kafka import client_options, delete_topics, ensure_topics, make_producer
from shared.offsets import OffsetCommits, last_offsets
from shared.reference import (
    AttributeType,
    Category,
    FilingAttribute,
    GridCell,
    ReferenceData,
    load_reference,
)
from shared.settings import KafkaSettings
from shared.topics import DEFAULT_PARTITIONS, topic_partitions

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
SERVICES = ("intake", "dispatch", "supervision", "scoring")
HOPS = 4
#: Postgres's idle backends hand in their last counts within 10 s (PGSTAT_IDLE_INTERVAL).
STATS_SETTLE_SECONDS = 11.0


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, str(default)))


PARTITIONS = _env_int("BENCH_PIPELINE_PARTITIONS", DEFAULT_PARTITIONS)
WARMUP = _env_int("BENCH_PIPELINE_WARMUP", 300)
LIMIT_MESSAGES = _env_int("BENCH_PIPELINE_LIMIT_MESSAGES", 30_000)
LIMIT_PASSES = max(1, _env_int("BENCH_PIPELINE_LIMIT_PASSES", 3))
BACKLOG = _env_int("BENCH_PIPELINE_REPORTS", 20_000)
PROFILE_REPORTS = _env_int("BENCH_PIPELINE_PROFILE_REPORTS", 8_000)
# 1: (a) and (b) only, for a quick look while working on the services; never for the record.
QUICK = _env_int("BENCH_PIPELINE_QUICK", 0) == 1
# 1: the warm-up and (c) at RATE only, for working on latency; never for the record.
PACED_ONLY = _env_int("BENCH_PIPELINE_PACED_ONLY", 0) == 1
RATE = _env_float("BENCH_PIPELINE_RATE", 1000.0)
SECONDS = _env_float("BENCH_PIPELINE_SECONDS", 60.0)
LIMIT_LATENCY_SECONDS = _env_float("BENCH_PIPELINE_LIMIT_LATENCY_SECONDS", 10.0)
SUSTAINABLE_RATE = _env_float("BENCH_PIPELINE_SUSTAINABLE_RATE", 0.0)  # 0: 70% of (b)
SUSTAINABLE_SECONDS = _env_float("BENCH_PIPELINE_SUSTAINABLE_SECONDS", 30.0)
DRAIN_SECONDS = _env_float("BENCH_PIPELINE_DRAIN_SECONDS", 75.0)  # cap after a paced run
SAMPLE_EVERY = _env_int("BENCH_PIPELINE_SAMPLE_EVERY", 4)  # cases polled for armed/scored
SUSTAINABLE_ATTEMPTS = 3
WINDOW_SECONDS = 10.0  # (c)'s p99 report -> dispatched, by when the reports were sent
SUSTAINED_DRAIN_SECONDS = 3.0
SAMPLE_SECONDS = 0.5
COUNT_SECONDS = 0.25
FLOOR_RATIO = 0.25
AIM_RATIO = 0.50
FLOOR_P99_DISPATCHED_MS = 100.0


# -- reports ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """One encoded report.submitted as it goes on the wire, and the case intake will make of it."""

    report_id: str
    case_id: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


class _Lattice:
    """One category's report sites: lattice points inside the city, further apart than its
    duplicate radius, on cells whose routing rules name a lead department. Visited in a
    scattered order (a stride coprime with the lattice size), so the sites spread out."""

    def __init__(self, ref: ReferenceData, category: Category, seed: int) -> None:
        self.ref = ref
        self.category = category
        lats = [c.min_lat for c in ref.cells] + [c.max_lat for c in ref.cells]
        lons = [c.min_lon for c in ref.cells] + [c.max_lon for c in ref.cells]
        self.min_lat, self.min_lon = min(lats), min(lons)
        self.spacing = max(category.duplicates.radius_m, 5.0) + 3.0
        mid_lat = (min(lats) + max(lats)) / 2
        lo_lat, lo_lon, hi_lat, hi_lon = bounding_box(mid_lat, min(lons), self.spacing)
        self.dlat, self.dlon = (hi_lat - lo_lat) / 2, (hi_lon - lo_lon) / 2
        self.nx = int((max(lons) - self.min_lon) / self.dlon)
        self.ny = int((max(lats) - self.min_lat) / self.dlat)
        self.size = self.nx * self.ny
        stride = 7919
        while math.gcd(stride, self.size) != 1:
            stride += 2
        self.stride = stride
        self.start = random.Random(seed).randrange(self.size)
        self.visited = 0
        self.routable: dict[tuple[str, str], bool] = {}

    def point(self, j: int) -> tuple[float, float]:
        ix, iy = j % self.nx, j // self.nx
        return self.min_lat + (iy + 0.5) * self.dlat, self.min_lon + (ix + 0.5) * self.dlon

    def next(self) -> tuple[float, float, GridCell] | None:
        while self.visited < self.size:
            j = (self.start + self.visited * self.stride) % self.size
            self.visited += 1
            lat, lon = self.point(j)
            cell = self.ref.cell_at(lat, lon)
            if cell is None:
                continue
            rule = (cell.street, str(cell.area_class))
            if rule not in self.routable:
                found = route(
                    self.ref, self.category, cell.street, cell.area_class, fallback_area=cell.street
                )
                self.routable[rule] = found.lead is not None
            if self.routable[rule]:
                return lat, lon, cell
        return None


def _answer(rng: random.Random, attribute: FilingAttribute) -> AttributeValue:
    if attribute.values:
        return rng.choice(attribute.values).key
    if attribute.datatype is AttributeType.NUMBER:
        return 10
    if attribute.datatype is AttributeType.DATETIME:
        return datetime.now(UTC).isoformat()
    return "x"


class ReportSource:
    """Valid, distinct reports of the sample city, with the simulator's channel mix: every one
    is registered (never merged, never rejected) and dispatched (never escalated)."""

    def __init__(self, ref: ReferenceData, run: str, seed: int = 11) -> None:
        self.ref = ref
        self.run = run
        self.rng = random.Random(seed)
        self.lattices = [_Lattice(ref, c, seed + n) for n, c in enumerate(ref.categories)]
        self.turn = itertools.cycle(range(len(self.lattices)))
        self.exhausted: set[str] = set()
        self.serial = 0
        mix = load_behaviour(SAMPLE_BEHAVIOUR).channel_mix
        self.channels, self.weights = list(mix), list(mix.values())

    def _site(self) -> tuple[Category, float, float]:
        for _ in range(len(self.lattices) + 1):
            lattice = self.lattices[next(self.turn)]
            if lattice.category.code in self.exhausted:
                continue
            site = lattice.next()
            if site is None:
                self.exhausted.add(lattice.category.code)
                continue
            return lattice.category, site[0], site[1]
        raise RuntimeError("every category's lattice is used up")

    def report(self) -> ReportSubmitted:
        category, lat, lon = self._site()
        self.serial += 1
        rng = self.rng
        channel = rng.choices(self.channels, self.weights)[0]
        required = {str(f.value) for f in category.filing.required_fields}
        report_id = f"P{self.run}{self.serial:07d}"
        contact = (
            channel.startswith("hotline") or channel == "wechat_photo" or "contact" in required
        )
        return ReportSubmitted.model_validate(
            {
                "report_id": report_id,
                "channel": channel,
                "external_id": f"{channel}-{self.run}-{self.serial}",
                "category_code": category.code,
                "description": f"{category.name_zh} / {category.name_en}",
                "location": {
                    "lat": round(lat, 7),
                    "long": round(lon, 7),
                    **({"address": f"{self.serial}号"} if "address" in required else {}),
                },
                "component_id": (
                    f"{self.ref.district.code}{category.major}{category.minor}{self.serial % 10**6:06d}"
                    if "asset_id" in required
                    else None
                ),
                "attributes": {
                    a.code: _answer(rng, a) for a in category.filing.attributes if a.required
                },
                "media_urls": [f"https://media.example.invalid/{report_id}.jpg"]
                if "photo" in required or channel != "hotline_12345"
                else [],
                "reported_at": datetime.now(UTC),
                "inspector_id": "inspector-07" if channel == "inspector" else None,
                "reporter": {"name": "市民", "phone": f"139{rng.randrange(10**8):08d}"}
                if contact
                else None,
            }
        )

    def take(self, count: int) -> list[Message]:
        out = []
        for _ in range(count):
            data = self.report()
            envelope = make_event(data, source="bench", time=data.reported_at)
            out.append(
                Message(
                    report_id=data.report_id,
                    case_id=case_id_for(data.channel, data.external_id, data.reported_at),
                    key=envelope.subject.encode(),
                    value=encode(envelope),
                    headers=kafka_headers(envelope),
                )
            )
        return out


def check_spacing(source: ReportSource) -> float:
    """The smallest distance, relative to the radius, between two sites of one category."""
    worst = math.inf
    for lattice in source.lattices:
        radius = lattice.category.duplicates.radius_m
        if radius <= 0:
            continue
        a, b = lattice.point(0), lattice.point(1)
        c = lattice.point(lattice.nx)
        worst = min(worst, distance_m(*a, *b) / radius, distance_m(*a, *c) / radius)
    return worst


# -- Kafka helpers ---------------------------------------------------------------------


def _header(record: ConsumerRecord[bytes, bytes], name: str) -> bytes | None:
    for key, value in record.headers or ():
        if key == name:
            return bytes(value)
    return None


_REPORT_ID = b'"report_id":"'


def _report_id(value: bytes | None) -> str | None:
    if value is None:
        return None
    at = value.find(_REPORT_ID)
    if at < 0:
        return None
    start = at + len(_REPORT_ID)
    return value[start : value.index(b'"', start)].decode()


async def _assign_all(consumer: AIOKafkaConsumer, topics: Sequence[str]) -> None:
    tps: list[TopicPartition] = []
    for topic in topics:
        partitions = consumer.partitions_for_topic(topic)
        for _ in range(100):
            if partitions:
                break
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic)
            await asyncio.sleep(0.1)
        if not partitions:
            raise RuntimeError(f"topic {topic} has no partitions")
        tps += [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)


class Reader:
    """Reads topics from their beginning in the background and hands every record on."""

    def __init__(
        self,
        cfg: KafkaSettings,
        topics: Sequence[str],
        on_record: Callable[[ConsumerRecord[bytes, bytes]], None],
    ) -> None:
        self.cfg, self.topics, self.on_record = cfg, topics, on_record
        self.consumer: AIOKafkaConsumer | None = None
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.consumer = AIOKafkaConsumer(
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # The follower's wait: its records carry their own Kafka timestamps, so it only
            # needs to keep up, and a tighter poll is broker CPU taken from what it measures.
            fetch_max_wait_ms=self.cfg.follower_fetch_max_wait_ms,
            **client_options(self.cfg),
        )
        await self.consumer.start()
        await _assign_all(self.consumer, self.topics)
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        assert self.consumer is not None
        while True:
            batches = await self.consumer.getmany(timeout_ms=100, max_records=10_000)
            for records in batches.values():
                for record in records:
                    self.on_record(record)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        if self.consumer is not None:
            await self.consumer.stop()
        self.task = self.consumer = None  # stopped once, whoever asks again


@dataclass
class Flow:
    """What the pipeline's topics showed: verdicts by report, registrations and dispatches by case
    (Kafka timestamps in seconds)."""

    verdict: dict[str, str] = field(default_factory=dict)
    registered: dict[str, float] = field(default_factory=dict)
    dispatched: dict[str, float] = field(default_factory=dict)
    escalated: set[str] = field(default_factory=set)

    def on_record(self, record: ConsumerRecord[bytes, bytes]) -> None:
        kind = _header(record, "ce_type")
        if kind is None:
            return
        ts = record.timestamp / 1000
        if kind in (b"case.registered", b"case.merged", b"report.rejected"):
            report_id = _report_id(record.value)
            if report_id is not None:
                self.verdict.setdefault(report_id, kind.decode())
            if kind == b"case.registered" and record.key is not None:
                self.registered.setdefault(record.key.decode(), ts)
        elif kind == b"case.dispatched" and record.key is not None:
            self.dispatched.setdefault(record.key.decode(), ts)
        elif kind == b"case.escalated" and record.key is not None:
            self.escalated.add(record.key.decode())


@dataclass
class Arrivals:
    """Records on the chain's last topic: Kafka timestamp (s) by key."""

    at: dict[str, float] = field(default_factory=dict)

    def on_record(self, record: ConsumerRecord[bytes, bytes]) -> None:
        if record.key is not None:
            self.at.setdefault(record.key.decode(), record.timestamp / 1000)


async def produce(
    producer: AIOKafkaProducer,
    topic: str,
    messages: Sequence[Message],
    sent: dict[str, float],
    rate: float | None = None,
    on_send: Callable[[Message, float], None] | None = None,
) -> tuple[float, float]:
    """Send ``messages`` (at ``rate`` a second, else as fast as the producer takes them),
    each with its Kafka timestamp recorded in ``sent``; returns (first send, all acknowledged)."""
    futures = []
    began = time.time()
    n = 0
    while n < len(messages):
        due = (
            len(messages)
            if rate is None
            else min(len(messages), int((time.time() - began) * rate) + 1)
        )
        while n < due:
            message = messages[n]
            stamp_ms = int(time.time() * 1000)
            futures.append(
                await producer.send(
                    topic,
                    message.value,
                    key=message.key,
                    headers=message.headers,
                    timestamp_ms=stamp_ms,
                )
            )
            sent[message.report_id] = stamp_ms / 1000
            if on_send is not None:
                on_send(message, stamp_ms / 1000)
            n += 1
        if rate is not None:
            await asyncio.sleep(0.002)
    await asyncio.gather(*futures)
    return began, time.time()


# -- processes ---------------------------------------------------------------------------


class Processes:
    """Child processes of this benchmark: started here, stopped here (SIGTERM, then kill)."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.optional: set[str] = set()  # may exit without failing the run (the profiler)

    def spawn(
        self, name: str, argv: list[str], env: dict[str, str], optional: bool = False
    ) -> subprocess.Popen[bytes]:
        if optional:
            self.optional.add(name)
        log = open(self.logs / f"{name}.log", "ab")
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.procs[name] = proc
        return proc

    def check(self) -> None:
        for name, proc in self.procs.items():
            if name not in self.optional and proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}; {self.tail(name)}")

    def tail(self, name: str, lines: int = 15) -> str:
        path = self.logs / f"{name}.log"
        text = path.read_text(errors="replace").splitlines()[-lines:] if path.exists() else []
        return f"last lines of {path}:\n" + "\n".join(text)

    def stop(self, names: Iterable[str] | None = None, sig: int = signal.SIGTERM) -> dict[str, int]:
        chosen = list(self.procs) if names is None else list(names)
        for name in chosen:
            proc = self.procs[name]
            if proc.poll() is None:
                proc.send_signal(sig)
        codes = {}
        for name in chosen:
            proc = self.procs.pop(name)
            try:
                codes[name] = proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                codes[name] = proc.wait()
        return codes


async def wait_ready(procs: Processes, ports: dict[str, int], seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(timeout=1) as http:
        for name, port in ports.items():
            while True:
                procs.check()
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} not ready after {seconds:.0f}s; {procs.tail(name)}")
                await asyncio.sleep(0.1)


# -- CPU and memory ----------------------------------------------------------------------


def _broker_pid(bootstrap: str) -> int | None:
    port = int(bootstrap.split(",")[0].rsplit(":", 1)[1])
    with contextlib.suppress(psutil.Error):
        for conn in psutil.net_connections("tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                return int(conn.pid)
    return None


class Sampler:
    """CPU% (100 = one core) and RSS of named processes every ``every`` seconds; the
    database's backends serving ``database`` are summed (CPU only: their RSS is shared memory)."""

    def __init__(
        self,
        pids: dict[str, int],
        database: str | None,
        every: float = SAMPLE_SECONDS,
        pool: asyncpg.Pool | None = None,
        schemas: dict[str, str] | None = None,
    ):
        self.procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.database = database
        # With a pool and the services' schemas, the backends' CPU is also split by service.
        self.pool = pool
        self.owners = {schema: name for name, schema in (schemas or {}).items()}
        self.backend_owner: dict[int, str] = {}
        self.every = every
        self.cpu: dict[str, list[float]] = {}
        self.rss: dict[str, list[float]] = {}
        self.backends: dict[int, psutil.Process] = {}
        self.task: asyncio.Task[None] | None = None
        self.started = False  # the first readings are taken: CPU is measured from there
        self.times: list[float] = []  # when each sample was taken (wall clock)

    async def _find_backends(self) -> None:
        if not self.database:
            return
        for proc in psutil.process_iter(["name", "cmdline"]):
            if proc.pid in self.backends:
                continue
            cmdline = " ".join(proc.info.get("cmdline") or ())
            if (proc.info.get("name") or "").startswith(
                "postgres"
            ) and f" {self.database} " in cmdline:
                with contextlib.suppress(psutil.Error):
                    proc.cpu_percent(None)
                    self.backends[proc.pid] = proc
        if self.pool is not None:
            # Each service's pool names its connections after its schema: whose backend is whose.
            rows = await self.pool.fetch(
                "SELECT pid, application_name FROM pg_stat_activity WHERE datname = $1",
                self.database,
            )
            for row in rows:
                owner = self.owners.get(row["application_name"])
                if owner is not None:
                    self.backend_owner[row["pid"]] = owner

    async def _run(self) -> None:
        for proc in self.procs.values():
            with contextlib.suppress(psutil.Error):
                proc.cpu_percent(None)
        psutil.cpu_percent(None)
        self.started = True
        await self._find_backends()
        ticks = 0
        while True:
            await asyncio.sleep(self.every)
            self._sample()
            ticks += 1
            if ticks % 4 == 0:
                await self._find_backends()

    def _sample(self) -> None:
        """Each process's CPU since the last sample (or the start), and its RSS now."""
        for name, proc in self.procs.items():
            with contextlib.suppress(psutil.Error):
                cpu = proc.cpu_percent(None)
                rss = proc.memory_info().rss / 2**20
                self.cpu.setdefault(name, []).append(cpu)
                self.rss.setdefault(name, []).append(rss)
        total = 0.0
        by_owner = dict.fromkeys(self.owners.values(), 0.0)
        for pid, proc in list(self.backends.items()):
            try:
                cpu = proc.cpu_percent(None)
            except psutil.Error:
                del self.backends[pid]
                continue
            total += cpu
            owner = self.backend_owner.get(pid)
            if owner is not None:
                by_owner[owner] += cpu
        if self.database:
            self.cpu.setdefault("postgres (this run's backends)", []).append(total)
            for owner, cpu in by_owner.items():
                self.cpu.setdefault(f"postgres for {owner}", []).append(cpu)
        self.cpu.setdefault("machine (100 = all cores)", []).append(psutil.cpu_percent(None))
        self.times.append(time.time())

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    async def stop(self) -> dict[str, dict[str, float]]:
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        if self.started and not self.cpu:
            # Over before the first sample (a small run): one sample covers all of it.
            self._sample()
        out: dict[str, dict[str, float]] = {}
        for name, values in self.cpu.items():
            if not values:
                continue
            figures = {
                "cpu_mean": round(sum(values) / len(values), 1),
                "cpu_max": round(max(values), 1),
            }
            rss = self.rss.get(name)
            if rss:
                figures |= {
                    "rss_mean_mb": round(sum(rss) / len(rss), 1),
                    "rss_max_mb": round(max(rss), 1),
                }
            out[name] = figures
        out["_samples"] = {
            "count": float(min((len(v) for v in self.cpu.values()), default=0)),
            "every_s": self.every,
        }
        return out


# -- the database's view -------------------------------------------------------------------


class Tables:
    """Counts and polls of supervision's and scoring's tables: the case is armed / scored
    once its row there has ``first_dispatched_at``."""

    def __init__(self, pool: asyncpg.Pool, schemas: dict[str, str]) -> None:
        self.pool = pool
        self.schemas = schemas
        self.sql_count = {
            "armed": f'SELECT count(*) FROM "{schemas["supervision"]}".cases '  # noqa: S608
            "WHERE first_dispatched_at IS NOT NULL",
            "scored": f'SELECT count(*) FROM "{schemas["scoring"]}".case_facts '  # noqa: S608
            "WHERE first_dispatched_at IS NOT NULL",
        }
        self.sql_poll = {
            "armed": f'SELECT case_id FROM "{schemas["supervision"]}".cases '  # noqa: S608
            "WHERE case_id = ANY($1::text[]) AND first_dispatched_at IS NOT NULL",
            "scored": f'SELECT case_id FROM "{schemas["scoring"]}".case_facts '  # noqa: S608
            "WHERE case_id = ANY($1::text[]) AND first_dispatched_at IS NOT NULL",
        }
        self.timers_sql = f'SELECT count(*) FROM "{schemas["supervision"]}".timers'  # noqa: S608

    async def counts(self) -> dict[str, int]:
        async with self.pool.acquire() as conn:
            return {stage: int(await conn.fetchval(sql)) for stage, sql in self.sql_count.items()}

    async def timers(self) -> int:
        async with self.pool.acquire() as conn:
            return int(await conn.fetchval(self.timers_sql))

    async def row_writes(self) -> dict[str, dict[str, list[int]]]:
        """Rows each service's tables had inserted, updated (HOT among them) and deleted so
        far, from Postgres's statistics: service -> table -> [inserted, updated, hot, deleted]."""
        owner = {schema: name for name, schema in self.schemas.items()}
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(_ROW_WRITES, list(owner))
        out: dict[str, dict[str, list[int]]] = {}
        for row in rows:
            out.setdefault(owner[row["schemaname"]], {})[row["relname"]] = [
                row["n_tup_ins"],
                row["n_tup_upd"],
                row["n_tup_hot_upd"],
                row["n_tup_del"],
            ]
        return out

    async def settled_row_writes(self, seconds: float = 45.0) -> dict[str, dict[str, list[int]]]:
        """:meth:`row_writes` once they have not changed for STATS_SETTLE_SECONDS.

        A backend hands its counts to the statistics at most once a second; counts left
        over by its last transactions wait until it has been idle for up to 10 s
        (PGSTAT_IDLE_INTERVAL), so a reading taken as a stage ends misses its last
        batches. ``seconds`` bounds the wait when something keeps writing.
        """
        deadline = time.monotonic() + seconds
        last = await self.row_writes()
        since = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - since < STATS_SETTLE_SECONDS:
            await asyncio.sleep(1.0)
            now = await self.row_writes()
            if now != last:
                last, since = now, time.monotonic()
        return last


_ROW_WRITES = (
    "SELECT schemaname, relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del "
    "FROM pg_stat_user_tables WHERE schemaname = ANY($1::text[])"
)


def writes_per_report(
    before: dict[str, dict[str, list[int]]], after: dict[str, dict[str, list[int]]], reports: int
) -> dict[str, dict[str, Any]]:
    """What Postgres wrote for a report, by service and table, between two :meth:`row_writes`.

    Each service's ``total`` counts the rows inserted, updated and deleted: an update
    writes a new row version (HOT: without new index entries, on the same page).
    """
    out: dict[str, dict[str, Any]] = {}
    for service, tables in after.items():
        per_table: dict[str, dict[str, float]] = {}
        for table, counts in tables.items():
            was = before.get(service, {}).get(table, [0, 0, 0, 0])
            ins, upd, hot, gone = (
                round((now - then) / reports, 2) for now, then in zip(counts, was, strict=True)
            )
            if ins or upd or gone:
                per_table[table] = {"inserted": ins, "updated": upd, "hot": hot, "deleted": gone}
        total = sum(t["inserted"] + t["updated"] + t["deleted"] for t in per_table.values())
        out[service] = {"total": round(total, 2), "tables": per_table}
    return out


class CommitPoller:
    """When each watched case's row became visible in one table: polled by primary key; the
    commit is placed mid-way between the last instant it is known not to have happened and
    the end of the poll that found it.

    A case joins the poll once its case.registered has been read (``registered``, by case:
    its Kafka timestamp): neither row can commit before its dispatch, which follows the
    registration, so that timestamp is the first such instant, and each poll that misses the
    case moves it to that poll's start. Polling every watched case from its report's send
    made the poll grow with intake's backlog when the pipeline fell behind (up to 20,000 key
    lookups a second a poller), load on the database the pipeline shares.
    """

    def __init__(self, tables: Tables, stage: str, registered: dict[str, float]) -> None:
        self.tables, self.stage, self.registered = tables, stage, registered
        self.waiting: set[str] = set()  # watched, registration not read yet
        self.pending: dict[str, float] = {}  # case id -> the instant its commit is known after
        self.seen: dict[str, float] = {}
        self.windows: list[float] = []
        self.lookups = 0
        self.task: asyncio.Task[None] | None = None

    def watch(self, case_id: str) -> None:
        self.waiting.add(case_id)

    def _admit(self) -> None:
        ready = [case_id for case_id in self.waiting if case_id in self.registered]
        for case_id in ready:
            self.waiting.discard(case_id)
            self.pending[case_id] = self.registered[case_id]

    async def _run(self) -> None:
        sql = self.tables.sql_poll[self.stage]
        while True:
            self._admit()
            ids = list(self.pending)
            if ids:
                began = time.time()
                async with self.tables.pool.acquire() as conn:
                    rows = await conn.fetch(sql, ids)
                ended = time.time()
                self.lookups += len(ids)
                for row in rows:
                    since = self.pending.pop(row["case_id"])
                    self.seen[row["case_id"]] = (since + ended) / 2
                    self.windows.append(ended - since)
                for case_id, since in self.pending.items():  # missed: committed after `began`
                    self.pending[case_id] = max(since, began)
            # 50 ms, stretched when many are pending (about 20,000 key lookups a second at most).
            await asyncio.sleep(min(1.0, max(0.05, len(ids) / 20_000)))

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


# -- figures -----------------------------------------------------------------------------


def _round_down(rate: float, step: float = 50.0) -> float:
    return max(step, step * math.floor(rate / step))


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def distribution_ms(values: Sequence[float], censored: int = 0) -> dict[str, Any]:
    """p50/p95/p99/max in ms; ``censored`` cases never got there (they count as +inf)."""
    if not values and not censored:
        return {"n": 0}
    everything = list(values) + [math.inf] * censored
    out: dict[str, Any] = {"n": len(values)}
    for name, q in (("p50", 0.50), ("p95", 0.95), ("p99", 0.99)):
        v = percentile(everything, q)
        out[f"{name}_ms"] = None if math.isinf(v) else round(v * 1000, 1)
    out["max_ms"] = None if censored else round(max(values) * 1000, 1)
    if censored:
        out["not_through"] = censored
    return out


def rate_between(times: Sequence[float], lo: float = 0.1, hi: float = 0.9) -> float | None:
    """Items per second between the lo and hi quantiles of their completion instants."""
    ordered = sorted(times)
    if len(ordered) < 10:
        return None
    a, b = ordered[int(lo * len(ordered))], ordered[int(hi * len(ordered)) - 1]
    return (int(hi * len(ordered)) - int(lo * len(ordered))) / (b - a) if b > a else None


@dataclass
class CountSeries:
    """(instant, armed, scored) from periodic counts; instants when a count reached a level."""

    points: list[tuple[float, int, int]] = field(default_factory=list)

    def reached(self, column: int, level: int) -> float | None:
        """Mid-point between the last count below ``level`` and the first at or above it."""
        previous: float | None = None
        for point in self.points:
            if point[column] >= level:
                return point[0] if previous is None else (previous + point[0]) / 2
            previous = point[0]
        return None


async def count_until(
    tables: Tables,
    base: dict[str, int],
    target: int,
    done_elsewhere: Callable[[], bool],
    seconds: float,
    every: float = COUNT_SECONDS,
    procs: Processes | None = None,
) -> tuple[CountSeries, bool]:
    """Counts armed and scored cases until both are ``target`` past ``base`` and
    ``done_elsewhere()``; returns the series and whether it got there in time."""
    series = CountSeries()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        began = time.time()
        counts = await tables.counts()
        armed, scored = counts["armed"] - base["armed"], counts["scored"] - base["scored"]
        series.points.append((began, armed, scored))
        if armed >= target and scored >= target and done_elsewhere():
            return series, True
        if procs is not None:
            procs.check()
        await asyncio.sleep(every)
    return series, False


# -- profile -----------------------------------------------------------------------------


_PROJECT = ("shared", "services", "ops", "bench")


def _frame_file(frame: str) -> str:
    """``pydantic/main.py`` of py-spy's ``BaseModel.model_dump_json (pydantic/main.py:538)``."""
    inside = frame[frame.rfind(" (") + 2 : -1] if frame.endswith(")") else ""
    return inside.rsplit(":", 1)[0]


def _package(path: str) -> str:
    """What a frame's file belongs to: ``stdlib:asyncio``, ``pydantic``, ``shared/outbox.py``..."""
    parts = path.split("/")
    top = parts[0].removesuffix(".py")
    if top in _PROJECT:
        return "/".join(parts[:3] if top == "services" else parts[:2])
    if top in sys.stdlib_module_names:
        return f"stdlib:{top}"
    return top or "?"


def summarise_profile(text: str, top: int = 10) -> dict[str, Any]:
    """From py-spy's collapsed stacks: the top functions by own time (leaf frames), the
    project's own functions (shared/, services/) by cumulative time (on the stack at all,
    once per stack: the framework wrappers above them would fill any list otherwise), and
    own time by package; each as a share of the samples."""
    own: Counter[str] = Counter()
    cumulative: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        own[frames[-1]] += n
        packages[_package(_frame_file(frames[-1]))] += n
        for frame in set(frames):
            if _frame_file(frame).split("/")[0] in ("shared", "services") and not frame.startswith(
                "<module>"
            ):
                cumulative[frame] += n
    if total == 0:
        return {"samples": 0}

    def share(counter: Counter[str]) -> list[list[Any]]:
        return [[k, round(100 * v / total, 1)] for k, v in counter.most_common(top)]

    return {
        "samples": total,
        "top_own_percent": share(own),
        "top_cumulative_project_percent": share(cumulative),
        "own_by_package_percent": share(packages),
    }


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


# -- the passthrough hop (a child process) ---------------------------------------------------


async def _ack_after(
    consumer: AIOKafkaConsumer,
    futures: list[asyncio.Future[Any]],
    lasts: list[ConsumerRecord[bytes, bytes]],
    previous: asyncio.Task[None] | None,
    commits: OffsetCommits,
) -> None:
    await asyncio.gather(*futures)
    if previous is not None:
        await previous
    # Committed as the services commit: explicit offsets, at most every commit interval.
    await commits.handled(consumer, last_offsets(lasts))


async def hop(source: str, target: str) -> None:
    """Consume ``source`` in batches and produce every record to ``target`` unchanged; commit a
    batch's offsets once the broker acknowledged its records (at-least-once, like the services)."""
    cfg = KafkaSettings()
    consumer = AIOKafkaConsumer(
        source,
        group_id=f"{source}-passthrough",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=cfg.fetch_max_wait_ms,
        session_timeout_ms=cfg.session_timeout_ms,
        heartbeat_interval_ms=cfg.heartbeat_interval_ms,
        **client_options(cfg),
    )
    producer = make_producer(cfg, client_id=f"passthrough-{target}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await consumer.start()
    await producer.start()
    previous: asyncio.Task[None] | None = None
    commits = OffsetCommits(cfg.commit_interval_ms / 1000)
    try:
        while not stop.is_set():
            batch = await consumer.getmany(
                timeout_ms=cfg.batch_timeout_ms, max_records=cfg.max_batch
            )
            if not batch:
                continue
            futures = []
            for records in batch.values():
                for r in records:
                    futures.append(
                        await producer.send(target, r.value, key=r.key, headers=list(r.headers))
                    )
            lasts = [records[-1] for records in batch.values()]
            previous = asyncio.create_task(_ack_after(consumer, futures, lasts, previous, commits))
        if previous is not None:
            await previous
        await commits.close()
    finally:
        await producer.stop()
        await consumer.stop()


# -- the run -------------------------------------------------------------------------------


@dataclass
class Run:
    cfg: KafkaSettings
    database_url: str
    prefix: str
    logs: Path
    procs: Processes
    results: dict[str, Any] = field(default_factory=dict)
    sent: dict[str, float] = field(default_factory=dict)

    def child_env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLOCK_")}
        return {**env, "LOG_LEVEL": "WARNING", "CLOCK_SCALE": "1", **extra}


async def limit_phase(
    run: Run,
    producer: AIOKafkaProducer,
    warm: list[Message],
    backlog: list[Message],
    paced: list[Message],
) -> dict[str, Any]:
    """(a) four passthrough hops, ``LIMIT_PASSES`` times on fresh topics: the median rate.

    One pass of the backlog lasts two seconds or less on a fast phase of the VM, and its
    rate moved by a third between runs forty minutes apart while the pipeline's moved by
    3 %: the median of back-to-back passes is the steadier limit. Fresh topics each time,
    because the development broker's fetches cost more as a partition fills. The latency
    at ``RATE`` is measured once, after the last pass.
    """
    passes = []
    for n in range(LIMIT_PASSES):
        last = n == LIMIT_PASSES - 1
        passes.append(
            await _limit_pass(
                run, producer, f"{run.prefix}a{n}_", warm, backlog, paced if last else []
            )
        )
    ranked = sorted(passes, key=lambda p: p["per_s"])
    median = ranked[len(ranked) // 2]
    return {
        "limit_hops": HOPS,
        "limit_messages": len(backlog),
        "limit_passes": len(passes),
        "limit_msgs_per_s_passes": [round(p["per_s"]) for p in passes],
        "limit_produce_seconds": median["produce_seconds"],
        "limit_seconds": median["seconds"],
        "limit_msgs_per_s": round(median["per_s"]),
        "limit_msgs_per_s_10_to_90": round(median["steady"]) if median["steady"] else None,
        "limit_latency_rate_per_s": RATE,
        "limit_latency_messages": len(paced),
        "limit_latency_hop0_to_hop4": passes[-1]["latency"],
        "limit_resources": median["resources"],
    }


async def _limit_pass(
    run: Run,
    producer: AIOKafkaProducer,
    prefix: str,
    warm: list[Message],
    backlog: list[Message],
    paced: list[Message],
) -> dict[str, Any]:
    """One pass of (a) on the topics ``<prefix>hop0`` .. ``hop4``: its rate and resources."""
    topics = [f"{prefix}hop{i}" for i in range(HOPS + 1)]
    await ensure_topics(run.cfg, {t: PARTITIONS for t in topics})
    arrivals = Arrivals()
    reader = Reader(run.cfg, [topics[-1]], arrivals.on_record)
    await reader.start()
    names = []
    for i in range(HOPS):
        name = f"hop{i}"
        run.procs.spawn(
            name,
            [sys.executable, "-m", "bench.bench_pipeline", "hop", topics[i], topics[i + 1]],
            run.child_env(),
        )
        names.append(name)
    try:
        sent: dict[str, float] = {}
        await produce(producer, topics[0], warm, sent)
        await _until(
            lambda: len(arrivals.at) >= len(warm), 90, "the warm-up through the hops", run.procs
        )
        pids = {n: run.procs.procs[n].pid for n in names} | _other_pids(run)
        sampler = Sampler(pids, None, every=0.25)
        sampler.start()
        first, acked = await produce(producer, topics[0], backlog, sent)
        keys = [m.report_id for m in backlog]
        await _until(
            lambda: all(k in arrivals.at for k in keys),
            120,
            "the backlog through the hops",
            run.procs,
        )
        resources = await sampler.stop()
        times = [arrivals.at[k] for k in keys]
        last = max(times)
        latency: dict[str, Any] = {}
        if paced:
            await produce(producer, topics[0], paced, sent, rate=RATE)
            pkeys = [m.report_id for m in paced]
            await _until(
                lambda: all(k in arrivals.at for k in pkeys),
                60,
                "the paced run through the hops",
                run.procs,
            )
            latency = distribution_ms([arrivals.at[k] - sent[k] for k in pkeys])
    finally:
        run.procs.stop(names)
        await reader.stop()
        # The broker keeps every record in memory and later phases would pay for them.
        await delete_topics(run.cfg, topics)
    return {
        "per_s": len(backlog) / (last - first),
        "steady": rate_between(times),
        "produce_seconds": round(acked - first, 2),
        "seconds": round(last - first, 2),
        "resources": resources,
        "latency": latency,
    }


async def _until(check: Callable[[], bool], seconds: float, what: str, procs: Processes) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not done within {seconds:.0f}s")
        procs.check()
        await asyncio.sleep(0.05)


def _service_pids(run: Run) -> dict[str, int]:
    return {name: run.procs.procs[name].pid for name in SERVICES} | _other_pids(run)


def _other_pids(run: Run) -> dict[str, int]:
    """This process (the load generator and the readers) and the broker, if it runs here."""
    pids = {"load generator (bench)": os.getpid()}
    broker = _broker_pid(run.cfg.bootstrap_servers)
    if broker is not None:
        pids[
            "broker (tansu)" if "tansu" in " ".join(psutil.Process(broker).cmdline()) else "broker"
        ] = broker
    return pids


async def batch_sizes(ports: dict[str, int]) -> dict[str, dict[str, float]]:
    """Mean records per consumed batch and batches handled, per service and topic, from each
    service's /metrics (cumulative since it started: the warm-up and (b))."""
    out: dict[str, dict[str, float]] = {}
    async with httpx.AsyncClient(timeout=5) as client:
        for name, port in ports.items():
            text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
            sums: dict[str, float] = {}
            counts: dict[str, float] = {}
            for family in text_string_to_metric_families(text):
                if family.name != "event_batch_size":
                    continue
                for sample in family.samples:
                    # The run's prefix off every topic of a subscription ("p_cases+p_feedback").
                    label = sample.labels.get("topic", "?")
                    topic = "+".join(t.split("_", 1)[-1] for t in label.split("+"))
                    if sample.name.endswith("_sum"):
                        sums[topic] = sample.value
                    elif sample.name.endswith("_count"):
                        counts[topic] = sample.value
            for topic, count in counts.items():
                if count:
                    out[f"{name}:{topic}"] = {
                        "batches": count,
                        "mean_records": round(sums.get(topic, 0.0) / count, 1),
                    }
    return out


async def backlog_phase(
    run: Run,
    producer: AIOKafkaProducer,
    flow: Flow,
    tables: Tables,
    messages: list[Message],
    sampler: Sampler | None,
) -> dict[str, Any]:
    """Produce ``messages`` as fast as possible; when is each stage done with all of them."""
    base = await tables.counts()
    sampled_from = time.monotonic()
    if sampler is not None:
        sampler.start()
    first, acked = await produce(producer, run.prefix + "reports", messages, run.sent)
    ids = [m.report_id for m in messages]

    def verdicts_and_dispatches() -> bool:
        if not all(r in flow.verdict for r in ids):
            return False
        return all(
            m.case_id in flow.dispatched or m.case_id in flow.escalated
            for m in messages
            if flow.verdict[m.report_id] == "case.registered"
        )

    # The target for armed/scored is only known once every verdict is in; count meanwhile.
    series, ok = await count_until(
        tables, base, len(messages), verdicts_and_dispatches, 180, procs=run.procs
    )
    registered = [m for m in messages if flow.verdict.get(m.report_id) == "case.registered"]
    target = len(registered)
    if not ok and target < len(messages):
        series, ok = await count_until(
            tables, base, target, verdicts_and_dispatches, 60, procs=run.procs
        )
    resources = await sampler.stop() if sampler is not None else None
    sampled_seconds = time.monotonic() - sampled_from
    if not ok:
        raise RuntimeError(f"the backlog was not through in time: {series.points[-1:]}")
    reg_times = [flow.registered[m.case_id] for m in registered]
    disp_times = [flow.dispatched[m.case_id] for m in registered if m.case_id in flow.dispatched]
    armed_done = series.reached(1, target)
    scored_done = series.reached(2, target)
    assert armed_done is not None and scored_done is not None
    done = {
        "registered": max(reg_times),
        "dispatched": max(disp_times),
        "armed": armed_done,
        "scored": scored_done,
    }
    through = max(done.values())
    # Fully through = armed and scored (both follow the dispatch): 10% -> 90% of the slower.
    lo = series.reached(1, int(0.1 * target)), series.reached(2, int(0.1 * target))
    hi = series.reached(1, int(0.9 * target)), series.reached(2, int(0.9 * target))
    steady = None
    if None not in lo and None not in hi:
        t_lo, t_hi = max(x for x in lo if x is not None), max(x for x in hi if x is not None)
        steady = 0.8 * target / (t_hi - t_lo) if t_hi > t_lo else None
    return {
        "reports": len(messages),
        "verdicts": dict(Counter(flow.verdict.get(r, "none") for r in ids)),
        "registered": target,
        "escalated": sum(1 for m in registered if m.case_id in flow.escalated),
        "produce_seconds": round(acked - first, 2),
        "seconds_to_through": round(through - first, 2),
        "per_s": round(target / (through - first)),
        "per_s_10_to_90": round(steady) if steady else None,
        "stage_done_seconds": {k: round(v - first, 2) for k, v in done.items()},
        "stage_per_s": {k: round(target / (v - first)) for k, v in done.items()},
        "registered_per_s_10_to_90": round(r) if (r := rate_between(reg_times)) else None,
        "dispatched_per_s_10_to_90": round(d) if (d := rate_between(disp_times)) else None,
        "resources": resources,
        # CPU per report through: mean CPU share over the sampled window, per report registered.
        "cpu_ms_per_report": {
            name: round(figures["cpu_mean"] / 100 * sampled_seconds * 1000 / target, 3)
            for name, figures in (resources or {}).items()
            if not name.startswith("_") and name != "machine" and "cpu_mean" in figures
        },
    }


def _windows(timed: Iterable[tuple[float, float]], began: float) -> list[list[float]]:
    """The values of ``(instant, value)`` pairs, WINDOW_SECONDS at a time from ``began`` on."""
    windows: dict[int, list[float]] = {}
    for at, value in timed:
        if at >= began:
            windows.setdefault(int((at - began) // WINDOW_SECONDS), []).append(value)
    return [values for _, values in sorted(windows.items())]


async def paced_phase(
    run: Run,
    producer: AIOKafkaProducer,
    flow: Flow,
    tables: Tables,
    messages: list[Message],
    rate: float,
) -> dict[str, Any]:
    """(c) ``rate`` reports a second; latency of every stage per report."""
    armed = CommitPoller(tables, "armed", flow.registered)
    scored = CommitPoller(tables, "scored", flow.registered)
    sampled = {m.report_id for m in messages[::SAMPLE_EVERY]}

    def on_send(message: Message, at: float) -> None:
        if message.report_id in sampled:
            armed.watch(message.case_id)
            scored.watch(message.case_id)

    base = await tables.counts()
    sampler = Sampler(
        _service_pids(run),
        urlparse(run.database_url).path.lstrip("/"),
        pool=tables.pool,
        schemas=tables.schemas,
    )
    sampler.start()
    armed.start()
    scored.start()
    first, acked = await produce(
        producer, run.prefix + "reports", messages, run.sent, rate=rate, on_send=on_send
    )
    last_sent = max(run.sent[m.report_id] for m in messages)
    ids = [m.report_id for m in messages]

    def flowed() -> bool:
        return all(r in flow.verdict for r in ids) and all(
            m.case_id in flow.dispatched or m.case_id in flow.escalated
            for m in messages
            if flow.verdict[m.report_id] == "case.registered"
        )

    series, ok = await count_until(
        tables, base, len(messages), flowed, DRAIN_SECONDS, every=0.5, procs=run.procs
    )
    registered = [m for m in messages if flow.verdict.get(m.report_id) == "case.registered"]
    target = len(registered)
    if ok or (flowed() and series.points and min(series.points[-1][1:]) >= target):
        ok = True
    resources = await sampler.stop()
    await armed.stop()
    await scored.stop()
    done_at = max(
        [flow.registered.get(m.case_id, 0.0) for m in registered]
        + [flow.dispatched.get(m.case_id, 0.0) for m in registered]
        + [x for x in (series.reached(1, target), series.reached(2, target)) if x is not None]
    )
    drain = done_at - last_sent if ok else None

    def latencies(stage: dict[str, float], pool: Iterable[Message]) -> tuple[list[float], int]:
        values, missing = [], 0
        for m in pool:
            if m.case_id in stage:
                values.append(stage[m.case_id] - run.sent[m.report_id])
            else:
                missing += 1
        return values, missing

    sample = [m for m in registered if m.report_id in sampled]
    reg, reg_missing = latencies(flow.registered, registered)
    disp, disp_missing = latencies(flow.dispatched, registered)
    arm, arm_missing = latencies(armed.seen, sample)
    sco, sco_missing = latencies(scored.seen, sample)
    windows = armed.windows + scored.windows
    # p99 report -> dispatched by when the report was sent, WINDOW_SECONDS at a time: on the
    # development broker it grows as the run fills the topics (its fetches walk them).
    # Sent times are whole milliseconds, so the first can fall just before ``first``.
    began = min((run.sent[m.report_id] for m in messages), default=first)
    dispatched = [
        (run.sent[m.report_id], flow.dispatched[m.case_id] - run.sent[m.report_id])
        for m in registered
        if m.case_id in flow.dispatched
    ]
    return {
        "rate_per_s": rate,
        "seconds": round(acked - first, 1),
        "reports": len(messages),
        "verdicts": dict(Counter(flow.verdict.get(r, "none") for r in ids)),
        "sustained": bool(ok and drain is not None and drain <= SUSTAINED_DRAIN_SECONDS),
        "drain_seconds_after_last_report": round(drain, 2) if drain is not None else None,
        "through_per_s": round(target / (done_at - first)) if ok else None,
        "report_to_registered": distribution_ms(reg, reg_missing),
        "report_to_dispatched": distribution_ms(disp, disp_missing),
        "report_to_armed": distribution_ms(arm, arm_missing),
        "report_to_scored": distribution_ms(sco, sco_missing),
        "window_seconds": WINDOW_SECONDS,
        "p99_dispatched_ms_by_window": [
            round(1000 * percentile(w, 0.99)) for w in _windows(dispatched, began)
        ],
        # The same windows' mean CPU %: each sample covers the time since the one before.
        "cpu_by_window": {
            # strict=False: a process that vanished has fewer samples than the machine.
            name: [
                round(sum(w) / len(w))
                for w in _windows(zip(sampler.times, values, strict=False), began)
            ]
            for name, values in sampler.cpu.items()
            if name.startswith(("broker", "machine", "postgres (")) or name in SERVICES
        },
        "armed_scored_sampled_every": SAMPLE_EVERY,
        # The mean width of the window each armed / scored commit is placed in the middle of.
        "armed_scored_poll_window_ms_mean": round(1000 * sum(windows) / len(windows), 1)
        if windows
        else None,
        "armed_scored_key_lookups": armed.lookups + scored.lookups,
        "resources": resources,
    }


async def _pipeline(run: Run, source: ReportSource) -> None:
    cfg, prefix = run.cfg, run.prefix
    r = run.results
    t = time.perf_counter()
    warm_hops = source.take(WARMUP)
    warm = source.take(WARMUP)
    backlog = source.take(BACKLOG)
    profiled = source.take(PROFILE_REPORTS)
    paced = source.take(int(RATE * SECONDS))
    r["generate_seconds"] = round(time.perf_counter() - t, 1)
    sizes = [len(m.value) for m in backlog]
    r["report_bytes_mean"] = round(sum(sizes) / len(sizes))
    r["report_bytes_max"] = max(sizes)
    r["report_headers_bytes_mean"] = round(
        sum(sum(len(k) + len(v) for k, v in m.headers) for m in backlog) / len(backlog)
    )
    r["lattice_spacing_over_radius_min"] = round(check_spacing(source), 3)

    await registry_topics(cfg, prefix)
    producer = make_producer(cfg, client_id="bench-load")
    await producer.start()
    flow = Flow()
    reader = outputs_reader(cfg, prefix, flow)
    pool: asyncpg.Pool | None = None
    try:
        if not PACED_ONLY:
            # (a) the limit, with the very bytes (b) sends, and (c)'s first seconds for its latency.
            print("  (a) passthrough limit ...", flush=True)
            limit = await limit_phase(
                run,
                producer,
                warm_hops,
                (backlog + profiled + paced)[:LIMIT_MESSAGES],
                paced[: int(RATE * LIMIT_LATENCY_SECONDS)],
            )
            r.update(limit)

        # The four services.
        print("  (b) starting the four services ...", flush=True)
        schemas = {name: f"{prefix}{name}" for name in SERVICES}
        ports = {name: free_port() for name in SERVICES}
        started = time.monotonic()
        await start_services(run, schemas, ports)
        r["services_ready_seconds"] = round(time.monotonic() - started, 1)
        await reader.start()
        # The services' pool settings (custom plans): the pollers' ``case_id = ANY($1)`` made
        # a generic plan on tables of 300 rows and scanned them whole once they held 30,000.
        pool = await create_pool(run.database_url, "public", min_size=3, max_size=4)
        tables = Tables(pool, schemas)
        warmed = await backlog_phase(run, producer, flow, tables, warm, None)
        unexpected = set(flow.registered) - {m.case_id for m in warm}
        if unexpected:
            raise RuntimeError(f"case ids differ from case_id_for(): {sorted(unexpected)[:3]}")
        r["warmup_reports"] = len(warm)
        r["warmup_seconds_to_through"] = warmed["seconds_to_through"]

        async def at_rate() -> dict[str, Any]:
            print(f"  (c) {RATE:.0f} reports/s for {SECONDS:.0f}s ...", flush=True)
            fixed = await paced_phase(run, producer, flow, tables, paced, RATE)
            r["latency"] = fixed
            r["latency_rate_per_s"] = RATE
            r["latency_sustained"] = fixed["sustained"]
            p99 = fixed["report_to_dispatched"].get("p99_ms")
            r["latency_p99_dispatched_ms"] = p99
            r["latency_p99_dispatched_floor_ms"] = FLOOR_P99_DISPATCHED_MS
            r["latency_p99_dispatched_floor_met"] = (
                fixed["sustained"] and p99 is not None and p99 <= FLOOR_P99_DISPATCHED_MS
            )
            return fixed

        if PACED_ONLY:
            r["quick"] = "BENCH_PIPELINE_PACED_ONLY=1: (a), (b) and (e) not run"
            await at_rate()
            r["consumed_batches_after_c"] = await batch_sizes(ports)
            return

        # (b) saturation.
        print(f"  (b) {len(backlog)} reports at saturation ...", flush=True)
        sampler = Sampler(
            _service_pids(run),
            urlparse(run.database_url).path.lstrip("/"),
            pool=tables.pool,
            schemas=tables.schemas,
        )
        writes_before = await tables.settled_row_writes()
        saturated = await backlog_phase(run, producer, flow, tables, backlog, sampler)
        saturated["rows_written_per_report"] = writes_per_report(
            writes_before, await tables.settled_row_writes(), saturated["registered"]
        )
        r["pipeline"] = saturated
        r["pipeline_reports_per_s"] = saturated["per_s"]
        r["pipeline_reports_per_s_10_to_90"] = saturated["per_s_10_to_90"]
        r["pipeline_ratio_to_limit"] = round(saturated["per_s"] / limit["limit_msgs_per_s"], 3)
        r["pipeline_ratio_floor"] = FLOOR_RATIO
        r["pipeline_ratio_aim"] = AIM_RATIO
        r["pipeline_ratio_floor_met"] = r["pipeline_ratio_to_limit"] >= FLOOR_RATIO
        r["pipeline_ratio_aim_met"] = r["pipeline_ratio_to_limit"] >= AIM_RATIO
        r["timers_armed_after_b"] = await tables.timers()

        print(f"  (b) CPU ms per report: {saturated['cpu_ms_per_report']}", flush=True)
        written = {n: w["total"] for n, w in saturated["rows_written_per_report"].items()}
        print(f"  (b) Postgres rows written per report: {written}", flush=True)
        r["consumed_batches_after_b"] = await batch_sizes(ports)
        print(f"  (b) consumed batches: {r['consumed_batches_after_b']}", flush=True)
        if QUICK:
            r["quick"] = "BENCH_PIPELINE_QUICK=1: (c) and (e) not run"
            return

        # (e) a profile of the busiest service through a second backlog.
        cpu = {
            n: saturated["resources"][n]["cpu_mean"]
            for n in SERVICES
            if n in saturated["resources"]
        }
        busiest = max(cpu, key=lambda n: cpu[n])
        profiles = await profile_phase(run, producer, flow, tables, profiled, list(cpu))
        r["profile"] = profiles[busiest]
        r["profiles"] = profiles

        # (c) latency at RATE; and at a rate the pipeline sustains, if RATE is more than that.
        # When (b) already shows RATE is beyond saturation, the sustainable rate is looked
        # for first, on the state (b) measured, and the overload at RATE comes last.
        async def sustainable(capacity: float) -> None:
            rate = SUSTAINABLE_RATE or _round_down(0.7 * capacity)
            attempts = []
            for _ in range(SUSTAINABLE_ATTEMPTS):
                print(f"  (c) {rate:.0f} reports/s for {SUSTAINABLE_SECONDS:.0f}s ...", flush=True)
                phase = await paced_phase(
                    run, producer, flow, tables, source.take(int(rate * SUSTAINABLE_SECONDS)), rate
                )
                attempts.append(
                    {
                        "rate_per_s": rate,
                        "sustained": phase["sustained"],
                        "drain_seconds_after_last_report": phase["drain_seconds_after_last_report"],
                        "through_per_s": phase["through_per_s"],
                        "p99_dispatched_ms": phase["report_to_dispatched"].get("p99_ms"),
                    }
                )
                r["latency_sustainable"] = phase
                if phase["sustained"]:
                    break
                rate = _round_down(0.9 * min(phase["through_per_s"] or rate / 2, 0.8 * rate))
            r["latency_sustainable_attempts"] = attempts

        # (c) on topics of its own, as each pass of (a): Tansu's in-memory storage walks a
        # partition's stored batches to find a fetch offset, so every poll costs it more as
        # the topics fill (Apache Kafka finds an offset through its index). Fresh topics make
        # (c) start from empty ones whatever (b) and (e) sent; over its 60 s its own reports
        # fill them further still, which the 10 s windows show. The services restart on the
        # new topics and keep their schemas: the database holds what (b) and (e) left.
        print("  (c) restarting the services on topics of their own ...", flush=True)
        r["exit_codes_before_c"] = run.procs.stop(SERVICES)
        await reader.stop()
        run.prefix = f"{prefix}c_"
        await registry_topics(cfg, run.prefix)
        await start_services(run, schemas, ports)
        reader = outputs_reader(cfg, run.prefix, flow)
        await reader.start()
        rewarmed = await backlog_phase(run, producer, flow, tables, source.take(WARMUP), None)
        r["c_topic_prefix"] = run.prefix
        r["c_warmup_seconds_to_through"] = rewarmed["seconds_to_through"]

        if saturated["per_s"] < RATE:
            await sustainable(saturated["per_s"])
            await at_rate()
        else:
            fixed = await at_rate()
            if not fixed["sustained"]:
                await sustainable(min(saturated["per_s"], fixed["through_per_s"] or RATE))
        r["exhausted_categories"] = sorted(source.exhausted)
    finally:
        codes = run.procs.stop()
        r["exit_codes"] = codes
        await reader.stop()
        await producer.stop()
        if pool is not None:
            await pool.close()


async def registry_topics(cfg: KafkaSettings, prefix: str) -> None:
    """Every topic of the registry under ``prefix``: PARTITIONS each, dead-letter topics as
    the registry makes them."""
    await ensure_topics(cfg, topic_partitions(prefix, PARTITIONS))


def outputs_reader(cfg: KafkaSettings, prefix: str, flow: Flow) -> Reader:
    """The reader of the pipeline's outputs under ``prefix``: registrations and dispatches."""
    return Reader(cfg, [prefix + "cases", prefix + "assignments"], flow.on_record)


async def start_services(run: Run, schemas: dict[str, str], ports: dict[str, int]) -> None:
    """The four services, ``python -m services.<name>``, on ``run.prefix``'s topics; until ready."""
    for name in SERVICES:
        run.procs.spawn(
            name,
            [sys.executable, "-m", f"services.{name}"],
            run.child_env(
                TOPIC_PREFIX=run.prefix, DB_SCHEMA=schemas[name], HTTP_PORT=str(ports[name])
            ),
        )
    await wait_ready(run.procs, ports)


async def profile_phase(
    run: Run,
    producer: AIOKafkaProducer,
    flow: Flow,
    tables: Tables,
    messages: list[Message],
    services: Sequence[str],
) -> dict[str, dict[str, Any]]:
    """(e) every service under py-spy (attached by pid) through a backlog like (b)'s.

    All four at once, so the profiles describe the same traffic; py-spy's own
    sampling (a few % of a core each) slows this backlog, which is why it is not (b).
    """
    binary = py_spy()
    if binary is None:
        return {
            s: {"service": s, "skipped": "py-spy is not installed (pip install py-spy)"}
            for s in services
        }
    print(
        f"  (e) profiling {', '.join(services)} with py-spy through {len(messages)} reports ...",
        flush=True,
    )
    raws = {s: run.logs / f"profile-{s}.txt" for s in services}
    for service, raw in raws.items():
        run.procs.spawn(
            f"py-spy-{service}",
            [
                binary,
                "record",
                "--pid",
                str(run.procs.procs[service].pid),
                "--rate",
                "100",
                "--nonblocking",
                "--function",
                "--format",
                "raw",
                "--output",
                str(raw),
                "--duration",
                "300",
            ],
            dict(os.environ),
            optional=True,
        )
    try:
        await asyncio.sleep(1.0)
        began = time.monotonic()
        phase = await backlog_phase(run, producer, flow, tables, messages, None)
        seconds = time.monotonic() - began
    finally:
        # py-spy writes its file on Ctrl-C.
        run.procs.stop([f"py-spy-{s}" for s in services], sig=signal.SIGINT)
    RESULTS.mkdir(exist_ok=True)
    profiles: dict[str, dict[str, Any]] = {}
    for service, raw in raws.items():
        if not raw.exists():
            profiles[service] = {"service": service, "skipped": "py-spy wrote nothing; see its log"}
            continue
        text = raw.read_text()
        stacks = RESULTS / f"pipeline_profile_{service}.txt"
        stacks.write_text(text)
        profiles[service] = {
            "service": service,
            "tool": "py-spy record --nonblocking --function --rate 100 (attached by pid)",
            "reports": len(messages),
            "seconds": round(seconds, 1),
            "per_s_while_profiled": phase["per_s"],
            "collapsed_stacks": f"bench/results/{stacks.name}",
            **summarise_profile(text),
        }
    return profiles


async def main() -> dict[str, object]:
    began = time.monotonic()
    load_before = os.getloadavg()[0]
    cfg = KafkaSettings()
    run_id = uuid.uuid4().hex[:6]
    logs = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    run = Run(
        cfg=cfg,
        database_url=os.environ["DATABASE_URL"],
        prefix=f"bpipe{run_id}_",
        logs=logs,
        procs=Processes(logs),
    )
    r = run.results
    r["machine"] = {
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average_1m_before": round(load_before, 2),
        # Other work on the machine halves these figures: what it was doing just before.
        "cpu_percent_busy_before": round(await asyncio.to_thread(psutil.cpu_percent, 2.0), 1),
    }
    r["partitions"] = PARTITIONS
    r["kafka"] = {
        "idempotence": cfg.idempotence,
        "acks": "all",
        "linger_ms": cfg.linger_ms,
        "max_batch_size_bytes": 256 * 1024,
        "consumer_max_batch": cfg.max_batch,
        "batch_timeout_ms": cfg.batch_timeout_ms,
        "fetch_max_wait_ms": cfg.fetch_max_wait_ms,
        "follower_fetch_max_wait_ms": cfg.follower_fetch_max_wait_ms,
        "commit_interval_ms": cfg.commit_interval_ms,
    }
    source = ReportSource(load_reference(), run_id)
    ok = False
    try:
        await _pipeline(run, source)
        ok = True
    finally:
        if ok:
            shutil.rmtree(logs, ignore_errors=True)
        else:
            print(f"  logs kept in {logs}", file=sys.stderr)
    r["machine"]["load_average_1m_after"] = round(os.getloadavg()[0], 2)
    r["run_seconds"] = round(time.monotonic() - began, 1)
    return r


if __name__ == "__main__":
    if sys.argv[1:2] == ["hop"] and len(sys.argv) == 4:
        asyncio.run(hop(sys.argv[2], sys.argv[3]))
    else:
        print("usage: python -m bench pipeline  (or: python -m bench.bench_pipeline hop SRC DST)")
        sys.exit(2)
