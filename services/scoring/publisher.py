"""The publisher: ``score.published`` when a unit's figures change, and a final one when a period closes.

A background job of the service, on the runtime clock. Consumers only mark
the unit-period rows they change (``dirty``); every ``publish_poll_seconds``
the publisher recomputes the tables those rows belong to and publishes each
unit whose publication would now say something different — but no unit more
than once per ``publish_interval_seconds`` of the clock: a change inside that
interval waits, still marked, for the next look. A department's or area's
rank depends on the others, so a changed row re-reads its whole table (and,
for a month, the later months of its quarter, whose talk flags it feeds).

A look publishes at most ``publish_max_per_look`` scores (whole tables at a
time, departments and areas first), so a burst of changes — a replay, a
backlog after an outage — is published over several looks instead of taking
the machine from the consumers; the rest stays marked for the next look.

When the clock passes a period's end (plus ``final_grace_seconds``), every
unit of the period gets a final publication, and the period publishes nothing
after: its figures in the database still follow late events (the cohort
keeps its definition), but what was announced as final stays final.

One publisher runs at a time across instances (an advisory lock held for the
look). Each period's finals and each table's updates commit on their own, so
a look that fails part-way keeps what it published and tries the rest again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from services.scoring import metrics, store
from services.scoring.context import ScoringContext
from services.scoring.domain.figures import PUBLISHED_UNIT_TYPES, RANKED_UNIT_TYPES, UnitType
from services.scoring.domain.scores import ScoreRow, ScoreTable
from services.scoring.tables import RATES, digest, load_table, score_published
from shared.db import is_transient, schema_lock_id, session_lock
from shared.events import make_event
from shared.outbox import Tx
from shared.periods import Period, parse_period
from shared.runtime import ServiceRuntime

if TYPE_CHECKING:
    from shared.db import Connection

log = logging.getLogger(__name__)

SOURCE = "scoring"
_LOCK_BASE = 92_000_000


class Publisher:
    def __init__(self, context: ScoringContext) -> None:
        self.context = context

    async def run(self, runtime: ServiceRuntime) -> None:
        """The background job: look, publish, sleep, until cancelled."""
        assert runtime.clock is not None
        settings = self.context.settings
        backoff = settings.publish_poll_seconds
        while True:
            try:
                await self.publish_once(runtime, runtime.clock.now())
                backoff = settings.publish_poll_seconds
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                level = logging.WARNING if is_transient(exc) else logging.ERROR
                log.log(level, "publishing scores failed, retrying in %.1fs: %r", backoff, exc)
                backoff = min(backoff * 2, settings.retry_max_backoff_seconds * 6)
            await asyncio.sleep(backoff)

    async def publish_once(self, runtime: ServiceRuntime, now: datetime) -> int:
        """One look at what ended and what changed; returns how many scores were published.

        Each period's finals and each table's updates are their own short
        transaction, so the consumers never wait long on a row the publisher holds.
        """
        lock_id = schema_lock_id(_LOCK_BASE, runtime.schema)
        async with runtime.db.acquire() as conn, session_lock(conn, lock_id) as publisher:
            if not publisher:
                return 0  # another instance is publishing
            published = await self._close_periods(runtime, conn, now)
            published += await self._refresh_changed(runtime, conn, now)
        return published

    async def _close_periods(self, runtime: ServiceRuntime, conn: Connection, now: datetime) -> int:
        grace = timedelta(seconds=self.context.settings.final_grace_seconds)
        published = 0
        for period_type, label in await store.periods_to_close(conn, now - grace):
            period = parse_period(label, period_type)  # type: ignore[arg-type]
            async with runtime.transaction(conn) as tx:
                for unit_type in PUBLISHED_UNIT_TYPES:
                    table = await load_table(conn, self.context, unit_type, period)
                    said = _emit(tx, unit_type, period, table, table.rows, now, final=True)
                    await store.save_publications(
                        conn, period.type, period.label, unit_type, said, now, final=True
                    )
                    published += len(said)
                await store.close_period(conn, period.type, period.label, now)
            for unit_type in (*PUBLISHED_UNIT_TYPES, "district"):
                await self._forget_changes(conn, period.type, period.label, unit_type)
        return published

    async def _forget_changes(
        self, conn: Connection, period_type: str, period: str, unit_type: str
    ) -> None:
        """Clear the marks of a table that publishes nothing more (closed, or the district)."""
        async with conn.transaction():
            seen = await store.dirty_revisions(conn, period_type, period, unit_type)
            await store.clear_dirty(conn, period_type, period, unit_type, seen)

    async def _refresh_changed(
        self, runtime: ServiceRuntime, conn: Connection, now: datetime
    ) -> int:
        interval = timedelta(seconds=self.context.settings.publish_interval_seconds)
        work: set[tuple[str, str, UnitType]] = set()
        for group in await store.dirty_groups(conn, now - interval):
            if group.closed or group.unit_type not in PUBLISHED_UNIT_TYPES:
                await self._forget_changes(conn, group.period_type, group.period, group.unit_type)
                continue
            work.add((group.period_type, group.period, group.unit_type))
            if group.unit_type in RANKED_UNIT_TYPES and group.period_type == "month":
                month = parse_period(group.period, "month")
                quarter = month.enclosing("quarter")
                later = [m for m in quarter.months() if m.first_day > month.first_day]
                for period in (*later, quarter):
                    if not await store.period_closed(conn, period.type, period.label):
                        work.add((period.type, period.label, group.unit_type))
        # Departments and areas first, cells last; what the budget leaves stays marked.
        priority = {unit_type: i for i, unit_type in enumerate(PUBLISHED_UNIT_TYPES)}
        budget = self.context.settings.publish_max_per_look
        published = 0
        for period_type, label, unit_type in sorted(work, key=lambda w: (priority[w[2]], w)):
            if published >= budget:
                break
            period = parse_period(label, period_type)  # type: ignore[arg-type]
            async with runtime.transaction(conn) as tx:
                published += await self._refresh(tx, unit_type, period, now)
        return published

    async def _refresh(self, tx: Tx, unit_type: UnitType, period: Period, now: datetime) -> int:
        conn = tx.conn
        interval = timedelta(seconds=self.context.settings.publish_interval_seconds)
        seen = await store.dirty_revisions(conn, period.type, period.label, unit_type)
        table = await load_table(conn, self.context, unit_type, period)
        ranked = unit_type in RANKED_UNIT_TYPES
        # An unranked unit's publication depends on its own row only.
        rows = table.rows if ranked else tuple(r for r in table.rows if r.unit_id in seen)
        previous = await store.publications(conn, period.type, period.label, unit_type)
        due: list[ScoreRow] = []
        waiting: set[str] = set()
        for row in rows:
            said = digest(score_published(unit_type, period, table, row, final=False))
            before = previous.get(row.unit_id)
            if before is not None and before.digest == said:
                continue
            if before is not None and now - before.published_at < interval:
                waiting.add(row.unit_id)
                continue
            due.append(row)
        digests = _emit(tx, unit_type, period, table, due, now, final=False)
        await store.save_publications(
            conn, period.type, period.label, unit_type, digests, now, final=False
        )
        await store.clear_dirty(
            conn,
            period.type,
            period.label,
            unit_type,
            {unit: rev for unit, rev in seen.items() if unit not in waiting},
        )
        await store.mark_dirty(conn, period.type, period.label, unit_type, waiting - seen.keys())
        if ranked and period.contains(now):
            _export_metrics(unit_type, period, table)
        return len(digests)


def _emit(
    tx: Tx,
    unit_type: UnitType,
    period: Period,
    table: ScoreTable,
    rows: Iterable[ScoreRow],
    now: datetime,
    final: bool,
) -> dict[str, str]:
    """Publish ``rows``; returns the digest of each unit's publication."""
    digests: dict[str, str] = {}
    for row in rows:
        data = score_published(unit_type, period, table, row, final)
        tx.emit(make_event(data, source=SOURCE, time=now))
        digests[row.unit_id] = digest(data)
    if digests:
        metrics.SCORES_PUBLISHED.labels(unit_type, str(final).lower()).inc(len(digests))
    return digests


def _export_metrics(unit_type: UnitType, period: Period, table: ScoreTable) -> None:
    for row in table.rows:
        labels = (unit_type, row.unit_id, period.type)
        if row.score is not None:
            metrics.UNIT_SCORE.labels(*labels).set(row.score)
        if row.rank is not None:
            metrics.UNIT_RANK.labels(*labels).set(row.rank)
        for name in RATES:
            value = row.rates.get(name)
            if value is not None:
                metrics.UNIT_RATE.labels(*labels, name).set(value)
