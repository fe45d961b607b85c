"""The fault plan: a pure function of the seed, covering every fault kind, never two at once."""

from __future__ import annotations

from collections import Counter

import pytest

from ops.faults.schedule import POISON_TOPICS, REWINDABLE, SERVICES, plan, rewound


def test_the_same_seed_gives_the_same_plan_and_another_seed_another():
    assert plan(3) == plan(3)
    assert plan(3).faults != plan(4).faults


def test_every_fault_kind_happens_and_every_service_is_killed_as_often_as_asked():
    p = plan(11, kills_per_service=3, freeze_seconds=20)
    assert p.kinds() == {"kill", "freeze", "postgres", "rewind", "poison"}
    kills = Counter(f.target for f in p.faults if f.kind == "kill")
    assert kills == dict.fromkeys(SERVICES, 3)
    (freeze,) = [f for f in p.faults if f.kind == "freeze"]
    assert freeze.target == "broker" and freeze.seconds == 20
    assert sorted(f.target for f in p.faults if f.kind == "poison") == sorted(POISON_TOPICS)
    (rewind,) = [f for f in p.faults if f.kind == "rewind"]
    assert (rewind.target, rewind.topic) in REWINDABLE
    assert 0 < rewind.share_back <= 1


@pytest.mark.parametrize("seed", range(20))
def test_faults_come_in_order_at_distinct_moments_inside_the_window(seed):
    p = plan(seed, first=0.1, last=0.8)
    moments = [f.at for f in p.faults]
    assert moments == sorted(moments)
    assert len(set(moments)) == len(moments)
    assert all(0.1 <= m <= 0.8 for m in moments)


def test_a_plan_without_some_fault_kind_is_refused():
    with pytest.raises(ValueError, match="every fault kind"):
        plan(1, kills_per_service=0)
    with pytest.raises(ValueError, match="first"):
        plan(1, first=0.9, last=0.5)


def test_a_rewind_moves_each_partition_back_by_its_share_and_never_below_zero():
    assert rewound({0: 100, 1: 7, 2: 0}, 0.5) == {0: 50, 1: 3, 2: 0}
    assert rewound({0: 100}, 1.0) == {0: 0}
    with pytest.raises(ValueError, match="share_back"):
        rewound({0: 1}, 0)


def test_the_audit_watches_every_group_the_services_consume_under(monkeypatch):
    """The drain and lag checks read the groups and topics each service names for itself."""
    from ops.faults.collect import groups

    # Whatever prefix the environment gives, the audit's table is of the unprefixed names.
    monkeypatch.setenv("TOPIC_PREFIX", "t1_")
    groups.cache_clear()
    assert groups() == {
        "intake": ("reports",),
        "intake.followers": ("assignments", "feedback", "supervision"),
        "dispatch.cases": ("cases",),
        "dispatch.followers": ("feedback", "supervision"),
        "supervision": ("cases", "assignments", "feedback"),
        "scoring": ("cases", "assignments", "feedback", "supervision"),
    }


def test_the_rewound_group_is_the_one_the_service_consumes_under(monkeypatch):
    """The fault driver rewinds the group each service names for itself, prefix included."""
    from ops.faults.collect import group_of

    monkeypatch.delenv("TOPIC_PREFIX", raising=False)
    assert group_of("intake", "reports") == "intake"
    assert group_of("intake", "assignments") == "intake.followers"
    assert group_of("scoring", "cases") == "scoring"
    assert group_of("supervision", "feedback") == "supervision"
    monkeypatch.setenv("TOPIC_PREFIX", "t1_")
    assert group_of("dispatch", "feedback") == "t1_dispatch.followers"
    with pytest.raises(ValueError, match="dispatch does not consume 'reports'"):
        group_of("dispatch", "reports")
