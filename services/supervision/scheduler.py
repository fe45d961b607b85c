"""The timer scheduler: fires due deadline timers, in batches, exactly once, on any instance.

One firing is one transaction: claim up to ``timer_batch`` due timers with
``FOR UPDATE SKIP LOCKED`` (another instance claims others), lock their cases
the same way, let the domain fire everything due, save the cases, re-sync
their timers (which deletes the claimed rows) and write the events to the
outbox. Commit or nothing: a crash before the commit leaves the rows to fire
after a restart; after it, the rows are gone and the events are in the outbox.

A backlog (a full batch) is worked off by ``timer_workers`` such
transactions at once, which claim disjoint timers as instances would.

Between firings it sleeps until the next due instant on the service's clock
(``min(due_at)`` by index: memory does not grow with the number of armed
timers) and wakes early when a consumer on this instance commits a nearer
timer. Across instances it does not listen: each instance fires the timers
its own consumers arm, and a bounded re-check (``timer_recheck_seconds``,
real time) is the fail-over for timers another instance armed and then died
with, and for timers armed behind its back (a bulk load). That costs a
database query per re-check rather than a LISTEN connection per instance and
a NOTIFY in every consumer transaction.

A timer fires ``settle_seconds`` (real time) after its due instant, not at it.
The facts that disarm a timer travel: a department signs for a case a moment
before its deadline, and the sign-for passes through intake's outbox, the
broker and this service's fetch before it reaches the case. Fired at the due
instant, the timer would beat it and publish an overdue that never was, and
scoring would count it against the department. The settle is how long such a
fact may be on its way; the events still carry the due instant.

The settle covers a fact in transit, not a backlog. With ``caught_up_margin_seconds``
set, a timer also waits until this instance's consumer has applied everything the
broker held a margin after the due instant (:meth:`caught_up`): after a restart or
an outage, the sign-fors of the missed hours are read before any of their deadlines
fires, instead of racing them. Until the consumer has caught up once since the start,
nothing fires; a consumer that has not caught up for ``caught_up_max_hold_seconds``
(stuck, not merely behind) stops holding the timers, which then fire by the settle
alone. Any instance fires any due timer, so one also waits for the partitions other instances
hold: each instance saves its consumer's mark for the partitions it holds
(``read_marks``), and a timer waits for the earliest mark of a partition this instance
does not hold as well, so a sign-for in another instance's backlog (after its restart,
or a rebalance) is read before the deadline it met fires. A mark older than
``caught_up_max_hold_seconds`` is left out, as this instance's own consumer is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from services.supervision import metrics, store
from services.supervision.domain.case import CaseState, Emission
from services.supervision.domain.timers import Timer, fire_due
from services.supervision.handlers import SOURCE, Supervision, count
from shared.clock import Clock, clock_span
from shared.events.envelope import make_event

if TYPE_CHECKING:
    import asyncpg

    from shared.consumer import Partitions
    from shared.runtime import ServiceRuntime

log = logging.getLogger(__name__)


@dataclass
class Firing:
    """What one firing transaction did."""

    claimed: int = 0
    fired: list[Timer] = field(default_factory=list)
    # Claimed timers whose case another transaction holds: they stay for the next round.
    contended: int = 0


class TimerScheduler:
    """Runs as a background job of the service's runtime."""

    def __init__(
        self,
        supervision: Supervision,
        *,
        batch: int = 1000,
        workers: int = 2,
        recheck_seconds: float = 2.0,
        settle_seconds: float = 0.0,
        caught_up_margin_seconds: float | None = None,
        caught_up_max_hold_seconds: float = 900.0,
        contention_pause_seconds: float = 0.05,
        max_backoff_seconds: float = 5.0,
    ) -> None:
        self.supervision = supervision
        self.batch = batch
        self.workers = workers
        self.recheck_seconds = recheck_seconds
        self.settle_seconds = settle_seconds
        self.caught_up_margin_seconds = caught_up_margin_seconds
        self.caught_up_max_hold_seconds = caught_up_max_hold_seconds
        # Wall-clock instant up to which the consumer has applied what the broker held.
        self._caught_up_as_of: float | None = None
        # When the consumer last caught up (or the loop started), on the monotonic clock.
        self._caught_up_seen = time.monotonic()
        self._gave_up_waiting = False
        # The loop found due timers the consumer has not caught up with: wake it when it does.
        self._held = False
        # Wall-clock instant the next due timer needs the consumer's reads by (its due instant
        # plus the margin), as the loop last looked; None: no timer is armed.
        self._reads_needed_by: float | None = None
        # The service's clock, once the loop runs (due instants are on it).
        self._clock: Clock | None = None
        # The partitions this instance's consumer holds, as it last caught up; the earliest
        # read mark of any other, as the last firing read them (wall clock; None: no other).
        self._held_partitions: frozenset[tuple[str, int]] = frozenset()
        self._others_as_of: float | None = None
        # This instance's mark still to be saved, and the task saving it.
        self._mark_to_save: tuple[Partitions, float] | None = None
        self._saving: asyncio.Task[None] | None = None
        self._pool: asyncpg.Pool | None = None
        self.contention_pause_seconds = contention_pause_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self._wake = asyncio.Event()
        self._sleeping_until: datetime | None = None
        self._asleep = False
        self.fired_total = 0

    # -- wake-ups -------------------------------------------------------------------

    def armed(self, due: datetime) -> None:
        """A transaction of this instance committed a timer due at ``due``: wake if it is nearer.

        Called from the transaction's ``Tx.on_commit``, so a rolled-back one never wakes
        the loop. While the loop is awake the wake is kept: its next sleep returns at once.
        """
        if not self._asleep or self._sleeping_until is None or due < self._sleeping_until:
            self._wake.set()
        # At once, not when the woken loop looks: the consumer's next read starts right after
        # this commit and reads when its settle must end before the loop runs again.
        needed_by = self._needed_by(due)
        if needed_by is not None and (
            self._reads_needed_by is None or needed_by < self._reads_needed_by
        ):
            self._reads_needed_by = needed_by

    @property
    def waits_for_reads(self) -> bool:
        """Whether timers wait for the consumer's reads (then it must be told: :meth:`caught_up`)."""
        return self.caught_up_margin_seconds is not None

    def caught_up(self, subscription: str, as_of: float, partitions: Partitions = ()) -> None:
        """The consumer has applied everything its partitions held at ``as_of`` (wall clock)."""
        self._caught_up_seen = time.monotonic()
        if partitions:
            self._held_partitions = frozenset(partitions)
            self._mark_to_save = (partitions, as_of)
            self._save_mark()
        if self._gave_up_waiting:
            log.info("the consumer has caught up: timers wait for its reads again")
            self._gave_up_waiting = False
        if self._caught_up_as_of is None or as_of > self._caught_up_as_of:
            self._caught_up_as_of = as_of
            if self._held:
                self._wake.set()

    def reads_needed_by(self) -> float | None:
        """When the next due timer needs the consumer to have read past (wall clock), or None.

        A busy consumer's read settles to gather a case's events into one batch
        (``shared.consumer``); it ends here instead, so the timer waits one read, not a
        settle: with case events flowing in, 1.06 s at p99 past the due instant otherwise.
        """
        return self._reads_needed_by

    def _save_mark(self) -> None:
        """Save this instance's mark for the others, one write at a time, the latest first."""
        if self._pool is None or (self._saving is not None and not self._saving.done()):
            return  # not started yet, or the running write saves it when it is done
        self._saving = asyncio.get_running_loop().create_task(self._save_marks(self._pool))

    async def _save_marks(self, pool: asyncpg.Pool) -> None:
        while self._mark_to_save is not None:
            partitions, as_of = self._mark_to_save
            self._mark_to_save = None
            try:
                async with pool.acquire() as conn:
                    await store.save_read_marks(
                        conn, partitions, datetime.fromtimestamp(as_of, UTC)
                    )
            except Exception as exc:
                # The other instances wait a little longer; the next catch-up saves a newer one.
                log.warning("read mark not saved: %r", exc)
                return
            # Then the newest mark that came meanwhile, no sooner: every read that finds the
            # partitions' end catches up (dozens a second when busy), and each save writes a
            # row per partition (1.7 rows a report in the pipeline benchmark, saved each time).
            await asyncio.sleep(MARK_SAVE_SECONDS)

    # -- the loop -------------------------------------------------------------------

    async def run(self, runtime: ServiceRuntime) -> None:
        clock = runtime.clock
        assert clock is not None
        self._clock = clock
        self._pool = runtime.db
        self._caught_up_seen = time.monotonic()
        try:
            await self._loop(runtime, clock)
        finally:
            self._pool = None
            if self._saving is not None:
                self._saving.cancel()

    async def _loop(self, runtime: ServiceRuntime, clock: Clock) -> None:
        backoff = 0.1
        missed = False
        while True:
            try:
                firing = await self.fire_once(runtime)
                backoff = 0.1
                if firing.claimed >= self.batch and firing.contended < firing.claimed:
                    await self._drain(runtime)
                    continue
                if firing.claimed > firing.contended:
                    continue  # more may have come due meanwhile: look again at once
                if firing.contended:
                    await self._pause(self.contention_pause_seconds)
                    continue
                async with runtime.db.acquire() as conn:
                    due = await store.next_due(conn)
                self._note_next_due(clock, due)
                if due is not None and due <= self._fire_by(clock):
                    # Due yet not claimed: it came due just now (look again at once), or,
                    # the second time running, another instance holds it (let it finish).
                    if missed:
                        await self._pause(self.contention_pause_seconds)
                    missed = not missed
                    continue
                missed = False
                await self._sleep_until(clock, due)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("timer firing failed, retrying in %.1fs: %r", backoff, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff_seconds)

    async def _drain(self, runtime: ServiceRuntime) -> None:
        """Fire a backlog with ``workers`` transactions in flight at once.

        One transaction spends about half its time waiting on Postgres; a
        second one computes meanwhile. They claim disjoint timers (SKIP
        LOCKED), exactly as two instances would.
        """

        async def worker() -> None:
            while True:
                firing = await self.fire_once(runtime)
                if firing.claimed < self.batch or firing.contended == firing.claimed:
                    return

        await asyncio.gather(*(worker() for _ in range(self.workers)))

    async def fire_once(self, runtime: ServiceRuntime) -> Firing:
        """One firing transaction; returns what it claimed and fired."""
        clock = runtime.clock
        assert clock is not None
        rules = self.supervision.rules
        firing = Firing()
        async with runtime.transaction() as tx:
            if self.waits_for_reads:
                self._others_as_of = others_read_to(
                    await store.read_marks(tx.conn),
                    self._held_partitions,
                    time.time(),
                    self.caught_up_max_hold_seconds,
                )
            now = self._fire_by(clock)
            claimed = await store.claim_due(tx.conn, now, self.batch)
            firing.claimed = len(claimed)
            if not claimed:
                return firing
            metrics.FIRING_BATCH.observe(len(claimed))
            case_ids = {timer.case_id for timer in claimed}
            states = await store.lock_cases_nowait(tx.conn, case_ids)
            if len(states) < len(case_ids):
                missing = await store.missing_cases(tx.conn, case_ids - states.keys())
                await store.drop_timers(tx.conn, [t for t in claimed if t.case_id in missing])
                firing.contended = sum(
                    1 for t in claimed if t.case_id not in states and t.case_id not in missing
                )
            lit: list[CaseState] = []
            rearmed: list[tuple[CaseState, tuple[Timer, ...]]] = []
            emitted: list[Emission] = []
            broken: set[str] = set()
            for state in states.values():
                try:
                    outcome = fire_due(state, now, rules)
                except Exception:
                    # A decision that fails is a bug for one case; it must not stall the rest.
                    log.exception(
                        "firing the timers of a case failed; its due timers are dropped",
                        extra={"case_id": state.case_id},
                    )
                    metrics.FIRING_FAILURES.inc()
                    broken.add(state.case_id)
                    continue
                if outcome.timers:
                    lit.append(outcome.state)
                rearmed.append((outcome.state, outcome.armed))
                emitted.extend(outcome.emissions)
                firing.fired.extend(outcome.timers)
            await store.drop_timers(tx.conn, [t for t in claimed if t.case_id in broken])
            await store.save_lights(tx.conn, lit)
            # Every locked case is re-synced, which also removes its claimed rows.
            await store.sync_timers(tx.conn, rearmed)
            for emission in emitted:
                tx.emit(make_event(emission.data, source=SOURCE, time=emission.time))
        self._record(clock, firing.fired, emitted)
        return firing

    def _note_next_due(self, clock: Clock, due: datetime | None) -> None:
        self._clock = clock
        self._reads_needed_by = None if due is None else self._needed_by(due)

    def _needed_by(self, due: datetime) -> float | None:
        """The wall-clock instant a timer due at ``due`` needs the reads by, if it waits on them."""
        margin, clock = self.caught_up_margin_seconds, self._clock
        if margin is None or clock is None:
            return None
        return time.time() + clock.real_seconds(due - clock.now()) + margin

    def _fire_by(self, clock: Clock) -> datetime:
        """Timers due at or before this instant have settled: nothing disarming them is on its way.

        With a caught-up margin, also nothing the consumer has still to read: the instant
        it last caught up, less the margin for a fact still being produced then.
        """
        now = clock.now()
        settled = now - clock_span(clock, self.settle_seconds)
        margin = self.caught_up_margin_seconds
        if margin is None or self._waited_too_long():
            return settled
        as_of = self._caught_up_as_of
        if as_of is None:
            return _NEVER  # nothing read since the start: every backlog is still unread
        if self._others_as_of is not None:
            as_of = min(as_of, self._others_as_of)
        behind = max(0.0, time.time() - as_of) + margin
        return min(settled, now - clock_span(clock, behind))

    def _held_by_others(self) -> bool:
        """Whether another instance's read mark, not this one's consumer, bounds what fires."""
        mine, others = self._caught_up_as_of, self._others_as_of
        return mine is not None and others is not None and others < mine

    def _waited_too_long(self) -> bool:
        """A consumer that has not caught up for this long may never: fire by the settle alone.

        Timers late by the hold are better than timers that never fire (a partition stuck
        on a record it cannot pass, a consumer that cannot join its group). Reading an
        outage's backlog takes far less than the default quarter of an hour.
        """
        held = time.monotonic() - self._caught_up_seen
        if held <= self.caught_up_max_hold_seconds:
            return False
        if not self._gave_up_waiting:
            log.warning(
                "the consumer has not caught up for %.0fs: timers fire without waiting for it",
                held,
            )
            self._gave_up_waiting = True
        return True

    def _record(self, clock: Clock, fired: list[Timer], emitted: list[Emission]) -> None:
        fired_at = clock.now()
        by_kind: dict[str, list[float]] = {}
        for timer in fired:
            by_kind.setdefault(timer.kind, []).append(
                max(0.0, clock.real_seconds(fired_at - timer.due_at))
            )
        for kind, lags in by_kind.items():
            metrics.TIMERS_FIRED.labels(kind).inc(len(lags))
            histogram = metrics.FIRING_LAG.labels(kind)
            for lag in lags:
                histogram.observe(lag)
        count(emitted)
        self.fired_total += len(fired)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        self._wake.clear()

    async def _sleep_until(self, clock: Clock, due: datetime | None) -> None:
        """Until ``due`` has settled on the clock, a wake-up, or the re-check, whichever comes first."""
        self._sleeping_until = due
        self._asleep = True
        waiters: list[asyncio.Task[object]] = [asyncio.create_task(self._wake.wait())]
        settled = None if due is None else due + clock_span(clock, self.settle_seconds)
        # Settled by the clock but not yet read up to: only the consumer catching up (a
        # wake) or the re-check moves it on; sleeping on the clock would return at once.
        self._held = settled is not None and settled <= clock.now()
        if settled is not None and not self._held:
            waiters.append(asyncio.create_task(clock.sleep_until(settled)))
        timeout = self.recheck_seconds
        if self._held and self._held_by_others():
            # Another instance's mark holds it, and nothing here tells when that one moves:
            # look again soon, as its consumer catches up every fetch, not at the re-check.
            timeout = min(timeout, OTHERS_POLL_SECONDS)
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            self._asleep = False
            self._held = False
            self._sleeping_until = None
            self._wake.clear()


def others_read_to(
    marks: Mapping[tuple[str, int], datetime],
    held: Collection[tuple[str, int]],
    now: float,
    max_hold_seconds: float,
) -> float | None:
    """The earliest read mark (wall-clock seconds) of a partition this instance does not hold.

    None when there is none. A mark older than ``max_hold_seconds`` is left out: its
    partition is read by nobody any more (gone from the topic), or by a consumer stuck for
    so long that its timers fire without it, as this instance's own would.
    """
    others = [
        mark.timestamp()
        for partition, mark in marks.items()
        if partition not in held and now - mark.timestamp() <= max_hold_seconds
    ]
    return min(others, default=None)


#: How often a loop held by another instance's read mark reads the marks again (seconds).
OTHERS_POLL_SECONDS = 0.1
#: How often an instance saves its own read mark at most (seconds).
MARK_SAVE_SECONDS = 0.25

#: Before any due instant: what fires when nothing may.
_NEVER = datetime.min.replace(tzinfo=UTC)
