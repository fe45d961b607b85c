"""A timer's settle: how long past its due instant it waits for facts still on their way."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from services.supervision.handlers import Supervision
from services.supervision.scheduler import TimerScheduler, others_read_to
from services.supervision.settings import Settings
from shared.clock import ManualClock, ScaledClock, SystemClock, clock_span
from shared.settings import KafkaSettings

START = datetime(2026, 11, 17, tzinfo=UTC)


def test_a_real_wait_spans_more_clock_time_on_a_faster_clock():
    assert clock_span(SystemClock(), 0.6) == timedelta(milliseconds=600)
    assert clock_span(ScaledClock(1200, START), 0.2) == timedelta(minutes=4)
    # A manual clock moves only when a test moves it: no span of it passes by itself.
    assert clock_span(ManualClock(START), 0.6) == timedelta(0)


def _settle(monkeypatch, **values: object) -> int:
    for name in (
        "TIMER_SETTLE_MS",
        "TIMER_WAIT_FOR_READS",
        "KAFKA_FOLLOWER_FETCH_MAX_WAIT_MS",
        "KAFKA_FOLLOWER_SETTLE_MS",
        "CLOCK_SCALE",
    ):
        monkeypatch.delenv(name, raising=False)
    return round(Settings(**values).timer_settle_seconds * 1000)  # type: ignore[arg-type]


def test_the_settle_covers_the_follower_wait_unless_set(monkeypatch):
    # The follower fetch wait is how long a fetched-late feedback event may wait here.
    assert _settle(monkeypatch) == 600
    assert _settle(monkeypatch, clock_scale=1200) == 200, "make run: the wait shrank to 100 ms"
    assert _settle(monkeypatch, kafka=KafkaSettings(follower_fetch_max_wait_ms=50)) == 150
    assert _settle(monkeypatch, timer_settle_ms=0) == 0
    monkeypatch.setenv("TIMER_SETTLE_MS", "2500")
    assert Settings().timer_settle_seconds == 2.5


def test_without_waiting_for_reads_the_settle_also_covers_a_busy_batch_settling(monkeypatch):
    # A busy follower holds its read up to follower_settle_ms (shared.consumer); waiting for
    # reads covers that, and without it only the timer settle does.
    assert _settle(monkeypatch, timer_wait_for_reads=False) == 1400
    kafka = KafkaSettings(follower_fetch_max_wait_ms=50, follower_settle_ms=0)
    assert _settle(monkeypatch, timer_wait_for_reads=False, kafka=kafka) == 150
    assert _settle(monkeypatch, timer_wait_for_reads=False, clock_scale=1200) == 250


def _scheduler(margin: float | None) -> TimerScheduler:
    return TimerScheduler(Supervision(), settle_seconds=0.6, caught_up_margin_seconds=margin)


def test_timers_wait_for_the_consumer_to_have_read_past_them():
    clock = ManualClock(START)
    scheduler = _scheduler(0.1)
    assert scheduler._fire_by(clock) < START - timedelta(days=365), "nothing read yet: none"
    scheduler.caught_up("cases+assignments+feedback", time.time())
    assert scheduler._fire_by(clock) == START  # a manual clock: no real span passes on it
    system = SystemClock()
    scheduler.caught_up("cases+assignments+feedback", time.time() - 5)  # older: ignored
    before = system.now()
    by = scheduler._fire_by(system)
    assert before - timedelta(seconds=0.7) <= by <= system.now() - timedelta(seconds=0.6)
    behind = _scheduler(0.1)
    behind.caught_up("cases+assignments+feedback", time.time() - 5)  # a backlog since then
    assert behind._fire_by(system) <= system.now() - timedelta(seconds=5.1)


def test_without_a_margin_only_the_settle_holds_timers():
    system = SystemClock()
    by = _scheduler(None)._fire_by(system)
    assert system.now() - timedelta(seconds=0.7) <= by <= system.now() - timedelta(seconds=0.6)


def test_the_wait_for_reads_is_on_unless_turned_off(monkeypatch):
    monkeypatch.delenv("TIMER_WAIT_FOR_READS", raising=False)
    assert Settings().timer_caught_up_margin_seconds == 0.1
    assert Settings(timer_wait_for_reads=False).timer_caught_up_margin_seconds is None


def test_a_consumer_that_never_catches_up_holds_the_timers_only_so_long(monkeypatch):
    scheduler = TimerScheduler(
        Supervision(),
        settle_seconds=0.6,
        caught_up_margin_seconds=0.1,
        caught_up_max_hold_seconds=60,
    )
    clock = ManualClock(START)
    assert scheduler._fire_by(clock) < START - timedelta(days=365), "held: nothing read yet"
    started = time.monotonic()
    monkeypatch.setattr(time, "monotonic", lambda: started + 61)
    assert scheduler._fire_by(clock) == START, "held past the limit: the settle alone"
    scheduler.caught_up("cases+assignments+feedback", time.time() - 3600)  # alive again
    assert scheduler._fire_by(clock) == START  # a manual clock: no real span passes on it
    assert not scheduler._gave_up_waiting


def test_the_next_due_timer_tells_when_it_needs_the_reads():
    """A busy consumer's settle ends at reads_needed_by (shared.consumer): the next due
    instant, in real time on a scaled clock, plus the margin for a fact still being produced."""
    clock = ScaledClock(1200, START)
    waiting = _scheduler(margin=0.1)
    assert waiting.reads_needed_by() is None, "nothing armed yet"
    before = time.time()
    waiting._note_next_due(clock, clock.now() + timedelta(minutes=2))  # 0.1 s real at 1200x
    needed = waiting.reads_needed_by()
    assert needed is not None
    assert before + 0.2 - 0.01 <= needed <= time.time() + 0.2 + 0.01
    waiting._note_next_due(clock, None)
    assert waiting.reads_needed_by() is None, "no timer armed: nobody needs the reads"
    not_waiting = _scheduler(margin=None)
    not_waiting._note_next_due(clock, clock.now())
    assert not_waiting.reads_needed_by() is None, "timers that do not wait need no reads"


def test_a_nearer_timer_armed_moves_the_need_at_once():
    """Armed by a consumer's commit, before that consumer's next read asks: not when the
    woken loop looks again, by which time the read may be settling past it."""
    clock = SystemClock()
    scheduler = _scheduler(margin=0.1)
    scheduler._note_next_due(clock, clock.now() + timedelta(hours=1))
    far = scheduler.reads_needed_by()
    assert far is not None
    scheduler.armed(clock.now() + timedelta(seconds=2))
    near = scheduler.reads_needed_by()
    assert near is not None and near < far
    assert abs(near - (time.time() + 2.1)) < 0.05
    scheduler.armed(clock.now() + timedelta(minutes=5))
    assert scheduler.reads_needed_by() == near, "a later timer changes nothing"


def _mark(seconds_ago: float) -> datetime:
    return datetime.fromtimestamp(time.time() - seconds_ago, UTC)


def test_the_other_instances_marks_bound_what_fires():
    """Any instance fires any due timer: also wait for the partitions others hold."""
    now = time.time()
    marks = {("cases", 0): _mark(1), ("cases", 1): _mark(30), ("assignments", 0): _mark(5)}
    held = {("cases", 1)}
    assert others_read_to(marks, held, now, 900) == marks[("assignments", 0)].timestamp()
    assert others_read_to(marks, set(marks), now, 900) is None, "holds them all: no other"
    assert others_read_to({}, held, now, 900) is None
    stale = {("cases", 0): _mark(1000), ("cases", 2): _mark(2)}
    assert others_read_to(stale, held, now, 900) == stale[("cases", 2)].timestamp(), (
        "a mark older than the hold: a partition nobody reads, or a stuck owner"
    )


def test_a_timer_waits_for_another_instances_backlog():
    system = SystemClock()
    scheduler = _scheduler(0.1)
    scheduler.caught_up("cases+assignments+feedback", time.time(), (("cases", 0),))
    assert scheduler._held_partitions == {("cases", 0)}
    mine = scheduler._fire_by(system)
    scheduler._others_as_of = time.time() - 30  # another instance 30 s behind on its own
    assert scheduler._fire_by(system) <= mine - timedelta(seconds=29)
    scheduler._others_as_of = time.time() + 5  # ahead of this one: this one's own bound
    assert abs((scheduler._fire_by(system) - mine).total_seconds()) < 0.1
