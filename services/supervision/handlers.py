"""Supervision's consumer: each batch of ``cases``, ``assignments`` and ``feedback`` events,
in the consumer's one transaction: lock the cases -> domain decision -> save the cases,
re-sync their timers, emit.

The timers table follows the case rows (``store.sync_timers``) in the same
transaction, and the scheduler is told when a timer nearer than the one it
sleeps for was armed, so it wakes early after the commit.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from services.supervision import metrics, store
from services.supervision.domain import case as domain
from services.supervision.domain.case import CaseState, Emission, Outcome
from services.supervision.domain.rebound import (
    ClosedCase,
    Place,
    Search,
    find_rebound,
    quarter_of,
    rebound_event,
    search_for,
)
from services.supervision.domain.rules import Rules
from services.supervision.domain.timers import armed_timers, first_due
from shared.calendar import WorkCalendar
from shared.events.assignments import CaseDispatched, CaseEscalated, CaseRedispatched
from shared.events.cases import CaseRegistered
from shared.events.envelope import Envelope, make_event
from shared.events.feedback import (
    CaseAccepted,
    CaseHandled,
    CaseParked,
    CaseUnparked,
    CaseVerificationFailed,
    CaseVerified,
)
from shared.events.supervision import (
    CaseClosed,
    CaseLookbackDue,
    CaseNoticeIssued,
    CaseOverdue,
    CaseRebounded,
    CaseReworkOrdered,
    CaseWarned,
)
from shared.outbox import Tx
from shared.reference import ReferenceData, load_reference

if TYPE_CHECKING:
    from shared.db import Connection

#: ``source`` of every event supervision publishes.
SOURCE = "supervision"


@dataclass
class Supervision:
    """What the handlers and the scheduler share: reference data and the scheduler's wake-up.

    Reference data is read on first use, not when the service is built, so
    building stays free of I/O.
    """

    reference_dir: str | None = None
    on_armed: Callable[[datetime], None] = field(default=lambda due: None)

    @cached_property
    def reference(self) -> ReferenceData:
        return load_reference(Path(self.reference_dir) if self.reference_dir else None)

    @cached_property
    def rules(self) -> Rules:
        ref = self.reference
        return Rules(ref.supervision, WorkCalendar.from_data(ref.calendar))

    def radius_m(self, category_code: str) -> float:
        category = self.reference.category(category_code)
        return category.duplicates.radius_m if category is not None else 0.0

    # -- the consumers --------------------------------------------------------------

    async def handle(self, tx: Tx, events: Sequence[Envelope]) -> None:
        """One batch of ``cases``, ``assignments`` and ``feedback`` events, in any mix.

        Each case is locked, folded and saved once for all its events in the batch: its
        registration and dispatch (two topics) often arrive together. Events of one case
        may come in any order across topics; the fold does not depend on it.
        """
        relevant = [e for e in events if isinstance(e.data, _HANDLED)]
        if not relevant:
            return
        rules = self.rules
        before = await store.lock_cases(tx.conn, (e.subject for e in relevant))
        states = dict(before)
        # The bounce-back candidates of every case registered here, in one look-up: what
        # it reads (closed cases) does not change in this batch, rebounds aside (below).
        searches: dict[str, Search] = {}
        for env in relevant:
            data = env.data
            if (
                isinstance(data, CaseRegistered)
                and states[data.case_id].registered_at is None
                and data.case_id not in searches
            ):
                searches[data.case_id] = self._search(data)
        candidates = await store.closed_candidates(tx.conn, list(searches.values()))
        emissions: list[Emission] = []
        for env in relevant:
            data = env.data
            state = states[env.subject]
            if isinstance(data, CaseRegistered):
                # Learn the place and catch bounce-backs; the rest of a registration is intake's.
                if state.registered_at is None:
                    state = domain.on_registered(state, data)
                    found = candidates.get(data.case_id)
                    if found:
                        search = searches[data.case_id]
                        state, rebound = await self._rebound(tx.conn, state, data, search, found)
                        if rebound is not None:
                            emissions.append(rebound)
                states[env.subject] = state
                continue
            if isinstance(data, (CaseDispatched, CaseRedispatched)):
                # Dispatches arm (and re-arm) the timers.
                outcome = domain.on_dispatched(state, data, rules)
            elif isinstance(data, CaseEscalated):
                # An escalation leaves nobody to chase.
                outcome = Outcome(domain.on_escalated(state, env.time))
            else:
                # What happened on the ground stops clocks, starts verification, closes or reworks.
                outcome = self._feedback(state, env)
            states[env.subject] = outcome.state
            emissions.extend(outcome.emissions)
        await self._save(tx, before, states, emissions)

    def _feedback(self, state: CaseState, env: Envelope) -> Outcome:
        data, at, rules = env.data, env.time, self.rules
        if isinstance(data, CaseAccepted):
            return Outcome(domain.on_accepted(state, at))
        if isinstance(data, CaseHandled):
            return domain.on_handled(state, at, rules)
        if isinstance(data, CaseVerified):
            return domain.on_verified(state, at, rules, lookback=data.lookback)
        if isinstance(data, CaseVerificationFailed):
            return domain.on_verification_failed(
                state, at, data.reason, rules, lookback=data.lookback
            )
        if isinstance(data, CaseParked):
            return Outcome(domain.on_parked(state, at))
        assert isinstance(data, CaseUnparked)
        return Outcome(domain.on_unparked(state, at, rules))

    # -- shared steps ---------------------------------------------------------------

    def _search(self, data: CaseRegistered) -> Search:
        place = Place(
            case_id=data.case_id,
            category_code=data.category_code,
            grid_code=data.grid_code,
            lat=data.lat,
            long=data.long,
            component_id=data.component_id,
        )
        rule = self.rules.supervision.rebound
        return search_for(place, data.registered_at, self.radius_m(data.category_code), rule)

    async def _rebound(
        self,
        conn: Connection,
        state: CaseState,
        data: CaseRegistered,
        search: Search,
        candidates: list[ClosedCase],
    ) -> tuple[CaseState, Emission | None]:
        """Record the bounce-back of a registered case from one of ``candidates``, if any.

        The count reads the rebounds recorded so far, this batch's included:
        two cases back at one place in one batch count 1 and 2.
        """
        rule = self.rules.supervision.rebound
        radius = self.radius_m(data.category_code)
        place, at, since = search.place, search.until, search.since
        previous = find_rebound(place, at, candidates, radius, rule)
        if previous is None:
            return state, None
        quarter = quarter_of(at, self.rules.calendar.timezone)
        in_window, in_quarter = await store.earlier_rebounds(
            conn, previous.place_key, since, quarter.label
        )
        event = rebound_event(place, data.area, previous, in_window, in_quarter, rule)
        await store.record_rebound(
            conn,
            case_id=event.case_id,
            place_key=event.place_key,
            previous_case_id=event.previous_case_id,
            category_code=event.category_code,
            grid_code=event.grid_code,
            area=event.area,
            department=event.department,
            count=event.count,
            bureau_notice=event.bureau_notice,
            key_problem=event.key_problem,
            quarter=quarter.label,
            rebounded_at=at,
            in_quarter=in_quarter + 1,
        )
        state = replace(state, place_key=previous.place_key, rebound_of=previous.place.case_id)
        return state, Emission(event, at)

    async def _save(
        self,
        tx: Tx,
        before: dict[str, CaseState],
        states: dict[str, CaseState],
        emissions: list[Emission],
    ) -> None:
        rules = self.rules
        changed = [
            state
            for case_id, state in states.items()
            if state is not before[case_id] and state != before[case_id]
        ]
        await store.save_cases(tx.conn, changed, before)
        rearmed = []
        # Cases that had timers armed: only their rows can be in the timers table.
        had_timers = []
        for state in changed:
            armed = armed_timers(state, rules)
            previous = before[state.case_id]
            armed_before = armed_timers(previous, rules)
            if armed != armed_before or state.is_parked != previous.is_parked:
                rearmed.append((state, armed))
                if armed_before:
                    had_timers.append(state.case_id)
        await store.sync_timers(tx.conn, rearmed, clear=had_timers)
        for emission in emissions:
            tx.emit(make_event(emission.data, source=SOURCE, time=emission.time))
        # Counted once committed: a batch rolled back and retried must not count twice.
        tx.on_commit(lambda: count(emissions))
        dues = [due for due in (first_due(state, armed) for state, armed in rearmed) if due]
        if dues:
            nearest = min(dues)
            # Only once committed can the scheduler's own connections see the timer.
            tx.on_commit(lambda: self.on_armed(nearest))


_FEEDBACK = (
    CaseAccepted,
    CaseHandled,
    CaseVerified,
    CaseVerificationFailed,
    CaseParked,
    CaseUnparked,
)
#: The event data supervision acts on; the rest of its topics' events are others' business.
_HANDLED = (CaseRegistered, CaseDispatched, CaseRedispatched, CaseEscalated, *_FEEDBACK)


def count(emissions: Sequence[Emission]) -> None:
    """Count emitted events in the service's metrics (one increment per metric and label)."""
    tally: Counter[tuple[str, str]] = Counter()
    for emission in emissions:
        data = emission.data
        kind = type(data)
        if kind is CaseWarned or kind is CaseOverdue:
            tally[(data.event_type, data.timer)] += 1  # type: ignore[attr-defined]
        elif kind is CaseNoticeIssued:
            tally[(data.event_type, str(data.level))] += 1  # type: ignore[attr-defined]
        elif kind is CaseClosed:
            tally[(data.event_type, str(data.on_time).lower())] += 1  # type: ignore[attr-defined]
        elif kind is CaseRebounded:
            tally[(data.event_type, str(data.bureau_notice).lower())] += 1  # type: ignore[attr-defined]
        else:
            tally[(data.event_type, "")] += 1
    for (event_type, label), n in tally.items():
        if event_type == CaseWarned.event_type:
            metrics.LIGHTS.labels("warned", label).inc(n)
        elif event_type == CaseOverdue.event_type:
            metrics.LIGHTS.labels("overdue", label).inc(n)
        elif event_type == CaseNoticeIssued.event_type:
            metrics.NOTICES.labels(label).inc(n)
        elif event_type == CaseClosed.event_type:
            metrics.CLOSED.labels(label).inc(n)
        elif event_type == CaseRebounded.event_type:
            metrics.REBOUNDS.labels(label).inc(n)
        elif event_type == CaseReworkOrdered.event_type:
            metrics.REWORK.inc(n)
        elif event_type == CaseLookbackDue.event_type:
            metrics.LOOKBACKS.inc(n)
