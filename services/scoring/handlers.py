"""Scoring's consumer: every event of the four topics folded into case facts and unit figures.

One handler serves ``cases``, ``assignments``, ``feedback`` and ``supervision``.
For a batch, in the consumer's transaction: lock the facts of the cases the
batch touches, apply the events, and add to the unit figures the difference
between each changed case's contribution after and before — one statement
per table for the whole batch. Bounce-backs and rejected reports are
recorded once each and counted as they are raised. Nothing is published
here: the publisher reads what changed (``dirty``) on its own clock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from operator import attrgetter

from services.scoring import metrics, store
from services.scoring.context import ScoringContext
from services.scoring.domain.facts import (
    FACT_EVENT_TYPES,
    CaseFact,
    apply_event,
    contribution,
    rebound_contribution,
    rejection_contribution,
)
from services.scoring.domain.figures import Totals, accumulate, changes, rows
from shared.events import CaseRebounded, Envelope, ReportRejected
from shared.outbox import Tx
from shared.periods import parse_period

# The type is checked first, a string compare: isinstance on a pydantic model is a Python call
# (ABCMeta), for every event of every batch. The envelope's type names its data's class.
_REBOUNDED = CaseRebounded.event_type
_REJECTED = ReportRejected.event_type
_TYPE = attrgetter("type")


class ScoringHandler:
    """The batch handler, bound to the reference data it attributes cases with."""

    def __init__(self, context: ScoringContext) -> None:
        self.context = context

    async def __call__(self, tx: Tx, events: Sequence[Envelope]) -> None:
        places = self.context.places
        threshold = self.context.repeated_failures
        delta: Totals = {}

        fact_events = [e for e in events if e.type in FACT_EVENT_TYPES]
        if fact_events:
            facts = await store.lock_facts(tx.conn, [e.subject for e in fact_events])
            before: dict[str, CaseFact] = dict(facts)
            for event in fact_events:
                facts[event.subject] = apply_event(facts[event.subject], event)
            # apply_event returns the very fact when an event changes nothing. A replayed event
            # may rebuild an equal one, which is saved again (its difference is zero): cheaper
            # than comparing every fact field by field, instants with their time zones.
            changed = [fact for case_id, fact in facts.items() if fact is not before[case_id]]
            for fact in changed:
                was = contribution(before[fact.case_id], places, threshold)
                for part in changes(was, contribution(fact, places, threshold)):
                    accumulate(delta, part)
            await store.save_facts(
                tx.conn,
                changed,
                before,
                {
                    f.case_id: places.of(f.grid_code, f.area_hint).area if f.grid_code else None
                    for f in changed
                },
            )

        rebounds = [
            store.ReboundRow(
                case_id=d.case_id,
                previous_case_id=d.previous_case_id,
                place_key=d.place_key,
                count=d.count,
                category_code=d.category_code,
                grid_code=d.grid_code,
                department=d.department,
                area=places.of(d.grid_code, d.area).area,
                bureau_notice=d.bureau_notice,
                key_problem=d.key_problem,
                raised_at=e.time,
            )
            for e in events
            if e.type == _REBOUNDED and isinstance(d := e.data, CaseRebounded)
        ]
        if rebounds:
            recorded = await store.record_rebounds(tx.conn, rebounds)
            for row in {r.case_id: r for r in rebounds}.values():
                if row.case_id in recorded:
                    place = places.of(row.grid_code, row.area)
                    for part in rebound_contribution(place, row.department, row.raised_at).values():
                        accumulate(delta, part)

        rejections = [
            (d.report_id, d.channel, e.time)
            for e in events
            if e.type == _REJECTED and isinstance(d := e.data, ReportRejected)
        ]
        fresh = await store.record_rejections(tx.conn, rejections)
        for rejected_at in fresh.values():
            for part in rejection_contribution(places.district, rejected_at).values():
                accumulate(delta, part)

        figures = rows(delta)
        if figures:
            labels = {(k.period_type, k.period) for k in figures}
            await store.note_periods(tx.conn, [parse_period(p, t) for t, p in labels])
            rows_written = await store.add_figures(tx.conn, figures)
            tx.on_commit(lambda: metrics.FIGURE_ROWS.inc(rows_written))
        # Counted once committed: a batch rolled back and retried must not count twice.
        tx.on_commit(lambda: _count(events))


def _count(events: Sequence[Envelope]) -> None:
    for event_type, count in Counter(map(_TYPE, events)).items():
        metrics.EVENTS_AGGREGATED.labels(event_type).inc(count)
