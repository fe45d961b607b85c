"""The simulator's I/O: submit reports on ``reports``, answer the pipeline on ``feedback``.

It listens to ``assignments`` and ``supervision`` as the departments, inspectors
and call-back centre would, and plays their answers at the simulated instants
:mod:`ops.simulator.model` decides. Its pending answers live in memory: a
restarted simulator forgets what it meant to do, which a demo can afford.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from ops.simulator.model import (
    Behaviour,
    ReportGenerator,
    Step,
    load_behaviour,
    on_closed,
    on_dispatched,
    on_escalated,
    on_handled,
)
from shared.clock import Clock
from shared.events.assignments import CaseDispatched, CaseEscalated, CaseRedispatched
from shared.events.envelope import EventData, decode, encode, kafka_headers, make_event
from shared.events.feedback import (
    CaseAccepted,
    CaseExtensionRequested,
    CaseHandled,
    CaseRated,
    CaseReturned,
    CaseVerificationFailed,
    CaseVerified,
)
from shared.events.reports import Reporter, ReportSubmitted
from shared.events.supervision import CaseClosed, CaseReworkOrdered
from shared.events.types import ReportLocation
from shared.kafka import client_options
from shared.reference import ReferenceData
from shared.settings import KafkaSettings

log = logging.getLogger(__name__)
SOURCE = "simulator"


#: How the sample city behaves; not reference data (no service reads it), so it lives here.
SAMPLE_BEHAVIOUR = Path(__file__).with_name("sample-city.json")


def default_behaviour(ref: ReferenceData) -> Behaviour:
    return load_behaviour(SAMPLE_BEHAVIOUR)


@dataclass
class CaseView:
    """What the city remembers of a case it is working on."""

    department: str
    area: str | None
    category: str
    dispatch_number: int
    handle_deadline: datetime
    handled_at: datetime | None = None


@dataclass
class CitySimulator:
    ref: ReferenceData
    kafka: KafkaSettings
    clock: Clock
    prefix: str = ""
    seed: int = 7
    behaviour: Behaviour | None = None
    dispatch_url: str | None = None  # where a human dispatcher assigns escalated cases
    dispatch_key: str | None = None  # the command centre's API key for dispatch (X-API-Key)
    tick: timedelta = timedelta(minutes=5)
    # Answer every case on the topics, not only those dispatched after the simulator's
    # consumer joined: on fresh topics (make run) a join's few seconds are hours of
    # scaled city time, and the first cases would go unanswered.
    from_start: bool = False
    submitted: Counter[str] = field(default_factory=Counter)
    answered: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.behaviour = self.behaviour or default_behaviour(self.ref)
        self.reports = ReportGenerator(self.ref, self.behaviour, self.rng)
        self.cases: dict[str, CaseView] = {}
        self.categories: dict[str, str] = {}
        self._steps: list[tuple[datetime, int, Step, int]] = []
        self._order = itertools.count()
        self._wake = asyncio.Event()
        self._producer: AIOKafkaProducer | None = None
        self._serial = itertools.count(1)
        self._run_id = uuid.uuid4().hex[:6]

    # -- the loops ---------------------------------------------------------

    async def run(self, stop: asyncio.Event, max_reports: int | None = None) -> None:
        self._producer = AIOKafkaProducer(
            enable_idempotence=self.kafka.idempotence,
            acks="all",
            linger_ms=5,
            **client_options(self.kafka),
        )
        await self._producer.start()
        try:
            tasks = [
                asyncio.create_task(self._report_loop(stop, max_reports)),
                asyncio.create_task(self._listen(stop)),
                asyncio.create_task(self._act(stop)),
            ]
            await stop.wait()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        finally:
            await self._producer.stop()

    async def _report_loop(self, stop: asyncio.Event, max_reports: int | None) -> None:
        assert self.behaviour is not None
        window_start = self.clock.now()
        while not stop.is_set():
            if max_reports is not None and self.submitted.total() >= max_reports:
                return
            await self.clock.sleep_until(window_start + self.tick)
            count = self.reports.count_in(window_start, self.tick)
            for _ in range(count):
                if max_reports is not None and self.submitted.total() >= max_reports:
                    break
                at = window_start + self.tick * self.rng.random()
                await self._submit_report(at)
            window_start += self.tick

    async def _listen(self, stop: asyncio.Event) -> None:
        consumer = AIOKafkaConsumer(
            *(self.prefix + t for t in ("cases", "assignments", "supervision")),
            group_id=f"{self.prefix}simulator-{self._run_id}",
            auto_offset_reset="earliest" if self.from_start else "latest",
            enable_auto_commit=True,  # the simulator is a demo peer; losing a step is harmless
            session_timeout_ms=self.kafka.session_timeout_ms,
            heartbeat_interval_ms=self.kafka.heartbeat_interval_ms,
            **client_options(self.kafka),
        )
        await consumer.start()
        try:
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=500, max_records=500)
                for records in batch.values():
                    for record in records:
                        try:
                            self._observe(decode(record.value).data, decode(record.value).time)
                        except Exception as exc:  # a demo peer never stops for one odd event
                            log.debug("simulator ignored a record: %r", exc)
        finally:
            await consumer.stop()

    async def _act(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if not self._steps:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=1.0)
                continue
            at, _, step, dispatch_number = self._steps[0]
            if at > self.clock.now():
                self._wake.clear()
                sleeper = asyncio.create_task(self.clock.sleep_until(at))
                woken = asyncio.create_task(self._wake.wait())
                await asyncio.wait({sleeper, woken}, return_when=asyncio.FIRST_COMPLETED)
                sleeper.cancel()
                woken.cancel()
                continue
            heapq.heappop(self._steps)
            case = self.cases.get(step.case_id)
            if (
                case is not None
                and case.dispatch_number != dispatch_number
                and step.action != "rate"
            ):
                continue  # the case moved on (redispatched); this answer is stale
            try:
                await self._perform(step, at)
            except Exception as exc:
                log.warning("simulated %s of %s failed: %r", step.action, step.case_id, exc)

    # -- deciding ----------------------------------------------------------

    def _schedule(self, steps: list[Step], dispatch_number: int) -> None:
        for step in steps:
            heapq.heappush(self._steps, (step.at, next(self._order), step, dispatch_number))
        self._wake.set()

    def _observe(self, data: EventData, time: datetime) -> None:
        assert self.behaviour is not None
        if isinstance(data, CaseDispatched | CaseRedispatched):
            reason = data.reason if isinstance(data, CaseRedispatched) else None
            self.cases[data.case_id] = CaseView(
                department=data.department,
                area=data.area,
                category=data.category_code,
                dispatch_number=data.dispatch_number,
                handle_deadline=data.deadlines.handle,
            )
            self.categories[data.case_id] = data.category_code
            steps = on_dispatched(
                self.behaviour,
                self.rng,
                case_id=data.case_id,
                department=data.department,
                dispatched_at=data.dispatched_at,
                sign_for=data.deadlines.sign_for,
                handle=data.deadlines.handle,
                tier=data.tier,
                is_rework=data.is_rework,
                reason=reason,
            )
            self._schedule(steps, data.dispatch_number)
        elif isinstance(data, CaseEscalated) and self.dispatch_url:
            code = self.categories.get(data.case_id)
            category = self.ref.category(code) if code else None
            if category is not None:
                number = (
                    self.cases[data.case_id].dispatch_number if data.case_id in self.cases else 0
                )
                step = on_escalated(
                    self.behaviour,
                    self.rng,
                    case_id=data.case_id,
                    escalated_at=time,
                    owner=category.owner_department,
                )
                self._schedule([step], number)
        elif isinstance(data, CaseClosed):
            case = self.cases.pop(data.case_id, None)
            if case is not None:
                rate = on_closed(
                    self.behaviour,
                    self.rng,
                    case_id=data.case_id,
                    department=case.department,
                    closed_at=time,
                    on_time=data.on_time,
                )
                if rate is not None:
                    self._schedule([rate], case.dispatch_number)
        elif isinstance(data, CaseReworkOrdered):
            pass  # dispatch answers with a rework redispatch, which the department then handles

    # -- acting ------------------------------------------------------------

    async def _perform(self, step: Step, at: datetime) -> None:
        assert self.behaviour is not None
        case = self.cases.get(step.case_id)
        area = case.area if case else None
        common = {
            "case_id": step.case_id,
            "department": step.department,
            "area": area,
            "note": "",
        }
        data: EventData
        if step.action == "accept":
            data = CaseAccepted(
                **common, actor_id=f"{step.department}-desk", actor_role="department"
            )
        elif step.action == "return":
            data = CaseReturned(
                **common,
                actor_id=f"{step.department}-desk",
                actor_role="department",
                reason=step.detail,
            )
        elif step.action == "request_extension":
            data = CaseExtensionRequested(
                **common,
                actor_id=f"{step.department}-desk",
                actor_role="department",
                requested=timedelta(days=3),
                reason=step.detail,
            )
        elif step.action == "handle":
            data = CaseHandled(
                **common, actor_id=f"{step.department}-crew", actor_role="department"
            )
            if case is not None:
                case.handled_at = at
                self._schedule(
                    [
                        on_handled(
                            self.behaviour,
                            self.rng,
                            case_id=step.case_id,
                            department=step.department,
                            handled_at=at,
                        )
                    ],
                    case.dispatch_number,
                )
        elif step.action == "verify":
            if step.detail == "passed":
                data = CaseVerified(**common, actor_id="inspector-07", actor_role="inspector")
            else:
                data = CaseVerificationFailed(
                    **common,
                    actor_id="inspector-07",
                    actor_role="inspector",
                    reason="problem still visible",
                )
        elif step.action == "rate":
            data = CaseRated(
                **common, actor_id="callback-01", actor_role="callback_centre", rating=step.detail
            )
        elif step.action == "dispatch":
            await self._manual_dispatch(step)
            return
        else:
            raise ValueError(step.action)
        await self._send(data, at)
        self.answered[step.action] += 1

    async def _manual_dispatch(self, step: Step) -> None:
        assert self.dispatch_url is not None
        headers = {"X-API-Key": self.dispatch_key} if self.dispatch_key else {}
        async with httpx.AsyncClient(timeout=5, headers=headers) as http:
            response = await http.post(
                f"{self.dispatch_url}/v1/cases/{step.case_id}/dispatch",
                json={
                    "department": step.department,
                    "dispatcher_id": "dispatcher-01",
                    "note": "simulated",
                },
            )
        if response.status_code >= 300:
            log.warning("manual dispatch of %s refused: %s", step.case_id, response.text[:200])
        else:
            self.answered["dispatch"] += 1

    async def _submit_report(self, at: datetime) -> None:
        plan = self.reports.draw()
        serial = next(self._serial)
        report_id = f"R{self._run_id}{serial:08d}"
        reporter = (
            Reporter(name="市民", phone=f"139{self.rng.randrange(10**8):08d}")
            if plan.with_contact
            else None
        )
        data = ReportSubmitted(
            report_id=report_id,
            channel=plan.channel,
            external_id=f"{plan.channel}-{self._run_id}-{serial}",
            category_code=plan.category.code,
            description=f"{plan.category.name_zh} / {plan.category.name_en}",
            location=ReportLocation(lat=round(plan.lat, 7), long=round(plan.lon, 7)),
            attributes=dict(plan.attributes),
            media_urls=[f"https://media.example.invalid/{report_id}.jpg"] if plan.photo else [],
            reported_at=at,
            inspector_id="inspector-07" if plan.channel == "inspector" else None,
            reporter=reporter,
        )
        await self._send(data, at)
        self.submitted[plan.channel] += 1

    async def _send(self, data: EventData, at: datetime) -> None:
        assert self._producer is not None
        envelope = make_event(data, source=SOURCE, time=at)
        await self._producer.send(
            self.prefix + data.topic,
            encode(envelope),
            key=envelope.subject.encode(),
            headers=kafka_headers(envelope),
        )
