"""The fault run's verdict from facts: each kind of loss or double is caught and named."""

from __future__ import annotations

from dataclasses import replace

from ops.faults.audit import (
    DeadLetterSeen,
    Dispatch,
    Facts,
    Firing,
    PoisonSent,
    Verdict,
    judge,
    render,
)


def healthy() -> Facts:
    """Three reports: one registered and dispatched, one merged, one rejected; poison seen once."""
    return Facts(
        reports={"R1": {"e1"}, "R2": {"e2"}, "R3": {"e3"}},
        verdicts=[
            Verdict("R1", "case.registered", "v1", "C1"),
            Verdict("R2", "case.merged", "v2", "C2"),
            Verdict("R3", "report.rejected", "v3", None),
        ],
        intake_cases={"C1": "R1", "C2": "R2"},
        dispatches=[Dispatch("C1", "case.dispatched", "d1", 1)],
        dispatch_cases={"C1"},
        firings=[Firing(("C1", "case.warned", "handle", "1"), "f1")],
        overdue_armed=[],
        dead_letters=[
            DeadLetterSeen("reports.dlq", "intake", "faults-poison-x-1", "Poison", "reports:0:3")
        ],
        poison=[PoisonSent("reports", "faults-poison-x-1")],
        score_differences=[],
        lag={"intake": 0},
    )


def test_a_healthy_run_passes_with_its_tally():
    t = judge(healthy())
    assert t.ok, t.failures
    assert (t.reports_in, t.registered, t.merged, t.rejected, t.accounted) == (3, 1, 1, 1, 3)
    assert (t.lost, t.double_counted, t.dispatched, t.timer_firings) == (0, 0, 1, 1)
    assert "AUDIT PASSED" in render(t)


def test_a_report_never_decided_is_lost():
    f = healthy()
    f.reports["R4"] = {"e4"}
    t = judge(f)
    assert t.lost == 1 and t.examples["lost"] == ["R4"]
    assert not t.ok and "1 reports never decided" in t.failures


def test_a_report_decided_twice_by_distinct_events_is_double_counted_but_a_republish_is_not():
    f = healthy()
    f.verdicts.append(Verdict("R1", "case.registered", "v1", "C1"))  # same id: redelivery
    assert judge(f).ok
    f.verdicts.append(Verdict("R1", "case.registered", "v9", "C9"))  # a second decision
    t = judge(f)
    assert t.double_counted == 1 and not t.ok


def test_a_published_case_missing_from_intakes_table_is_unrecorded():
    f = replace(healthy(), intake_cases={"C1": "R1"})
    t = judge(f)
    assert t.unrecorded == 1 and not t.ok


def test_a_registered_case_never_dispatched_fails_and_an_escalated_one_counts_as_placed():
    f = replace(healthy(), dispatches=[])
    assert judge(f).not_dispatched == 1
    f = replace(healthy(), dispatches=[Dispatch("C1", "case.escalated", "x1", None)])
    t = judge(f)
    assert t.not_dispatched == 0 and t.escalated == 1 and t.ok


def test_one_dispatch_number_issued_by_two_events_is_a_double_dispatch():
    f = healthy()
    f.dispatches.append(Dispatch("C1", "case.dispatched", "d2", 1))
    t = judge(f)
    assert t.double_dispatched == 1 and t.examples["double_dispatched"] == ["C1#1"]


def test_a_timer_fired_twice_or_left_armed_past_due_fails():
    f = healthy()
    f.firings.append(Firing(("C1", "case.warned", "handle", "1"), "f2"))
    assert judge(f).timers_fired_twice == 1
    f = replace(healthy(), overdue_armed=[("C1", "handle", 0)])
    t = judge(f)
    assert t.timers_lost == 1 and not t.ok


def test_scores_that_differ_from_a_recompute_fail():
    t = judge(replace(healthy(), score_differences=["department d1 month 2026-11: cases 3→4"]))
    assert t.score_differences == 1 and not t.ok


def test_dead_letters_must_be_exactly_the_poison_sent_once_per_group():
    f = healthy()
    f.dead_letters.append(DeadLetterSeen("cases.dlq", "dispatch.cases", None, "ValueError: x"))
    assert judge(f).dead_letters_unexpected == 1
    f = replace(healthy(), dead_letters=[])
    assert judge(f).poison_missing == 1
    f = healthy()
    f.dead_letters.append(replace(f.dead_letters[0], source="reports:0:7"))
    assert judge(f).poison_dead_lettered_twice == 1
    # the relay publishing the same dead letter again (same source record) is no second one
    f = healthy()
    f.dead_letters.append(f.dead_letters[0])
    assert judge(f).poison_dead_lettered_twice == 0
    # the same poison dead-lettered by two groups reading the topic is expected
    f = healthy()
    f.dead_letters.append(replace(f.dead_letters[0], group="intake.other"))
    assert judge(f).ok


def test_a_group_still_behind_fails():
    t = judge(replace(healthy(), lag={"intake": 0, "scoring.cases": 12}))
    assert not t.ok and "scoring.cases" in t.failures[0]
