"""Intake's units of work: register reports, follow the other topics, take feedback.

Thin: load what the decision needs (store), decide (domain), save and emit,
all in the caller's transaction: the consumer's batch for the topics, the
request's for HTTP. Registration is the same code for every path.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from services.intake import metrics, store
from services.intake.domain import (
    Accepted,
    FeedbackRefused,
    FeedbackRequest,
    Merged,
    Registered,
    Repeated,
    Submission,
    TimelineEntry,
    Verdict,
    assess_batch,
    authorise,
    duplicate_search,
    feedback_event,
    register_batch,
)
from services.intake.domain.progress import STEP_ORDER, Folded, fold_onto
from services.intake.domain.registration import DuplicateSearch, duplicate_horizon, reporter_ref
from services.intake.settings import Settings
from shared.apikeys import Principal
from shared.clock import Clock, SystemClock
from shared.events.envelope import Envelope, make_event
from shared.events.reports import ReportSubmitted
from shared.outbox import Tx
from shared.reference import ReferenceData, load_reference

if TYPE_CHECKING:
    from shared.db import Connection
    from shared.runtime import ServiceRuntime

SOURCE = "intake"
#: How often (on the service's clock) masters past every duplicate window are pruned.
PRUNE_EVERY = timedelta(hours=1)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeedbackPosted:
    envelope: Envelope


class Intake:
    """What intake's consumers and routes share: reference data, the pseudonym secret, the runtime."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.secret = settings.intake_reporter_key.get_secret_value().encode()
        self._ref: ReferenceData | None = None
        self.runtime: ServiceRuntime | None = None

    def load_reference(self) -> None:
        directory = self.settings.reference_data_dir
        self._ref = load_reference(Path(directory) if directory else None)

    @property
    def ref(self) -> ReferenceData:
        if self._ref is None:
            raise RuntimeError("reference data not loaded: the service has not started")
        return self._ref

    def runtime_or_fail(self) -> ServiceRuntime:
        if self.runtime is None:
            raise RuntimeError("intake is not wired to a runtime")
        return self.runtime

    @property
    def clock(self) -> Clock:
        if self.runtime is None or self.runtime.clock is None:
            return SystemClock()
        return self.runtime.clock

    def submission(self, report: ReportSubmitted, submitted_at: datetime) -> Submission:
        return Submission(
            report=report,
            submitted_at=submitted_at,
            reporter_ref=reporter_ref(self.secret, report.reporter),
        )

    # -- registration -------------------------------------------------------------

    async def register(self, tx: Tx, submissions: Sequence[Submission], path: str) -> list[Verdict]:
        """File a batch of reports: one verdict each, cases stored, events emitted on commit."""
        started = time.perf_counter()
        conn = tx.conn
        ref = self.ref
        # Assessing needs no state, so it comes first: the categories to lock follow from it.
        assessments = assess_batch(submissions, ref)
        await store.lock_categories(
            conn, {a.category.code for a in assessments if isinstance(a, Accepted)}
        )
        known = await store.known_reports(conn, [s.key for s in submissions])
        searches: list[tuple[int, DuplicateSearch]] = []
        for index, assessed in enumerate(assessments):
            if isinstance(assessed, Accepted) and submissions[index].key not in known:
                search = duplicate_search(assessed, submissions[index].report.reported_at)
                if search is not None:
                    searches.append((index, search))
        candidates = await store.duplicate_candidates(conn, searches)
        verdicts = register_batch(submissions, assessments, known, candidates, ref)
        envelopes = [_verdict_event(v) for v in verdicts]
        data = [None if e is None else e.data.model_dump_json() for e in envelopes]
        filing = await store.file_cases(
            conn,
            [
                _filed_case(v, envelope, detail)
                for v, envelope, detail in zip(verdicts, envelopes, data, strict=True)
                if isinstance(v, Registered | Merged) and envelope is not None and detail
            ],
        )
        verdicts = await self._concede(conn, verdicts, filing.inserted)
        for verdict, envelope, detail in zip(verdicts, envelopes, data, strict=True):
            if envelope is not None and detail and not isinstance(verdict, Repeated):
                # The case's detail column stores the same JSON: serialised once.
                tx.emit(envelope, data_json=detail)
        # Events about these cases came before their registration (a replay): fold them in.
        await self.refold(conn, filing.followed_early)
        # Counted once committed: a batch rolled back and retried must not count twice.
        counted = verdicts
        tx.on_commit(lambda: self._count(counted, path, started))
        return verdicts

    async def _concede(
        self, conn: Connection, verdicts: list[Verdict], inserted: set[str]
    ) -> list[Verdict]:
        """A concurrent transaction filed the same report first: its case is the one."""
        lost = [
            v
            for v in verdicts
            if isinstance(v, Registered | Merged) and v.event.case_id not in inserted
        ]
        if not lost:
            return verdicts
        winners = await store.known_reports(conn, [v.submission.key for v in lost])
        return [
            Repeated(v.submission, winners.get(v.submission.key, v.event.case_id))
            if isinstance(v, Registered | Merged) and v.event.case_id not in inserted
            else v
            for v in verdicts
        ]

    def _count(self, verdicts: Sequence[Verdict], path: str, started: float) -> None:
        # Tallied per batch first: a label lookup per report costs more than the report's SQL.
        received: Counter[str] = Counter()
        registered: Counter[str] = Counter()
        merged: Counter[str] = Counter()
        repeated: Counter[str] = Counter()
        rejected: Counter[str] = Counter()
        latency = metrics.REPORT_TO_REGISTERED.labels(path)
        now = self.clock.now()
        for v in verdicts:
            report = v.submission.report
            # Only the city's channels become label values: the set stays bounded.
            channel = report.channel if self.ref.channel(report.channel) else "unknown"
            received[channel] += 1
            if isinstance(v, Repeated):
                repeated[channel] += 1
                continue
            if isinstance(v, Registered):
                registered[channel] += 1
            elif isinstance(v, Merged):
                merged[channel] += 1
            else:
                rejected.update(reason.code for reason in v.event.reasons)
            latency.observe(max(0.0, (now - report.reported_at).total_seconds()))
        for channel, n in received.items():
            metrics.REPORTS_IN.labels(channel, path).inc(n)
        for channel, n in registered.items():
            metrics.CASES_REGISTERED.labels(channel, path).inc(n)
        for channel, n in merged.items():
            metrics.CASES_MERGED.labels(channel).inc(n)
        for channel, n in repeated.items():
            metrics.REPORTS_REPEATED.labels(channel).inc(n)
        for code, n in rejected.items():
            metrics.REPORTS_REJECTED.labels(code).inc(n)
        metrics.REGISTRATION_SECONDS.labels(path).observe(time.perf_counter() - started)

    async def register_one(
        self, report: ReportSubmitted, submitted_at: datetime, path: str
    ) -> tuple[Verdict, store.CaseRecord | None]:
        """Register one report from HTTP in its own transaction; a repeat comes back with its case."""
        submission = self.submission(report, submitted_at)
        async with self.runtime_or_fail().transaction() as tx:
            [verdict] = await self.register(tx, [submission], path)
            record = None
            if isinstance(verdict, Repeated):
                record = await store.case_by_report(tx.conn, report.channel, report.external_id)
        return verdict, record

    async def on_reports(self, tx: Tx, events: Sequence[Envelope]) -> None:
        """``reports``: every report.submitted of the batch registered in one go."""
        submissions = []
        for env in events:
            if not isinstance(env.data, ReportSubmitted):
                raise TypeError(f"{env.type} does not belong on the reports topic")
            submissions.append(self.submission(env.data, env.time))
        if submissions:
            await self.register(tx, submissions, "kafka")

    # -- the read model -----------------------------------------------------------

    async def on_case_events(self, tx: Tx, events: Sequence[Envelope]) -> None:
        """``assignments``, ``feedback``, ``supervision``: each event into its case's timeline."""
        await self.follow(tx.conn, [_entry(env) for env in events if env.type in STEP_ORDER])

    async def follow(self, conn: Connection, entries: Sequence[TimelineEntry]) -> None:
        """Append entries to their cases' timelines and bring the cases' progress up to date.

        A case whose new entries all sort after what its saved state folded is
        stepped on from that state; any other (a late event, no saved fold)
        has its whole timeline folded again.
        """
        if not entries:
            return
        await store.lock_cases(conn, {e.data.subject() for e in entries})
        appended = await store.append_timeline(conn, entries)
        folds: dict[str, Folded] = {}
        again: set[str] = set()
        for case_id, new in appended.entries.items():
            start = appended.folded[case_id]
            # No start is no saved fold, not an empty timeline: that case is folded whole.
            folded = None if start is None else fold_onto(start, new)
            if folded is None:
                again.add(case_id)
            else:
                folds[case_id] = folded
        if again:
            folds.update(await self._fold_whole(conn, again))
        await store.save_progress(conn, folds)

    async def refold(self, conn: Connection, case_ids: set[str]) -> None:
        """Fold the whole timelines of these cases again and save their progress."""
        if not case_ids:
            return
        await store.lock_cases(conn, case_ids)
        await store.save_progress(conn, await self._fold_whole(conn, case_ids))

    @staticmethod
    async def _fold_whole(conn: Connection, case_ids: set[str]) -> dict[str, Folded]:
        folds: dict[str, Folded] = {}
        for case_id, timeline in (await store.timelines(conn, case_ids)).items():
            folded = fold_onto(None, timeline)
            if folded is not None:
                folds[case_id] = folded
        return folds

    async def prune_masters(self) -> int:
        """Forget duplicate masters closed longer ago than any category's window."""
        cutoff = self.clock.now() - duplicate_horizon(self.ref)
        async with self.runtime_or_fail().transaction() as tx:
            return await store.prune_duplicate_masters(tx.conn, cutoff)

    async def prune_masters_forever(self, runtime: ServiceRuntime) -> None:
        """The background job: prune, then sleep an hour of the service's clock."""
        assert runtime.clock is not None
        while True:
            try:
                pruned = await self.prune_masters()
                if pruned:
                    log.info("pruned %d duplicate masters past every window", pruned)
            except Exception as exc:  # the database may be down; the next round catches up
                log.warning("pruning duplicate masters failed: %r", exc)
            await runtime.clock.sleep_until(runtime.clock.now() + PRUNE_EVERY)

    # -- feedback over HTTP -------------------------------------------------------

    async def post_feedback(
        self, tx: Tx, case_id: str, request: FeedbackRequest, principal: Principal
    ) -> FeedbackPosted | FeedbackRefused | None:
        """Publish a department's feedback on a case (None: no such case)."""
        conn = tx.conn
        await store.lock_cases(conn, [case_id])
        record = await store.case_record(conn, case_id)
        if record is None:
            return None
        allowed = authorise(principal, case_id, request, record.progress)
        if isinstance(allowed, FeedbackRefused):
            return allowed
        request = allowed
        decided = feedback_event(case_id, request, record.progress, self.ref)
        if isinstance(decided, FeedbackRefused):
            return decided
        envelope = make_event(decided, source=SOURCE, time=self.clock.now())
        tx.emit(envelope)
        await self.follow(conn, [_entry(envelope)])
        tx.on_commit(metrics.FEEDBACK_POSTED.labels(envelope.type).inc)
        return FeedbackPosted(envelope)


def _verdict_event(v: Verdict) -> Envelope | None:
    """The event announcing a verdict; a repeated report announces nothing new."""
    if isinstance(v, Repeated):
        return None
    return make_event(v.event, source=SOURCE, time=v.submission.submitted_at)


def _entry(envelope: Envelope) -> TimelineEntry:
    # In UTC, as the timeline gives it back: a state stepped over from this entry (closed_at,
    # updated_at) must be the very state a fold of the stored timeline gives, offset included.
    return TimelineEntry(envelope.id, envelope.time.astimezone(UTC), envelope.source, envelope.data)


def _filed_case(v: Registered | Merged, envelope: Envelope, detail: str) -> store.FiledCase:
    report = v.submission.report
    reporter = report.reporter
    contact = None
    if reporter is not None and (reporter.name or reporter.phone):
        contact = store.Contact(v.submission.reporter_ref, reporter.name, reporter.phone)
    return store.FiledCase(
        case_id=v.event.case_id,
        event_id=envelope.id,
        report_id=report.report_id,
        channel=report.channel,
        external_id=report.external_id,
        outcome="registered" if isinstance(v, Registered) else "merged",
        master_case_id=v.event.master_case_id if isinstance(v, Merged) else None,
        category_code=v.event.category_code,
        grid_code=v.site.cell.code,
        area=v.site.area,
        site_lat=v.site.lat,
        site_long=v.site.long,
        reported_at=report.reported_at,
        registered_at=v.submission.submitted_at,
        report=report,
        detail=detail,
        contact=contact,
    )
