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
from datetime import UTC, datetime
from pathlib import Path

from bench import summary

HERE = Path(__file__).parent


def main(argv: list[str]) -> int:
    names = argv or sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))
    results_dir = HERE / "results"
    results_dir.mkdir(exist_ok=True)
    for name in names:
        module = importlib.import_module(f"bench.bench_{name}")
        print(f"== {name}", flush=True)
        figures = asyncio.run(module.main())
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
