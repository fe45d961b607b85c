"""``python -m services.scoring.recompute``: every figure rebuilt from the topics, from the beginning.

Reads ``cases``, ``assignments``, ``feedback`` and ``supervision`` from offset
0 up to the end offsets seen at the start, with no consumer group (the live
service's position is untouched), and feeds them through the live service's
own consumer path — inbox, handler, domain — into a fresh schema
(``<schema>_recompute`` unless ``--schema`` says otherwise; dropped and created
again). Nothing is published: the fresh schema's outbox is emptied at the end.

Then it compares every unit's figures with the live schema and prints the
differences (a row missing on one side counts as zeros), exiting 1 if there
are any. The live service keeps consuming meanwhile, so compare when the
topics are quiet, or expect the newest events to show as differences.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaConsumer

from services.scoring import store
from services.scoring.app import MIGRATIONS, SCHEMA, TOPICS
from services.scoring.context import ScoringContext
from services.scoring.domain.figures import FIGURES, ZERO, Figures, UnitKey
from services.scoring.handlers import ScoringHandler
from services.scoring.settings import Settings
from shared.consumer import ConsumerContext, handle_batch
from shared.db import create_pool, ident
from shared.kafka import client_options, read_to_end
from shared.migrations import migrate
from shared.reference import ReferenceData

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class Recomputed:
    schema: str
    events: int
    seconds: float


@dataclass(frozen=True)
class Difference:
    key: UnitKey
    live: Figures
    recomputed: Figures

    def describe(self) -> str:
        changes = ", ".join(
            f"{name} {a}→{b}"
            for name, a, b in zip(FIGURES, self.live, self.recomputed, strict=True)
            if a != b
        )
        k = self.key
        return f"{k.unit_type} {k.unit_id} {k.period_type} {k.period}: {changes} (live→recomputed)"


def live_schema(settings: Settings) -> str:
    return settings.db_schema or SCHEMA


async def _fresh_schema(database_url: str, schema: str) -> None:
    if not _IDENTIFIER.match(schema):
        raise ValueError(f"schema name {schema!r} is not a plain identifier")
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {ident(schema)} CASCADE")
        await migrate(conn, schema, MIGRATIONS)
    finally:
        await conn.close()


async def recompute(
    settings: Settings,
    schema: str,
    reference: ReferenceData | None = None,
    progress: bool = False,
) -> Recomputed:
    """Rebuild ``schema`` from the topics through the live consumer path."""
    started = time.perf_counter()
    await _fresh_schema(settings.database_url, schema)
    pool = await create_pool(settings.database_url, schema, 1, 2)
    consumer = AIOKafkaConsumer(
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        **client_options(settings.kafka),
    )
    await consumer.start()
    handler = ScoringHandler(ScoringContext(settings, reference))
    ctx = ConsumerContext(
        service=f"{settings.service_name}-recompute",
        pool=pool,
        kafka=settings.kafka,
        topic_prefix=settings.topic_prefix,
        max_backoff=settings.retry_max_backoff_seconds,
    )
    events = 0
    try:
        topics = [settings.topic_prefix + topic for topic in TOPICS]
        async for tp, records in read_to_end(consumer, topics, timeout_ms=500):
            while await handle_batch(ctx, tp.topic, records, handler) == "retry":
                pass
            events += len(records)
            if progress:
                print(f"\r{events} events", end="", file=sys.stderr, flush=True)
        async with pool.acquire() as conn:
            await conn.execute("TRUNCATE outbox")
    finally:
        await consumer.stop()
        await pool.close()
    if progress:
        print(file=sys.stderr)
    return Recomputed(schema, events, time.perf_counter() - started)


async def figures_of(database_url: str, schema: str) -> dict[UnitKey, Figures]:
    pool = await create_pool(database_url, schema, 1, 1)
    try:
        async with pool.acquire() as conn:
            return await store.all_figures(conn)
    finally:
        await pool.close()


async def compare(database_url: str, live: str, recomputed: str) -> list[Difference]:
    """Every unit-period whose figures differ between the two schemas (missing rows are zeros)."""
    a = await figures_of(database_url, live)
    b = await figures_of(database_url, recomputed)
    out = [
        Difference(key, a.get(key, ZERO), b.get(key, ZERO))
        for key in sorted(a.keys() | b.keys())
        if a.get(key, ZERO) != b.get(key, ZERO)
    ]
    return out


async def _main(args: argparse.Namespace) -> int:
    settings = Settings()
    target = args.schema or f"{live_schema(settings)}_recompute"
    result = await recompute(settings, target, progress=not args.quiet)
    print(f"recomputed {result.events} events into schema {target} in {result.seconds:.1f}s")
    if args.no_compare:
        return 0
    differences = await compare(settings.database_url, live_schema(settings), target)
    if not differences:
        print(f"the figures of {live_schema(settings)} and {target} are equal")
        return 0
    print(f"{len(differences)} unit-periods differ:")
    for difference in differences[: args.show]:
        print(f"  {difference.describe()}")
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.scoring.recompute",
        description="Recompute every score from the topics and compare with the live figures.",
    )
    parser.add_argument("--schema", help="schema to rebuild into (default: <live>_recompute)")
    parser.add_argument("--no-compare", action="store_true", help="rebuild only")
    parser.add_argument("--show", type=int, default=20, help="differences to print")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return asyncio.run(_main(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
