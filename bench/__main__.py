"""``python -m bench [NAME ...]``: run every ``bench/bench_*.py`` (or the named ones) in turn.

Each benchmark module has ``async def main() -> dict`` returning its figures;
they are printed and written to ``bench/results/<name>.json``. Then
``bench/results/SUMMARY.md`` is rewritten from every result file and printed.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil

from bench import summary

HERE = Path(__file__).parent
#: A benchmark starts once the machine's CPU has been under this share for a second ...
QUIET_PERCENT = 10.0
#: ... or after this long, whichever comes first (the wait is written to the results).
QUIET_MAX_SECONDS = 90.0


def settle() -> float:
    """Wait for what the last benchmark left running (the database's checkpoint after a
    burst of writes, services still stopping) to finish; returns the seconds waited."""
    began = time.monotonic()
    while time.monotonic() - began < QUIET_MAX_SECONDS:
        if psutil.cpu_percent(interval=1.0) < QUIET_PERCENT:
            break
    return round(time.monotonic() - began, 1)


def main(argv: list[str]) -> int:
    names = argv or sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))
    results_dir = HERE / "results"
    results_dir.mkdir(exist_ok=True)
    for name in names:
        module = importlib.import_module(f"bench.bench_{name}")
        waited = settle() if len(names) > 1 else 0.0
        print(f"== {name}", flush=True)
        figures = asyncio.run(module.main())
        figures["_settled_seconds"] = waited
        figures["_measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        figures["_machine"] = f"{platform.machine()} {platform.python_version()}"
        (results_dir / f"{name}.json").write_text(
            json.dumps(figures, indent=2, ensure_ascii=False) + "\n"
        )
        for key, value in figures.items():
            if not key.startswith("_"):
                print(f"  {key}: {value}")
    summary.main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
