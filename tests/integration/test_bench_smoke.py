"""The benchmarks run end to end, small, on the real broker and Postgres.

Their figures are for `make bench`; here only that the code runs and counts what it
should. A benchmark that breaks is otherwise found at the next `make bench`, with its
results left from an older run (the scoring one did, once).
"""

from __future__ import annotations

import asyncio
import gc
import os
from pathlib import Path
from types import ModuleType

import pytest

from bench import bench_dispatch, bench_intake, bench_pipeline, bench_scoring, bench_supervision


def _small(monkeypatch: pytest.MonkeyPatch, module: ModuleType, **sizes: object) -> None:
    """The benchmark's module-level sizes, shrunk for this test only."""
    for name, value in sizes.items():
        assert hasattr(module, name), f"{module.__name__} has no {name}"
        monkeypatch.setattr(module, name, value)


async def test_the_intake_benchmark_registers_every_report(
    monkeypatch: pytest.MonkeyPatch, database_url: str, bootstrap: str
) -> None:
    _small(monkeypatch, bench_intake, REPORTS=120, STEADY_RATE=40, STEADY_SECONDS=1.0)
    threshold = gc.get_threshold()
    figures = await bench_intake.main()
    assert sum(figures["verdicts"].values()) == 120
    assert figures["registrations_per_second"] > 0
    assert figures["latency_p99_ms"] >= figures["latency_p50_ms"] > 0
    # The service is measured under its own collector settings; this process gets its back.
    assert gc.get_threshold() == threshold and gc.get_freeze_count() == 0


async def test_the_dispatch_benchmark_dispatches_the_backlog_and_the_paced_cases(
    monkeypatch: pytest.MonkeyPatch, database_url: str, bootstrap: str
) -> None:
    _small(monkeypatch, bench_dispatch, BACKLOG=150, LATENCY_CASES=40, LATENCY_RATE=80.0)
    figures = await bench_dispatch.main()
    assert figures["backlog_cases"] == 150 and figures["latency_cases"] == 40
    assert figures["dispatches_per_s_after_first_dispatch"] > 0
    assert figures["latency_max_ms"] >= figures["latency_p99_ms"] >= figures["latency_p50_ms"] > 0


async def test_the_supervision_benchmark_fires_every_armed_timer(
    monkeypatch: pytest.MonkeyPatch, database_url: str, bootstrap: str
) -> None:
    _small(
        monkeypatch,
        bench_supervision,
        SMALL=100,
        ARMED=2_000,
        BURST=300,
        STEADY_RATE=100.0,
        STEADY_SECONDS=2.0,
        LEAD_SECONDS=6.0,
    )
    figures = await bench_supervision.main()
    assert figures["small_armed"] == 200
    assert figures["burst_timers"] == 300 and figures["burst_fired_per_s"] > 0
    assert figures["steady_publish_lag_p99_s"] > 0


async def test_the_ranking_benchmark_reads_the_seeded_month(
    monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    _small(monkeypatch, bench_scoring, RANKED_UNITS=12, SEEDED_EVENTS=800, RANKING_REQUESTS=5)
    figures = await bench_scoring.ranking_latency(database_url)
    assert figures["ranking_units"] == 12 and figures["ranking_requests"] == 5
    assert figures["ranking_ms_max"] >= figures["ranking_ms_p99"] >= figures["ranking_ms_p50"] > 0
    assert gc.get_freeze_count() == 0


async def test_the_pipeline_benchmark_runs_every_phase(
    monkeypatch: pytest.MonkeyPatch, database_url: str, bootstrap: str, tmp_path: Path
) -> None:
    """(a) to (e), small: four hop processes, then the four services, restarted for (c)."""
    _small(
        monkeypatch,
        bench_pipeline,
        RESULTS=tmp_path,  # the profiles go beside the test, never over the committed results
        WARMUP=40,
        LIMIT_MESSAGES=400,
        LIMIT_PASSES=1,
        LIMIT_LATENCY_SECONDS=1.0,
        BACKLOG=400,
        PROFILE_REPORTS=200,
        RATE=100.0,
        SECONDS=3.0,
    )
    figures = await bench_pipeline.main()

    assert figures["limit_msgs_per_s"] > 0 and figures["pipeline_reports_per_s"] > 0
    assert figures["pipeline"]["reports"] == 400
    assert (
        0
        < figures["pipeline_ratio_to_limit"]
        == round(figures["pipeline_reports_per_s"] / figures["limit_msgs_per_s"], 3)
    )
    # (c) ran on topics of its own, after the services restarted cleanly on them.
    assert figures["c_topic_prefix"].endswith("_c_")
    assert set(figures["exit_codes_before_c"].values()) == {0}
    latency = figures["latency"]
    assert latency["verdicts"] == {"case.registered": 300} and latency["sustained"]
    for stage in ("registered", "dispatched"):
        assert latency[f"report_to_{stage}"]["n"] == 300
    assert latency["report_to_dispatched"]["p50_ms"] > latency["report_to_registered"]["p50_ms"]
    # Every sampled case was seen armed and scored by the pollers, after its dispatch.
    sampled = len(range(0, 300, bench_pipeline.SAMPLE_EVERY))
    for stage in ("armed", "scored"):
        assert latency[f"report_to_{stage}"]["n"] == sampled
        assert "not_through" not in latency[f"report_to_{stage}"]
        assert latency[f"report_to_{stage}"]["p50_ms"] > latency["report_to_registered"]["p50_ms"]
    assert 0 < latency["armed_scored_poll_window_ms_mean"]
    assert latency["armed_scored_key_lookups"] >= 2 * sampled
    # 3 s of reports fall in one 10 s window, whose p99 is the run's.
    assert latency["p99_dispatched_ms_by_window"] == [
        round(latency["report_to_dispatched"]["p99_ms"])
    ]
    # Every event a service consumed in (b) left one inbox row, and no more: the readings
    # waited for the statistics to settle (2 of each case's events for the followers).
    written = figures["pipeline"]["rows_written_per_report"]
    inbox = {name: w["tables"]["inbox"]["inserted"] for name, w in written.items()}
    assert inbox == {"intake": 2.0, "dispatch": 1.0, "supervision": 2.0, "scoring": 2.0}
    assert written["dispatch"]["tables"]["outbox"] == {
        "inserted": 1.0,
        "updated": 0.0,
        "hot": 0.0,
        "deleted": 1.0,
    }
    assert set(figures["exit_codes"].values()) == {0}
    assert not set(figures["profiles"]) - {"intake", "dispatch", "supervision", "scoring"}


async def test_a_sampler_stopped_before_its_first_tick_still_measures() -> None:
    # A small backlog can be through before the first 0.5 s tick; (e) then needs a busiest.
    sampler = bench_pipeline.Sampler({"this process": os.getpid()}, None, every=10)
    sampler.start()
    await asyncio.sleep(0.05)
    figures = await sampler.stop()
    assert "cpu_mean" in figures["this process"] and figures["_samples"]["count"] == 1
