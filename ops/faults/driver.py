"""The fault run's process control: provision, start the city, inject the plan, drain, audit.

Only processes this run started are signalled: the four services (by their
Popen handles), the broker (by the pid devstack recorded) and the embedded
PostgreSQL (through pg_ctl on its data directory). A frozen broker is always
resumed and every service stopped, whatever fails (try/finally).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from ops.faults import collect
from ops.faults.audit import PoisonSent, Tally, judge, render
from ops.faults.schedule import POISON_SHAPES, Fault, Plan, plan, rewound
from ops.simulator.model import load_behaviour
from ops.simulator.run import SAMPLE_BEHAVIOUR, CitySimulator
from ops.stack import DEFAULT_START, SERVICES, City
from shared import devstack
from shared.clock import ScaledClock
from shared.kafka import client_options, ensure_topics
from shared.reference import load_reference
from shared.settings import KafkaSettings
from shared.topics import topic_partitions

log = logging.getLogger("ops.faults")


@dataclass(frozen=True)
class Options:
    reports: int = 20_000
    seed: int = 1
    rate: float = 60.0  # reports per wall-clock second, on average over the city's day
    scale: float = 600.0  # clock seconds per wall-clock second
    kills_per_service: int = 3
    freeze_seconds: float = 20.0
    partitions: int = 4
    grace_seconds: float = 30.0  # wall-clock seconds a due timer may take to fire
    drain_seconds: float = 300.0  # longest wait for the pipeline to catch up at the end
    out: Path | None = None
    logs: Path = devstack.STATE_DIR / "faults"


@dataclass
class Injected:
    kind: str
    target: str
    description: str
    at_share: float
    started_s: float  # seconds since the run started
    seconds: float  # how long the fault took, restart included
    detail: str = ""


@dataclass
class RunReport:
    options: dict[str, Any]
    plan: list[dict[str, Any]]
    injected: list[Injected] = field(default_factory=list)
    unplanned_exits: list[dict[str, Any]] = field(default_factory=list)
    submitted_by_simulator: int = 0
    drained: bool = False
    seconds: dict[str, float] = field(default_factory=dict)
    tally: Tally | None = None

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["tally"] = self.tally.as_json() if self.tally else None
        return out


@dataclass
class Provisioned:
    env: dict[str, str]
    tansu_pid: int
    pgdata: str
    stack: devstack.Stack | None  # what this run started itself, to stop at the end


def provision() -> Provisioned:
    """The broker and embedded PostgreSQL ``devstack run`` gave us, or our own.

    A fault run freezes the broker and restarts the database, so it never uses
    a shared one: without devstack's pid and data directory in the environment
    it starts its own pair (memory Tansu, embedded PostgreSQL in a temp dir).
    """
    pid, pgdata = os.environ.get("DEVSTACK_TANSU_PID"), os.environ.get("DEVSTACK_EMBEDDED_PGDATA")
    if pid and pgdata and os.environ.get("DATABASE_URL"):
        return Provisioned(dict(os.environ), int(pid), pgdata, None)
    saved = {
        k: os.environ.pop(k) for k in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL") if k in os.environ
    }
    previous = os.environ.get("DEVSTACK_POSTGRES")
    os.environ["DEVSTACK_POSTGRES"] = "embedded"
    try:
        stack = devstack.start(f"citycases_faults_{uuid.uuid4().hex[:8]}", fresh_database=True)
    finally:
        os.environ.update(saved)
        if previous is None:
            os.environ.pop("DEVSTACK_POSTGRES", None)
        else:
            os.environ["DEVSTACK_POSTGRES"] = previous
    return Provisioned(
        stack.env,
        int(stack.env["DEVSTACK_TANSU_PID"]),
        stack.env["DEVSTACK_EMBEDDED_PGDATA"],
        stack,
    )


class FaultRun:
    def __init__(self, options: Options, infra: Provisioned) -> None:
        self.o = options
        self.infra = infra
        self.plan: Plan = plan(
            options.seed,
            kills_per_service=options.kills_per_service,
            freeze_seconds=options.freeze_seconds,
        )
        self.report = RunReport(
            options={k: str(v) for k, v in asdict(options).items()},
            plan=[f.as_json() | {"description": f.describe()} for f in self.plan.faults],
        )
        self.city = City(
            scale=options.scale,
            start=datetime.fromisoformat(DEFAULT_START),
            partitions=options.partitions,
            env=infra.env,
            logs=options.logs,
        )
        self.city.ports = {name: devstack.free_port() for name in SERVICES}
        self.kafka = KafkaSettings()
        self.down: set[str] = set()  # services deliberately stopped: not to be restarted yet
        self.poison: list[PoisonSent] = []
        self.run_id = uuid.uuid4().hex[:6]
        self.started = time.monotonic()
        self.anchor = 0.0
        self.frozen = False

    def elapsed(self) -> float:
        return round(time.monotonic() - self.started, 1)

    # -- the run -------------------------------------------------------------

    async def run(self) -> RunReport:
        o = self.o
        await ensure_topics(self.kafka, topic_partitions("", o.partitions))
        self.anchor = time.time()
        clock = ScaledClock(o.scale, self.city.start, self.anchor)
        self.city.start_services(self.anchor)
        await self.city.wait_ready(120)
        behaviour = load_behaviour(SAMPLE_BEHAVIOUR)
        behaviour = replace(behaviour, reports_per_day=o.rate * 86_400 / o.scale)
        sim = CitySimulator(
            load_reference(),
            self.kafka,
            clock,
            seed=o.seed,
            behaviour=behaviour,
            dispatch_url=f"http://127.0.0.1:{self.city.ports['dispatch']}",
            dispatch_key=self.city.centre_key,
            from_start=True,
        )
        stop_sim = asyncio.Event()
        simulating = asyncio.create_task(sim.run(stop_sim, max_reports=o.reports))
        watching = asyncio.create_task(self._restart_what_died())
        try:
            for fault in self.plan.faults:
                await self._until_share(sim, fault.at)
                await self._inject(fault)
            await self._until_share(sim, 1.0)
            self.report.seconds["submitting"] = self.elapsed()
            self.report.submitted_by_simulator = sim.submitted.total()
            # the reports are all in: let the city answer until intake has read every one
            await self._wait_drained({"intake"}, o.drain_seconds)
            stop_sim.set()
            await simulating
            drained, lag_then = await self._wait_drained(set(collect.groups()), o.drain_seconds)
            self.report.drained = drained
            self.report.seconds["drained"] = self.elapsed()
            cutoff = clock.now() - timedelta(seconds=o.grace_seconds * o.scale)
        finally:
            stop_sim.set()
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching
            if not simulating.done():
                simulating.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await simulating
        # Scoring last: it publishes nothing the others read, so once it has caught up
        # with what the others published before they stopped, a recompute must match.
        await asyncio.to_thread(self._stop, ["intake", "dispatch", "supervision"])
        scoring_groups = {g for g in collect.groups() if g.split(".")[0] == "scoring"}
        _, scoring_lag = await self._wait_drained(scoring_groups, 60)
        await asyncio.to_thread(self._stop, ["scoring"])
        self.report.seconds["stopped"] = self.elapsed()
        facts = await collect.collect(
            self.kafka, "", self.infra.env["DATABASE_URL"], self.poison, cutoff
        )
        facts.lag = {**lag_then, **scoring_lag}
        self.report.tally = judge(facts)
        self.report.seconds["audited"] = self.elapsed()
        return self.report

    async def _until_share(self, sim: CitySimulator, share: float) -> None:
        wanted = min(self.o.reports, max(1, round(share * self.o.reports)))
        last, since, told = -1, time.monotonic(), time.monotonic()
        while sim.submitted.total() < wanted:
            if time.monotonic() - told > 10:
                log.info("%d reports submitted, waiting for %d", sim.submitted.total(), wanted)
                told = time.monotonic()
            if sim.submitted.total() != last:
                last, since = sim.submitted.total(), time.monotonic()
            elif time.monotonic() - since > 120:
                raise RuntimeError(f"the simulator stopped submitting at {last} reports")
            await asyncio.sleep(0.2)

    async def _wait_drained(self, groups: set[str], seconds: float) -> tuple[bool, dict[str, int]]:
        """Wait until ``groups`` have committed every message and the outboxes are empty."""
        deadline = time.monotonic() + seconds
        wanted = {g: collect.groups()[g] for g in groups}
        behind: dict[str, int] = {}
        told = time.monotonic()
        while True:
            try:
                behind = await collect.lag(self.kafka, "", wanted)
                outbox = await collect.outbox_rows(
                    self.infra.env["DATABASE_URL"], {g.split(".")[0] for g in groups}
                )
                if not any(behind.values()) and not any(outbox.values()):
                    return True, behind
                if time.monotonic() - told > 10:
                    told = time.monotonic()
                    log.info("draining: behind %s, outbox %s", _nonzero(behind), _nonzero(outbox))
            except Exception as exc:  # the broker or database may be restarting
                log.info("draining: %r", exc)
            if time.monotonic() > deadline:
                log.warning("not drained after %.0fs: %s", seconds, behind)
                return False, behind
            await asyncio.sleep(1)

    # -- process control -----------------------------------------------------

    async def _restart_what_died(self) -> None:
        """Restart a service that exited on its own (as an orchestrator would), and note it."""
        while True:
            await asyncio.sleep(0.5)
            for name, proc in list(self.city.procs.items()):
                if name in self.down or proc.poll() is None:
                    continue
                self.report.unplanned_exits.append(
                    {"service": name, "code": proc.returncode, "at_s": self.elapsed()}
                )
                log.warning("%s exited with %s; restarting it", name, proc.returncode)
                self.city.start_service(name, self.anchor)

    def _stop(self, names: list[str]) -> None:
        self.down.update(names)
        self.city.stop_services(names, timeout=30)

    async def _start(self, name: str, seconds: float = 120) -> None:
        """Start ``name`` again and wait for its /readyz (the others may be restarting too)."""
        self.city.start_service(name, self.anchor)
        self.down.discard(name)
        await self.city.wait_ready(seconds, [name], exits_fatal=False)

    def resume_broker(self) -> None:
        if self.frozen:
            os.kill(self.infra.tansu_pid, signal.SIGCONT)
            self.frozen = False

    def shutdown(self) -> None:
        """Whatever happened: the broker running again, every service of this run stopped."""
        self.resume_broker()
        self._stop(list(self.city.procs))

    # -- the faults ----------------------------------------------------------

    async def _inject(self, fault: Fault) -> None:
        started = self.elapsed()
        t0 = time.monotonic()
        detail = ""
        log.info("fault at %.0f%%: %s", fault.at * 100, fault.describe())
        if fault.kind == "kill":
            self.down.add(fault.target)
            proc = self.city.procs[fault.target]
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)  # pid of the Popen this run started
            proc.wait()
            await asyncio.sleep(fault.seconds)
            await self._start(fault.target)
        elif fault.kind == "freeze":
            os.kill(self.infra.tansu_pid, signal.SIGSTOP)
            self.frozen = True
            try:
                await asyncio.sleep(fault.seconds)
            finally:
                self.resume_broker()
        elif fault.kind == "postgres":
            await asyncio.to_thread(devstack.restart_embedded_postgres, self.infra.pgdata)
        elif fault.kind == "rewind":
            await asyncio.to_thread(self._stop, [fault.target])  # the simulator keeps going
            try:
                detail = await self._rewind(fault)
            finally:
                await self._start(fault.target)
        else:
            detail = await self._send_poison(fault.target)
        self.report.injected.append(
            Injected(
                fault.kind,
                fault.target,
                fault.describe(),
                fault.at,
                started,
                round(time.monotonic() - t0, 1),
                detail,
            )
        )

    async def _rewind(self, fault: Fault) -> str:
        """Commit earlier offsets for the stopped service's group: it re-reads them on restart."""
        group = collect.group_of(fault.target, fault.topic)
        consumer = AIOKafkaConsumer(
            fault.topic,
            group_id=group,
            enable_auto_commit=False,
            session_timeout_ms=self.kafka.session_timeout_ms,
            heartbeat_interval_ms=self.kafka.heartbeat_interval_ms,
            **client_options(self.kafka),
        )
        await consumer.start()
        try:
            for _ in range(300):
                if consumer.assignment():
                    break
                await consumer.getmany(timeout_ms=200)
            tps = sorted(consumer.assignment())
            if not tps:
                raise RuntimeError(f"could not join group {group} on {fault.topic}")
            before = {tp.partition: (await consumer.committed(tp)) or 0 for tp in tps}
            after = rewound(before, fault.share_back)
            await consumer.commit({tp: after[tp.partition] for tp in tps})
        finally:
            await consumer.stop()
        moved = sum(before.values()) - sum(after.values())
        return f"group {group}: {moved} messages to be delivered again ({before} -> {after})"

    async def _send_poison(self, topic: str) -> str:
        producer = AIOKafkaProducer(
            acks="all", enable_idempotence=self.kafka.idempotence, **client_options(self.kafka)
        )
        await producer.start()
        markers = []
        try:
            for shape in POISON_SHAPES:
                marker = f"faults-poison-{self.run_id}-{len(self.poison) + 1}"
                await producer.send_and_wait(
                    topic, poison_bytes(shape, marker), key=marker.encode()
                )
                self.poison.append(PoisonSent(topic, marker))
                markers.append(f"{shape}:{marker}")
        finally:
            await producer.stop()
        return ", ".join(markers)


def _nonzero(counts: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in counts.items() if v}


def poison_bytes(shape: str, marker: str) -> bytes:
    """A message no consumer can handle, carrying ``marker`` so the audit can recognise it."""
    if shape == "garbage":
        return b"\xff\x00 " + marker.encode()
    if shape == "not_an_envelope":
        return json.dumps([marker]).encode()
    if shape == "unknown_type":
        return json.dumps(
            {
                "specversion": "1.0",
                "id": marker,
                "source": "ops.faults",
                "type": "faults.poison",
                "time": "2026-11-02T08:00:00+08:00",
                "subject": marker,
                "datacontenttype": "application/json",
                "data": {"marker": marker},
            }
        ).encode()
    raise ValueError(f"unknown poison shape {shape!r}")


def execute(options: Options) -> RunReport:
    """Provision, run, always clean up; the report carries the tally."""
    infra = provision()  # outside the event loop: devstack runs its own
    os.environ.update(infra.env)  # the simulator, the collectors and the recompute read it
    run: FaultRun | None = None
    try:
        run = FaultRun(options, infra)
        return asyncio.run(run.run())
    finally:
        if run is not None:
            run.shutdown()
        if infra.stack is not None:
            devstack.stop(infra.stack)


def write(report: RunReport, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.as_json(), indent=2, default=str))


def summary(report: RunReport) -> str:
    lines = ["faults injected (seconds since start, duration):"]
    for f in report.injected:
        lines.append(
            f"  {f.started_s:>7.1f}s {f.seconds:>5.1f}s  {f.description}"
            + (f"  [{f.detail}]" if f.detail else "")
        )
    for e in report.unplanned_exits:
        lines.append(
            f"  unplanned exit: {e['service']} code {e['code']} at {e['at_s']}s (restarted)"
        )
    lines.append(
        f"simulator submitted {report.submitted_by_simulator}; drained: {report.drained}; "
        f"timings: {report.seconds}"
    )
    if report.tally is not None:
        lines.append(render(report.tally))
    return "\n".join(lines)
