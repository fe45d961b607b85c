"""A reduced fault run inside `make test` (the full one is `make test-faults`).

A few thousand reports while each service is SIGKILLed once, the broker frozen,
PostgreSQL restarted, a consumer group rewound and poison sent; the audit must
find every report decided exactly once, every case dispatched, no timer fired
twice or lost, scores equal to a recompute and only the poison dead-lettered.
It runs ``python -m ops.faults`` as operators do, on its own broker and embedded
PostgreSQL (it freezes and restarts them, so never the suite's shared ones).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_reduced_fault_run_accounts_for_every_report_exactly_once(tmp_path):
    out = tmp_path / "tally.json"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "TOPIC_PREFIX")
        and not k.startswith("DEVSTACK_")
    }
    # quick group rejoins after each kill; the full run keeps the defaults
    env.update(
        KAFKA_SESSION_TIMEOUT_MS="3000", KAFKA_HEARTBEAT_INTERVAL_MS="500", LOG_LEVEL="WARNING"
    )
    command = [
        sys.executable,
        "-m",
        "ops.faults",
        "--reports",
        "3000",
        "--rate",
        "60",
        "--kills",
        "1",
        "--freeze",
        "6",
        "--drain",
        "120",
        "--seed",
        "5",
        "--out",
        str(out),
        "--logs",
        str(tmp_path / "logs"),
    ]
    started = time.monotonic()
    proc = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        stdout, stderr = proc.communicate(timeout=540)
    except subprocess.TimeoutExpired:
        proc.terminate()  # SIGTERM: the run resumes the broker and stops what it started
        stdout, stderr = proc.communicate(timeout=90)
    result = subprocess.CompletedProcess(command, proc.returncode, stdout, stderr)
    elapsed = time.monotonic() - started
    print(result.stdout[-4000:])
    assert out.exists(), result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(out.read_text())
    tally = report["tally"]
    assert result.returncode == 0, f"audit failed: {tally['failures']}\n{result.stdout[-3000:]}"
    assert {f["kind"] for f in report["injected"]} == {
        "kill",
        "freeze",
        "postgres",
        "rewind",
        "poison",
    }
    assert {f["target"] for f in report["injected"] if f["kind"] == "kill"} == {
        "intake",
        "dispatch",
        "supervision",
        "scoring",
    }
    assert tally["reports_in"] >= 2900  # the simulator's sends all reached the topic
    assert tally["accounted"] == tally["reports_in"]
    assert tally["lost"] == 0 and tally["double_counted"] == 0
    assert (
        tally["registered"] > 0 and tally["dispatched"] + tally["escalated"] == tally["registered"]
    )
    assert tally["dead_letters"] >= tally["poison_sent"] > 0
    assert elapsed < 420, f"took {elapsed:.0f}s"
