"""`citycases`: the operators' command line (one entry point, subcommands).

    citycases topics create [--partitions N]     create every registry topic and its DLQ
    citycases topics describe                    partitions and end offsets of each topic
    citycases dlq list TOPIC                     what TOPIC.dlq holds, with the error of each
    citycases dlq redrive TOPIC [--offset N ...] publish dead letters back to TOPIC
    citycases simulate [--reports N]             run the city simulator against the running system
    citycases report daily --date D --out F      日报备 as a self-contained HTML page (charts included)
    citycases report weekly --week W --out F     周调度, e.g. --week 2026-W45
    citycases recompute [--schema S]             rebuild every score from the topics and compare
    citycases replay TOPIC --service NAME        rewind NAME's consumer group on TOPIC to the start

Settings come from the environment, as for the services (KAFKA_*, TOPIC_PREFIX, ...);
`make up` writes them to .env.local.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from ops import dlq
from shared.kafka import client_options, end_offsets, ensure_topics, partitions_of
from shared.settings import ServiceSettings
from shared.topics import all_topics, topic_name, topic_partitions

console = Console()


def _settings() -> ServiceSettings:
    return ServiceSettings(service_name="citycases-cli")


async def topics_create(args: argparse.Namespace) -> int:
    s = _settings()
    wanted = topic_partitions(s.topic_prefix, partitions=args.partitions)
    created = await ensure_topics(s.kafka, wanted, replication=args.replication)
    for name in sorted(wanted):
        console.print(
            f"{'created' if name in created else 'exists '}  {name} ({wanted[name]} partitions)"
        )
    return 0


async def topics_describe(args: argparse.Namespace) -> int:
    s = _settings()
    consumer = AIOKafkaConsumer(enable_auto_commit=False, **client_options(s.kafka))
    await consumer.start()
    try:
        topics = await consumer.topics()
        table = Table("topic", "partitions", "messages (end offsets)")
        present = [t.name for t in all_topics(s.topic_prefix) if t.name in topics]
        tps = await partitions_of(consumer, present)
        consumer.assign(tps)
        ends = await end_offsets(consumer, tps) if tps else {}
        for t in all_topics(s.topic_prefix):
            if t.name not in topics:
                table.add_row(t.name, "missing", "")
                continue
            mine = [tp for tp in tps if tp.topic == t.name]
            table.add_row(t.name, str(len(mine)), str(sum(ends[tp] for tp in mine)))
        console.print(table)
    finally:
        await consumer.stop()
    return 0


async def dlq_list(args: argparse.Namespace) -> int:
    s = _settings()
    letters = await dlq.read_dead_letters(s.kafka, topic_name(args.topic, s.topic_prefix) + ".dlq")
    table = Table("partition", "offset", "exception", "message", "from", "attempt")
    for d in letters:
        origin = f"{d.error('topic')}[{d.error('partition')}]@{d.error('offset')}"
        table.add_row(
            str(d.partition),
            str(d.offset),
            d.error("exception"),
            d.error("message")[:80],
            origin,
            d.error("attempt"),
        )
    console.print(table)
    console.print(f"{len(letters)} dead letter(s)")
    return 0


async def dlq_redrive(args: argparse.Namespace) -> int:
    s = _settings()
    letters = await dlq.read_dead_letters(s.kafka, topic_name(args.topic, s.topic_prefix) + ".dlq")
    if args.offset:
        chosen = [d for d in letters if d.offset in set(args.offset)]
        missing = set(args.offset) - {d.offset for d in chosen}
        if missing:
            console.print(f"[red]no dead letter at offset(s) {sorted(missing)}[/red]")
            return 2
    else:
        chosen = letters
    with Progress(console=console) as progress:
        task = progress.add_task("re-driving", total=len(chosen))
        for letter in chosen:
            await dlq.redrive(s.kafka, [letter])
            progress.advance(task)
    console.print(f"re-drove {len(chosen)} message(s) to {args.topic}")
    return 0


async def simulate(args: argparse.Namespace) -> int:
    from ops.simulator.run import CitySimulator
    from shared.clock import clock_from_settings
    from shared.reference import load_reference

    s = _settings()
    ref = load_reference()
    clock = clock_from_settings(s.clock_scale, s.clock_start, s.clock_anchor)
    sim = CitySimulator(
        ref,
        s.kafka,
        clock,
        prefix=s.topic_prefix,
        seed=args.seed,
        dispatch_url=args.dispatch_url,
        dispatch_key=args.dispatch_key,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = asyncio.create_task(sim.run(stop, max_reports=args.reports))
    with Progress(console=console) as progress:
        task = progress.add_task("reports submitted", total=args.reports)
        while not runner.done() and not stop.is_set():
            progress.update(task, completed=sim.submitted.total())
            if (
                args.reports is not None
                and sim.submitted.total() >= args.reports
                and args.exit_when_done
            ):
                stop.set()
            await asyncio.sleep(0.5)
    stop.set()
    await runner
    console.print(f"submitted {sim.submitted.total()} reports; answered {dict(sim.answered)}")
    return 0


async def report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ops.reports import export
    from shared.reference import load_reference

    when = args.date if args.kind == "daily" else args.week
    if not when:
        console.print(
            f"[red]report {args.kind} needs --{'date' if args.kind == 'daily' else 'week'}[/red]"
        )
        return 2
    with Progress(console=console, transient=True) as progress:
        progress.add_task(f"fetching the {args.kind} figures", total=None)
        try:
            page = await export(args.kind, when, args.scoring_url, load_reference())
        except httpx.HTTPStatusError as exc:
            console.print(
                f"[red]scoring refused: {exc.response.status_code} {exc.response.text[:300]}[/red]"
            )
            return 2
        except httpx.HTTPError as exc:
            console.print(f"[red]cannot reach scoring at {args.scoring_url}: {exc}[/red]")
            return 2
    await asyncio.to_thread(Path(args.out).write_text, page, encoding="utf-8")
    console.print(f"wrote {args.out} ({len(page) // 1024} KiB)")
    return 0


async def recompute(args: argparse.Namespace) -> int:
    from services.scoring.recompute import main as recompute_main

    argv = ["--schema", args.schema] if args.schema else []
    return await asyncio.to_thread(recompute_main, argv)


async def replay(args: argparse.Namespace) -> int:
    """Rewind a service's consumer group on one topic: the service re-reads it from the start.

    The service must be stopped (a live member would rejoin at its committed
    position). Its inbox drops every event it has already applied, so a replay
    into a running schema changes nothing; into an emptied schema it rebuilds.
    """
    s = _settings()
    topic = topic_name(args.topic, s.topic_prefix)
    group = f"{s.topic_prefix}{args.service}.{args.topic}" if args.group is None else args.group
    consumer = AIOKafkaConsumer(
        topic, group_id=group, enable_auto_commit=False, **client_options(s.kafka)
    )
    await consumer.start()
    try:
        for _ in range(100):
            if consumer.assignment():
                break
            await consumer.getmany(timeout_ms=200)
        tps = list(consumer.assignment())
        if not tps:
            console.print(
                f"[red]could not join group {group} on {topic} (is the service stopped?)[/red]"
            )
            return 2
        starts = await consumer.beginning_offsets(tps)
        await consumer.commit({tp: offset for tp, offset in starts.items()})
    finally:
        await consumer.stop()
    console.print(f"rewound group {group} on {topic} ({len(tps)} partitions) to the start")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="citycases", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="command", required=True)

    topics = sub.add_parser(
        "topics", help="create or describe the registry's topics"
    ).add_subparsers(dest="action", required=True)
    create = topics.add_parser("create")
    create.add_argument("--partitions", type=int, default=None, help="override every default")
    create.add_argument("--replication", type=int, default=1)
    create.set_defaults(run=topics_create)
    topics.add_parser("describe").set_defaults(run=topics_describe)

    dead = sub.add_parser("dlq", help="list or re-drive dead letters").add_subparsers(
        dest="action", required=True
    )
    listing = dead.add_parser("list")
    listing.add_argument("topic", help="the source topic, e.g. reports")
    listing.set_defaults(run=dlq_list)
    again = dead.add_parser("redrive")
    again.add_argument("topic")
    again.add_argument(
        "--offset", type=int, action="append", help="only these DLQ offsets (repeatable)"
    )
    again.set_defaults(run=dlq_redrive)

    sim = sub.add_parser("simulate", help="run the city simulator against the running system")
    sim.add_argument("--reports", type=int, default=None, help="stop submitting after N reports")
    sim.add_argument(
        "--exit-when-done", action="store_true", help="exit once N reports are submitted"
    )
    sim.add_argument("--seed", type=int, default=7)
    sim.add_argument("--dispatch-url", default="http://127.0.0.1:8081", help="dispatch's HTTP API")
    sim.add_argument(
        "--dispatch-key",
        default=os.environ.get("CITYCASES_DISPATCH_KEY"),
        help="the command centre's API key for manual dispatch (default: $CITYCASES_DISPATCH_KEY)",
    )
    sim.set_defaults(run=simulate)

    rep = sub.add_parser("report", help="export the daily or weekly report as HTML")
    rep.add_argument("kind", choices=["daily", "weekly"])
    rep.add_argument("--date", help="the day, e.g. 2026-11-03 (daily)")
    rep.add_argument("--week", help="the ISO week, e.g. 2026-W45 (weekly)")
    rep.add_argument("--out", required=True, help="the HTML file to write")
    rep.add_argument("--scoring-url", default="http://127.0.0.1:8083")
    rep.set_defaults(run=report)

    again_all = sub.add_parser("recompute", help="rebuild every score from the topics and compare")
    again_all.add_argument("--schema", default=None, help="the schema to rebuild into")
    again_all.set_defaults(run=recompute)

    back = sub.add_parser("replay", help="rewind a stopped service's consumer group on one topic")
    back.add_argument("topic", help="e.g. cases")
    back.add_argument("--service", required=True, help="e.g. dispatch")
    back.add_argument("--group", default=None, help="the group, if not <prefix><service>.<topic>")
    back.set_defaults(run=replay)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    result: Any = asyncio.run(args.run(args))
    return int(result)


if __name__ == "__main__":
    sys.exit(main())
