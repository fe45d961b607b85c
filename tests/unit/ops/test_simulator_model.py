"""The simulated city behaves as its data says: rhythm, channel mix, hotspots, temperaments."""

import random
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from ops.simulator.model import (
    ReportGenerator,
    load_behaviour,
    on_closed,
    on_dispatched,
    on_handled,
)
from ops.simulator.run import SAMPLE_BEHAVIOUR
from shared.events.reports import ReportSubmitted
from shared.events.types import ReportLocation
from shared.reference import load_reference

REF = load_reference()
BEHAVIOUR = load_behaviour(SAMPLE_BEHAVIOUR)
T0 = datetime(2026, 11, 3, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai


def test_more_reports_in_office_hours_than_at_night():
    gen = ReportGenerator(REF, BEHAVIOUR, random.Random(1))
    morning = sum(gen.count_in(T0, timedelta(hours=1)) for _ in range(50))
    night = sum(
        gen.count_in(T0 - timedelta(hours=7), timedelta(hours=1)) for _ in range(50)
    )  # 03:00
    assert morning > 5 * night


def test_channel_mix_and_reports_fit_the_contract_and_the_catalogue():
    gen = ReportGenerator(REF, BEHAVIOUR, random.Random(2))
    plans = [gen.draw() for _ in range(2000)]
    channels = Counter(p.channel for p in plans)
    assert 0.45 < channels["hotline_12345"] / 2000 < 0.6
    assert 0.33 < channels["inspector"] / 2000 < 0.47
    for plan in plans[:300]:
        assert REF.channel(plan.channel) is not None
        assert REF.cell_at(plan.lat, plan.lon) is not None, "simulated problems are inside the city"
        required = {a.code for a in plan.category.filing.attributes if a.required}
        assert required <= set(plan.attributes)
        ReportSubmitted(
            report_id="R1",
            channel=plan.channel,
            external_id="x",
            category_code=plan.category.code,
            location=ReportLocation(lat=plan.lat, long=plan.lon),
            attributes=plan.attributes,
            reported_at=T0,
        )


def test_hotspots_repeat_the_same_problem_at_the_same_place():
    gen = ReportGenerator(REF, BEHAVIOUR, random.Random(3))
    spot = BEHAVIOUR.hotspots[0]
    lat, lon = REF.cell(spot.cell).centre
    near = [
        p
        for p in (gen.draw() for _ in range(3000))
        if p.category.code == spot.category and abs(p.lat - lat) < 1e-4 and abs(p.lon - lon) < 1e-4
    ]
    assert len(near) > 20


def dispatched(department: str, rng: random.Random, **kw):
    return on_dispatched(
        BEHAVIOUR,
        rng,
        case_id="C1",
        department=department,
        dispatched_at=T0,
        sign_for=T0 + timedelta(hours=1),
        handle=T0 + timedelta(hours=8),
        tier=kw.get("tier", "ordinary"),
        is_rework=kw.get("is_rework", False),
        reason=kw.get("reason"),
    )


def test_the_department_that_returns_cases_returns_many_and_others_few():
    rng = random.Random(4)
    returner = sum(dispatched("traffic-police", rng)[0].action == "return" for _ in range(1000))
    steady = sum(dispatched("sanitation", rng)[0].action == "return" for _ in range(1000))
    assert returner > 250 and steady == 0


def test_a_department_signs_before_it_handles_and_rework_skips_signing():
    rng = random.Random(5)
    steps = dispatched("sanitation", rng)
    assert [s.action for s in steps] == ["accept", "handle"]
    assert T0 <= steps[0].at < steps[1].at
    assert [s.action for s in dispatched("sanitation", rng, is_rework=True)] == ["handle"]
    assert dispatched("sanitation", rng, reason="extension") == []


def test_slow_departments_run_late_more_often():
    rng = random.Random(6)

    def late_share(department: str) -> float:
        handles = [
            s for _ in range(500) for s in dispatched(department, rng) if s.action == "handle"
        ]
        return sum(s.at > T0 + timedelta(hours=8) for s in handles) / len(handles)

    assert late_share("housing-construction") > 0.3 > late_share("sanitation") == 0


def test_sloppy_work_fails_verification_more_and_late_work_pleases_fewer():
    rng = random.Random(7)
    fails = Counter(
        on_handled(BEHAVIOUR, rng, case_id="C", department=d, handled_at=T0).detail
        for d in ["urban-enforcement"] * 1000
    )
    assert 200 < fails["failed"] < 400
    verdicts = {
        on_time: Counter(
            s.detail
            for s in (
                on_closed(
                    BEHAVIOUR, rng, case_id="C", department="d", closed_at=T0, on_time=on_time
                )
                for _ in range(2000)
            )
            if s is not None
        )
        for on_time in (True, False)
    }
    assert verdicts[False]["dissatisfied"] > 3 * verdicts[True]["dissatisfied"]


def test_a_broken_behaviour_file_is_refused(tmp_path):
    bad = tmp_path / "simulation.json"
    bad.write_text(
        SAMPLE_BEHAVIOUR.read_text().replace('"hourly_rhythm": [1, 1,', '"hourly_rhythm": [1,')
    )
    with pytest.raises(ValueError, match="hourly_rhythm"):
        load_behaviour(bad)
    assert replace(BEHAVIOUR, reports_per_day=0).reports_per_hour(10) == 0
