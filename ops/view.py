"""The live terminal view of `make run`: what the city is doing, refreshed every second.

Everything shown is read the way an operator would read it: the services'
/readyz and /metrics, their HTTP APIs, and the topics' end offsets.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from ops.simulator.run import CitySimulator
from shared.clock import Clock
from shared.kafka import client_options, end_offsets, partitions_of
from shared.settings import KafkaSettings
from shared.topics import TOPICS, topic_name


@dataclass
class Snapshot:
    healthy: dict[str, bool] = field(default_factory=dict)
    metrics: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = field(
        default_factory=dict
    )
    topic_counts: dict[str, int] = field(default_factory=dict)
    overdue: list[dict[str, Any]] = field(default_factory=list)
    ranking: list[dict[str, Any]] = field(default_factory=list)

    @property
    def all_healthy(self) -> bool:
        return bool(self.healthy) and all(self.healthy.values())

    @property
    def every_topic_has_events(self) -> bool:
        return bool(self.topic_counts) and all(n > 0 for n in self.topic_counts.values())

    def metric(self, service: str, name: str, **labels: str) -> float:
        """Sum of a metric's samples in one service whose labels include ``labels``."""
        total = 0.0
        for (sample, sample_labels), value in self.metrics.get(service, {}).items():
            if sample == name and all((k, v) in sample_labels for k, v in labels.items()):
                total += value
        return total

    def by_label(self, service: str, name: str, label: str) -> dict[str, float]:
        out: dict[str, float] = defaultdict(float)
        for (sample, sample_labels), value in self.metrics.get(service, {}).items():
            if sample == name:
                key = dict(sample_labels).get(label)
                if key is not None:
                    out[key] += value
        return dict(out)


async def collect(
    http: httpx.AsyncClient,
    ports: dict[str, int],
    consumer: AIOKafkaConsumer,
    prefix: str,
    period: str,
) -> Snapshot:
    snap = Snapshot()
    for name, port in ports.items():
        base = f"http://127.0.0.1:{port}"
        try:
            snap.healthy[name] = (await http.get(f"{base}/readyz")).status_code == 200
            text = (await http.get(f"{base}/metrics")).text
            samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
            for family in text_string_to_metric_families(text):
                for s in family.samples:
                    samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
            snap.metrics[name] = samples
        except httpx.HTTPError:
            snap.healthy[name] = False
    with contextlib.suppress(httpx.HTTPError, ValueError, KeyError, TypeError):
        body = (await http.get(f"http://127.0.0.1:{ports['supervision']}/v1/overdue")).json()
        snap.overdue = body.get("cases", body) if isinstance(body, dict) else body
    with contextlib.suppress(httpx.HTTPError, ValueError, KeyError, TypeError):
        body = (
            await http.get(
                f"http://127.0.0.1:{ports['scoring']}/v1/scores",
                params={"unit_type": "department", "period": period},
            )
        ).json()
        rows = body.get("units", []) if isinstance(body, dict) else []
        snap.ranking = rows if isinstance(rows, list) else []
    names = {topic.base: topic_name(topic.base, prefix) for topic in TOPICS}
    tps = await partitions_of(consumer, list(names.values()))
    # A fresh assignment each time: the high watermarks end_offsets reads are this snapshot's.
    consumer.assign(tps)
    ends = await end_offsets(consumer, tps) if tps else {}
    for base, name in names.items():
        snap.topic_counts[base] = sum(n for tp, n in ends.items() if tp.topic == name)
    return snap


@dataclass
class CityView:
    clock: Clock
    scale: float
    ports: dict[str, int]
    simulator: CitySimulator
    kafka: KafkaSettings
    prefix: str

    async def show(self, stop: asyncio.Event, headless: bool, until_every_topic: bool) -> Snapshot:
        consumer = AIOKafkaConsumer(enable_auto_commit=False, **client_options(self.kafka))
        await consumer.start()
        snapshot = Snapshot()
        console = Console()
        try:
            async with httpx.AsyncClient(timeout=2) as http:
                with (
                    contextlib.nullcontext()
                    if headless
                    else Live(console=console, refresh_per_second=2)
                ) as live:
                    tick = 0
                    while not stop.is_set():
                        period = self.clock.now().astimezone().strftime("%Y-%m")
                        snapshot = await collect(http, self.ports, consumer, self.prefix, period)
                        if live is not None:
                            live.update(self.render(snapshot))
                        elif tick % 5 == 0:
                            console.print(self.line(snapshot))
                        if (
                            until_every_topic
                            and snapshot.every_topic_has_events
                            and snapshot.all_healthy
                        ):
                            console.print(self.line(snapshot))
                            stop.set()
                        tick += 1
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(stop.wait(), timeout=1.0)
        finally:
            await consumer.stop()
        return snapshot

    def line(self, s: Snapshot) -> str:
        health = " ".join(f"{n}:{'up' if ok else 'DOWN'}" for n, ok in s.healthy.items())
        topics = " ".join(f"{t}={n}" for t, n in s.topic_counts.items())
        return f"[{self.clock.now():%Y-%m-%d %H:%M}] {health} | {topics}"

    def render(self, s: Snapshot) -> Group:
        now = self.clock.now()
        header = Table.grid(expand=True)
        header.add_row(
            f"[b]城市运行 · simulated city[/b]  {now:%Y-%m-%d %a %H:%M} (×{self.scale:g})",
            "  ".join(f"{n} [{'green' if ok else 'red'}]●[/]" for n, ok in s.healthy.items()),
        )
        channels = Table("channel", "reports", title="reports in")
        for channel, n in self.simulator.submitted.most_common():
            channels.add_row(channel, str(n))
        flow = Table("service", "in", "out", "dup", "DLQ", "outbox", title="pipeline")
        for name in self.ports:
            flow.add_row(
                name,
                f"{s.metric(name, 'events_consumed_total'):.0f}",
                f"{s.metric(name, 'events_published_total'):.0f}",
                f"{s.metric(name, 'events_duplicate_total'):.0f}",
                f"{s.metric(name, 'dlq_messages_total'):.0f}",
                f"{s.metric(name, 'outbox_backlog_rows'):.0f}",
            )
        topics = Table("topic", "events", title="topics")
        for topic, n in s.topic_counts.items():
            topics.add_row(topic, str(n))
        overdue = Table("department", "overdue", title="overdue now")
        per_department: dict[str, int] = defaultdict(int)
        for row in s.overdue if isinstance(s.overdue, list) else []:
            if isinstance(row, dict):
                per_department[str(row.get("department", "?"))] += 1
        for department, n in sorted(per_department.items(), key=lambda kv: -kv[1])[:8]:
            overdue.add_row(department, str(n))
        ranking = Table("#", "department", "score", "band", title=f"ranking {now:%Y-%m}")
        for row in (s.ranking if isinstance(s.ranking, list) else [])[:10]:
            if isinstance(row, dict):
                ranking.add_row(
                    str(row.get("rank") or "–"),
                    str(row.get("unit_id", "?")),
                    f"{row.get('score') or 0:.1f}",
                    str(row.get("band", "")),
                )
        answers = Table("answer", "n", title="city's answers")
        for action, n in self.simulator.answered.most_common():
            answers.add_row(action, str(n))
        row1 = Table.grid(padding=(0, 2))
        row1.add_row(channels, flow, topics)
        row2 = Table.grid(padding=(0, 2))
        row2.add_row(overdue, ranking, answers)
        return Group(Panel(header), row1, row2, "[dim]Ctrl-C stops everything cleanly[/dim]")
