"""`make run` reaches a steady simulated city: every service healthy and events on every topic."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_simulated_city_reaches_every_topic_within_two_minutes(prefix):
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "ops.stack", "--headless", "--until-every-topic", "--free-ports"],
        cwd=ROOT,
        env={**os.environ, "TOPIC_PREFIX": prefix, "LOG_LEVEL": "WARNING"},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "every topic had events: True; healthy: True" in result.stdout
    assert elapsed < 120, f"took {elapsed:.0f}s"
