"""The fault run's verdict: pure checks over facts collected from the topics and the database.

Consumers drop a redelivered event by its id, so an event published again
with the same id is not a double; two *distinct* ids for the same fact are
(the same report decided twice, the same dispatch issued twice, the same
timer fired twice).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

VERDICTS = ("case.registered", "case.merged", "report.rejected")


@dataclass(frozen=True)
class Verdict:
    """An event on ``cases`` deciding one report."""

    report_id: str
    event_type: str  # one of VERDICTS
    event_id: str
    case_id: str | None  # None for a rejection


@dataclass(frozen=True)
class Dispatch:
    """An event on ``assignments`` placing a case (or queueing it for a human: escalated)."""

    case_id: str
    event_type: str  # case.dispatched, case.redispatched or case.escalated
    event_id: str
    dispatch_number: int | None  # None for case.escalated


@dataclass(frozen=True)
class Firing:
    """An event on ``supervision`` that a timer produced; ``key`` names the logical timer."""

    key: tuple[str, ...]
    event_id: str


@dataclass(frozen=True)
class DeadLetterSeen:
    dlq_topic: str
    group: str
    marker: str | None  # the poison marker the message carries, None if it carries none
    exception: str
    # Where the dead record was read from (error.topic/partition/offset): with the group,
    # the dead letter's identity. The outbox relay publishes at least once, so a copy with
    # the same identity is a republish (like an event id seen again), not a second verdict.
    source: str = ""


@dataclass(frozen=True)
class PoisonSent:
    topic: str
    marker: str


@dataclass
class Facts:
    reports: dict[str, set[str]]  # report_id -> distinct event ids submitting it
    verdicts: list[Verdict]
    intake_cases: dict[str, str]  # intake.cases: case_id -> report_id
    dispatches: list[Dispatch]
    dispatch_cases: set[str]  # dispatch.cases
    firings: list[Firing]
    overdue_armed: list[tuple[str, str, int]]  # timers due before the cut-off, never fired
    dead_letters: list[DeadLetterSeen]
    poison: list[PoisonSent]
    score_differences: list[str]
    lag: dict[str, int] = field(default_factory=dict)  # consumer group -> messages behind


@dataclass
class Tally:
    reports_in: int = 0
    registered: int = 0
    merged: int = 0
    rejected: int = 0
    accounted: int = 0
    lost: int = 0
    double_counted: int = 0
    resubmitted: int = 0
    unrecorded: int = 0
    dispatched: int = 0
    escalated: int = 0
    not_dispatched: int = 0
    double_dispatched: int = 0
    timer_firings: int = 0
    timers_fired_twice: int = 0
    timers_lost: int = 0
    score_differences: int = 0
    dead_letters: int = 0
    poison_sent: int = 0
    dead_letters_unexpected: int = 0
    poison_missing: int = 0
    poison_dead_lettered_twice: int = 0
    examples: dict[str, list[str]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def _example(tally: Tally, check: str, items: Iterable[str], limit: int = 5) -> None:
    shown = sorted(items)[:limit]
    if shown:
        tally.examples[check] = shown


def judge(facts: Facts) -> Tally:
    """Count every report, dispatch, timer, score and dead letter, and name what is wrong."""
    t = Tally()
    t.reports_in = len(facts.reports)
    t.resubmitted = sum(1 for ids in facts.reports.values() if len(ids) > 1)

    by_report: dict[str, dict[str, Verdict]] = defaultdict(dict)
    for v in facts.verdicts:
        by_report[v.report_id][v.event_id] = v
    lost = [r for r in facts.reports if not by_report.get(r)]
    doubled = [r for r, vs in by_report.items() if len(vs) > 1]
    strangers = [r for r in by_report if r not in facts.reports]
    t.lost, t.double_counted = len(lost), len(doubled)
    _example(t, "lost", lost)
    _example(t, "double_counted", doubled)
    _example(t, "verdict_without_report", strangers)

    registered: set[str] = set()
    unrecorded: list[str] = []
    for report_id in facts.reports:
        vs = by_report.get(report_id)
        if not vs:
            continue
        t.accounted += 1
        first = min(vs.values(), key=lambda v: v.event_id)
        if first.event_type == "case.registered":
            t.registered += 1
        elif first.event_type == "case.merged":
            t.merged += 1
        else:
            t.rejected += 1
        for v in vs.values():
            if v.case_id is None:
                continue
            if facts.intake_cases.get(v.case_id) != report_id:
                unrecorded.append(v.case_id)
            if v.event_type == "case.registered":
                registered.add(v.case_id)
    t.unrecorded = len(unrecorded)
    _example(t, "unrecorded", unrecorded)

    issued: dict[tuple[str, int], set[str]] = defaultdict(set)
    first_placed: set[str] = set()
    escalated: set[str] = set()
    for placed in facts.dispatches:
        if placed.dispatch_number is None:
            escalated.add(placed.case_id)
        else:
            issued[(placed.case_id, placed.dispatch_number)].add(placed.event_id)
            if placed.event_type == "case.dispatched":
                first_placed.add(placed.case_id)
    t.dispatched = len(registered & first_placed)
    t.escalated = len((registered & escalated) - first_placed)
    not_dispatched = [
        c
        for c in registered
        if (c not in first_placed and c not in escalated) or c not in facts.dispatch_cases
    ]
    double_dispatched = [f"{c}#{n}" for (c, n), ids in issued.items() if len(ids) > 1]
    t.not_dispatched, t.double_dispatched = len(not_dispatched), len(double_dispatched)
    _example(t, "not_dispatched", not_dispatched)
    _example(t, "double_dispatched", double_dispatched)

    fired: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for f in facts.firings:
        fired[f.key].add(f.event_id)
    twice = ["/".join(k) for k, ids in fired.items() if len(ids) > 1]
    t.timer_firings = len(fired)
    t.timers_fired_twice = len(twice)
    t.timers_lost = len(facts.overdue_armed)
    _example(t, "timers_fired_twice", twice)
    _example(t, "timers_lost", (f"{c}/{k}/{n}" for c, k, n in facts.overdue_armed))

    t.score_differences = len(facts.score_differences)
    _example(t, "score_differences", facts.score_differences)

    sent = {(p.topic, p.marker) for p in facts.poison}
    t.poison_sent = len(sent)
    t.dead_letters = len(facts.dead_letters)
    unexpected = [
        f"{d.dlq_topic}:{d.group}:{d.exception}"
        for d in facts.dead_letters
        if d.marker is None or (d.dlq_topic.removesuffix(".dlq"), d.marker) not in sent
    ]
    per_group: dict[tuple[str, str], set[str]] = defaultdict(set)
    for d in facts.dead_letters:
        if d.marker is not None:
            per_group[(d.marker, d.group)].add(d.source)
    seen = {(d.dlq_topic.removesuffix(".dlq"), d.marker) for d in facts.dead_letters}
    missing = [f"{topic}:{marker}" for topic, marker in sent if (topic, marker) not in seen]
    twice_dead = [f"{m}@{g}" for (m, g), sources in per_group.items() if len(sources) > 1]
    t.dead_letters_unexpected = len(unexpected)
    t.poison_missing = len(missing)
    t.poison_dead_lettered_twice = len(twice_dead)
    _example(t, "dead_letters_unexpected", unexpected)
    _example(t, "poison_missing", missing)
    _example(t, "poison_dead_lettered_twice", twice_dead)

    behind = {g: n for g, n in facts.lag.items() if n > 0}
    checks = [
        (t.reports_in > 0, "no report reached the reports topic"),
        (t.lost == 0, f"{t.lost} reports never decided"),
        (t.double_counted == 0, f"{t.double_counted} reports decided more than once"),
        (not strangers, f"{len(strangers)} verdicts for reports never submitted"),
        (t.unrecorded == 0, f"{t.unrecorded} published cases missing from intake's table"),
        (t.not_dispatched == 0, f"{t.not_dispatched} registered cases never dispatched"),
        (t.double_dispatched == 0, f"{t.double_dispatched} dispatches issued twice"),
        (t.timers_fired_twice == 0, f"{t.timers_fired_twice} timers fired twice"),
        (t.timers_lost == 0, f"{t.timers_lost} timers past due never fired"),
        (t.score_differences == 0, f"{t.score_differences} scores differ from a recompute"),
        (t.dead_letters_unexpected == 0, f"{t.dead_letters_unexpected} unexpected dead letters"),
        (t.poison_missing == 0, f"{t.poison_missing} poison messages not dead-lettered"),
        (
            t.poison_dead_lettered_twice == 0,
            f"{t.poison_dead_lettered_twice} poison messages dead-lettered twice by one group",
        ),
        (not behind, f"consumer groups still behind at the end: {behind}"),
    ]
    t.failures = [message for passed, message in checks if not passed]
    return t


def render(t: Tally) -> str:
    """The tally as an operator reads it."""
    lines = [
        f"reports in      {t.reports_in:>8}   (resubmitted with a new id: {t.resubmitted})",
        f"  registered    {t.registered:>8}",
        f"  merged        {t.merged:>8}   (duplicates of an open case)",
        f"  rejected      {t.rejected:>8}",
        f"  accounted     {t.accounted:>8}",
        f"  lost          {t.lost:>8}",
        f"  double-counted{t.double_counted:>8}",
        f"registered cases dispatched {t.dispatched}, escalated to a human {t.escalated}, "
        f"never dispatched {t.not_dispatched}, dispatched twice {t.double_dispatched}",
        f"timers fired {t.timer_firings}, twice {t.timers_fired_twice}, lost {t.timers_lost}",
        f"scores differing from a from-scratch recompute: {t.score_differences}",
        f"dead letters {t.dead_letters} for {t.poison_sent} poison messages sent; "
        f"unexpected {t.dead_letters_unexpected}, poison missing {t.poison_missing}, "
        f"twice {t.poison_dead_lettered_twice}",
    ]
    for check, shown in t.examples.items():
        lines.append(f"  e.g. {check}: {', '.join(shown)}")
    lines.append("AUDIT PASSED" if t.ok else "AUDIT FAILED: " + "; ".join(t.failures))
    return "\n".join(lines)
