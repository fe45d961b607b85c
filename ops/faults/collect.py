"""The audit's I/O: facts read from the topics (from offset 0, no consumer group) and the
services' schemas, once the run is over and the services are stopped."""

from __future__ import annotations

import contextlib
import functools
import importlib
import re
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from datetime import datetime

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from ops import dlq
from ops.faults.audit import (
    DeadLetterSeen,
    Dispatch,
    Facts,
    Firing,
    PoisonSent,
    Verdict,
)
from services.scoring import recompute as scoring_recompute
from services.scoring.settings import Settings as ScoringSettings
from services.supervision import store as supervision_store
from services.supervision.domain.rules import Rules
from services.supervision.domain.timers import armed_timers
from shared.calendar import WorkCalendar
from shared.db import create_pool, ident
from shared.events import Envelope, PoisonMessage, decode
from shared.events.assignments import CaseDispatched, CaseEscalated, CaseRedispatched
from shared.events.cases import CaseMerged, CaseRegistered, ReportRejected
from shared.events.reports import ReportSubmitted
from shared.events.supervision import CaseLookbackDue, CaseNoticeIssued, CaseOverdue, CaseWarned
from shared.kafka import client_options, partitions_of, read_to_end
from shared.kafka import end_offsets as kafka_end_offsets
from shared.reference import load_reference
from shared.runtime import ServiceRuntime
from shared.settings import KafkaSettings
from shared.topics import DLQ_SUFFIX, SERVICES, TOPICS

MARKER = re.compile(rb"faults-poison-[0-9a-z]+-[0-9]+")


def _runtime(service: str, **settings: object) -> ServiceRuntime:
    """The service's runtime, only built (no I/O): its subscriptions are where groups are named."""
    app = importlib.import_module(f"services.{service}.app")
    if not settings:
        return app.build()  # type: ignore[no-any-return]
    module = importlib.import_module(f"services.{service}.settings")
    return app.build(module.Settings(**settings))  # type: ignore[no-any-return]


@functools.cache
def groups() -> dict[str, tuple[str, ...]]:
    """Every consumer group of the four services, unprefixed, and the base topics it reads."""
    out: dict[str, tuple[str, ...]] = {}
    for service in SERVICES:
        runtime = _runtime(service, topic_prefix="")
        for sub in runtime.subscriptions:
            out[runtime.group_for(sub.topics[0])] = sub.topics
    return out


def group_of(service: str, topic: str) -> str:
    """A service's consumer group on a base topic, as the service itself names it."""
    return _runtime(service).group_for(topic)


async def events_on(cfg: KafkaSettings, topic: str) -> AsyncIterator[Envelope]:
    """Every event on ``topic``, from offset 0 to the end offsets seen at the start.

    Poison is skipped here: the audit judges it from the dead-letter topics.
    """
    consumer = AIOKafkaConsumer(
        enable_auto_commit=False, max_partition_fetch_bytes=4 * 1024 * 1024, **client_options(cfg)
    )
    await consumer.start()
    try:
        async for _, records in read_to_end(consumer, [topic], max_records=5000):
            for r in records:
                with contextlib.suppress(PoisonMessage):
                    yield decode(r.value)
    finally:
        await consumer.stop()


async def end_offsets(cfg: KafkaSettings, topics: list[str]) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(enable_auto_commit=False, **client_options(cfg))
    await consumer.start()
    try:
        tps = await partitions_of(consumer, topics)
        if not tps:
            return {}
        consumer.assign(tps)
        return await kafka_end_offsets(consumer, tps)
    finally:
        await consumer.stop()


async def committed(
    cfg: KafkaSettings, group: str, tps: list[TopicPartition]
) -> dict[TopicPartition, int]:
    """A group's committed offsets, read without joining it (OffsetFetch; Tansu has no admin
    API for it). A partition never committed counts as 0."""
    consumer = AIOKafkaConsumer(group_id=group, enable_auto_commit=False, **client_options(cfg))
    await consumer.start()
    try:
        return {tp: (await consumer.committed(tp)) or 0 for tp in tps}
    finally:
        await consumer.stop()


async def lag(
    cfg: KafkaSettings, prefix: str, wanted: dict[str, tuple[str, ...]] | None = None
) -> dict[str, int]:
    """Messages each consumer group (every one, unless ``wanted``) has not committed yet."""
    wanted = groups() if wanted is None else wanted
    ends = await end_offsets(cfg, sorted({prefix + t for ts in wanted.values() for t in ts}))
    out: dict[str, int] = {}
    for group, topics in wanted.items():
        names = {prefix + t for t in topics}
        tps = [tp for tp in ends if tp.topic in names]
        done = await committed(cfg, prefix + group, tps)
        out[group] = sum(max(0, ends[tp] - done[tp]) for tp in tps)
    return out


async def outbox_rows(
    database_url: str, services: Iterable[str] = ("intake", "dispatch", "supervision", "scoring")
) -> dict[str, int]:
    """Rows each service's outbox has not published yet (a schema per service)."""
    conn = await asyncpg.connect(database_url)
    try:
        return {
            # identifiers cannot be bound: the schema name goes through ident()
            schema: int(await conn.fetchval(f"SELECT count(*) FROM {ident(schema)}.outbox"))  # noqa: S608
            for schema in sorted(set(services) & {"intake", "dispatch", "supervision", "scoring"})
        }
    finally:
        await conn.close()


async def _due_by_case_state(database_url: str, cutoff: datetime) -> set[tuple[str, str, int]]:
    """Timers each case's own state says are armed and due before ``cutoff``.

    Independent of the timers table (a materialised view of the same state), so a
    row deleted without its timer firing still shows: the state would still say
    the step is due and its light not shown.
    """
    ref = load_reference()
    rules = Rules(ref.supervision, WorkCalendar.from_data(ref.calendar))
    pool = await create_pool(database_url, "supervision", 1, 1)
    try:
        async with pool.acquire() as conn:
            states = await supervision_store.all_cases(conn)
    finally:
        await pool.close()
    return {
        (state.case_id, timer.kind, timer.level)
        for state in states
        if not state.is_parked
        for timer in armed_timers(state, rules)
        if timer.due_at < cutoff
    }


async def collect(
    cfg: KafkaSettings,
    prefix: str,
    database_url: str,
    poison: list[PoisonSent],
    timers_cutoff: datetime,
) -> Facts:
    """Read every fact the audit judges. The services must be stopped."""
    reports: dict[str, set[str]] = defaultdict(set)
    async for event in events_on(cfg, prefix + "reports"):
        if isinstance(event.data, ReportSubmitted):
            reports[event.data.report_id].add(event.id)

    verdicts: list[Verdict] = []
    async for event in events_on(cfg, prefix + "cases"):
        d = event.data
        if isinstance(d, CaseRegistered | CaseMerged):
            verdicts.append(Verdict(d.report_id, event.type, event.id, d.case_id))
        elif isinstance(d, ReportRejected):
            verdicts.append(Verdict(d.report_id, event.type, event.id, None))

    dispatches: list[Dispatch] = []
    async for event in events_on(cfg, prefix + "assignments"):
        d = event.data
        if isinstance(d, CaseDispatched | CaseRedispatched):
            dispatches.append(Dispatch(d.case_id, event.type, event.id, d.dispatch_number))
        elif isinstance(d, CaseEscalated):
            dispatches.append(Dispatch(d.case_id, event.type, event.id, None))

    firings: list[Firing] = []
    async for event in events_on(cfg, prefix + "supervision"):
        d = event.data
        key: tuple[str, ...]
        if isinstance(d, CaseWarned | CaseOverdue):
            key = (d.case_id, event.type, d.timer, str(d.dispatch_number))
        elif isinstance(d, CaseNoticeIssued):
            key = (d.case_id, event.type, d.timer, str(d.dispatch_number), str(d.level))
        elif isinstance(d, CaseLookbackDue):
            key = (d.case_id, event.type)
        else:
            continue
        firings.append(Firing(key, event.id))

    dead: list[DeadLetterSeen] = []
    for topic in (t.base for t in TOPICS):
        for letter in await dlq.read_dead_letters(cfg, prefix + topic + DLQ_SUFFIX):
            found = MARKER.search(letter.value)
            dead.append(
                DeadLetterSeen(
                    topic + DLQ_SUFFIX,
                    letter.error("group"),
                    found.group().decode() if found else None,
                    letter.error("exception") + ": " + letter.error("message")[:120],
                    source=":".join(letter.error(h) for h in ("topic", "partition", "offset")),
                )
            )

    conn = await asyncpg.connect(database_url)
    try:
        intake_cases = {
            r["case_id"]: r["report_id"]
            for r in await conn.fetch("SELECT case_id, report_id FROM intake.cases")
        }
        dispatch_cases = {
            r["case_id"] for r in await conn.fetch("SELECT case_id FROM dispatch.cases")
        }
        overdue = {
            (r["case_id"], r["kind"], int(r["level"]))
            for r in await conn.fetch(
                "SELECT case_id, kind, level FROM supervision.timers"
                " WHERE NOT paused AND due_at < $1",
                timers_cutoff,
            )
        }
    finally:
        await conn.close()
    overdue |= await _due_by_case_state(database_url, timers_cutoff)

    settings = ScoringSettings()
    target = f"{scoring_recompute.live_schema(settings)}_recompute"
    await scoring_recompute.recompute(settings, target)
    differences = await scoring_recompute.compare(
        settings.database_url, scoring_recompute.live_schema(settings), target
    )

    return Facts(
        reports=dict(reports),
        verdicts=verdicts,
        intake_cases=intake_cases,
        dispatches=dispatches,
        dispatch_cases=dispatch_cases,
        firings=firings,
        overdue_armed=sorted(overdue),
        dead_letters=dead,
        poison=poison,
        score_differences=[d.describe() for d in differences],
        lag=await lag(cfg, prefix),
    )
