"""Dispatch's consumers: registrations from ``cases``, returns and extensions from
``feedback``, rework orders from ``supervision``.

A batch is one transaction: lock the batch's cases, load them, let the domain
decide event by event, then save the cases, the queue and the parked events
in a few statements and publish through the outbox. An event about a case
dispatch has not seen registered yet is parked, and applied in event-time
order right after the registration arrives.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from services.dispatch import metrics, store
from services.dispatch.domain.cases import (
    FOLLOW_UP_TYPES,
    CaseState,
    Outcome,
    Rulebook,
    apply,
    register,
)
from shared.consumer import BatchHandler
from shared.events import CaseEscalated, CaseRegistered, CaseReturned, Envelope, make_event
from shared.ids import derived_event_id
from shared.outbox import Tx

log = logging.getLogger(__name__)

SOURCE = "dispatch"
HANDLED_TYPES = frozenset({CaseRegistered.event_type, *FOLLOW_UP_TYPES})


class Context(Protocol):
    """What the handlers need from the running service."""

    @property
    def rules(self) -> Rulebook: ...

    def now(self) -> datetime: ...


@dataclass
class Changes:
    """What a unit of work changed, to be saved in a few statements at its end."""

    loaded: dict[str, CaseState]
    states: dict[str, CaseState] = field(default_factory=dict)
    new: set[str] = field(default_factory=set)
    escalations: dict[str, tuple[CaseEscalated, datetime]] = field(default_factory=dict)
    parked: list[Envelope] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.states = dict(self.loaded)

    def record(
        self, tx: Tx, case_id: str, outcome: Outcome, cause: Envelope, now: datetime
    ) -> None:
        """Keep the case's new state and publish the outcome's events at the cause's time."""
        if outcome.state is None:
            return
        self.states[case_id] = outcome.state
        at = cause.time
        for index, event in enumerate(outcome.events):
            event_id = derived_event_id(cause.id, index, at)
            tx.emit(make_event(event, source=SOURCE, time=at, event_id=event_id))
            if isinstance(event, CaseEscalated):
                self.escalations[case_id] = (event, at)
                log.info(
                    "case escalated to a dispatcher: %s",
                    event.reason,
                    extra={"case_id": case_id},
                )
        # Counted once committed: a batch rolled back and retried must not count twice.
        events, registered_at = outcome.events, outcome.state.registered_at
        tx.on_commit(lambda: metrics.observe(events, registered_at, now))

    async def save(self, tx: Tx) -> None:
        conn = tx.conn
        touched = [cid for cid, state in self.states.items() if state is not self.loaded.get(cid)]
        await store.insert_cases(conn, [self.states[cid] for cid in touched if cid in self.new])
        await store.update_cases(conn, [self.states[cid] for cid in touched if cid not in self.new])
        queued = [
            self.escalations[cid]
            for cid in touched
            if cid in self.escalations and self.states[cid].status == "escalated"
        ]
        left_queue = [
            cid
            for cid in touched
            if self.states[cid].status == "dispatched"
            and (cid in self.escalations or self.loaded_status(cid) == "escalated")
        ]
        await store.enqueue(conn, queued)
        await store.dequeue(conn, left_queue)
        await store.park(conn, self.parked)
        if queued or left_queue:
            metrics.QUEUE_LENGTH.set(await store.queue_length(conn))

    def loaded_status(self, case_id: str) -> str | None:
        state = self.loaded.get(case_id)
        return state.status if state else None


def batch_handler(context: Context) -> BatchHandler:
    """The handler every one of dispatch's subscriptions uses; it ignores types not its own."""

    async def handle(tx: Tx, events: Sequence[Envelope]) -> None:
        relevant = [env for env in events if env.type in HANDLED_TYPES]
        if not relevant:
            return
        book = context.rules
        now = context.now()
        case_ids = [env.subject for env in relevant]
        await store.lock_cases(tx.conn, case_ids)
        changes = Changes(await store.load_cases(tx.conn, case_ids))
        fresh = [
            env.subject
            for env in relevant
            if env.type == CaseRegistered.event_type and env.subject not in changes.loaded
        ]
        waiting = await store.take_pending(tx.conn, fresh)
        for env in relevant:
            case_id = env.subject
            state = changes.states.get(case_id)
            if isinstance(env.data, CaseRegistered):
                if state is not None:
                    _ignored(tx, env, "the case is registered already")
                    continue
                changes.new.add(case_id)
                changes.record(tx, case_id, register(env.data, env.time, book), env, now)
                for parked in waiting.pop(case_id, []):
                    _follow_up(tx, changes, parked, book, now)
            elif state is None:
                changes.parked.append(env)
                tx.on_commit(metrics.PARKED.labels(env.type).inc)
            else:
                _follow_up(tx, changes, env, book, now)
        await changes.save(tx)

    return handle


def _follow_up(tx: Tx, changes: Changes, env: Envelope, book: Rulebook, now: datetime) -> None:
    state = changes.states[env.subject]
    outcome = apply(state, env.data, env.id, env.time, book)
    if outcome.state is None:
        _ignored(tx, env, outcome.note)
        return
    if isinstance(env.data, CaseReturned):
        tx.on_commit(metrics.RETURNS.labels(env.data.department).inc)
    changes.record(tx, env.subject, outcome, env, now)


def _ignored(tx: Tx, env: Envelope, why: str) -> None:
    tx.on_commit(metrics.IGNORED.labels(env.type).inc)
    log.info(
        "%s changed nothing: %s",
        env.type,
        why,
        extra={"case_id": env.subject, "event_id": env.id},
    )
