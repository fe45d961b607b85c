"""Timers survive a killed process and are shared by instances, each firing exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from services.supervision.app import build_with_scheduler
from shared.devstack import free_port
from tests.integration.conftest import kafka_settings
from tests.integration.helpers import eventually
from tests.integration.supervision.support import (
    dispatch,
    fetch,
    make_topics,
    published,
    schema,
    send,
    settings,
)

ROOT = Path(__file__).resolve().parents[3]
DAY = timedelta(days=1)


def _spawn(prefix: str, port: int, batch: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TOPIC_PREFIX": prefix,
        "DB_SCHEMA": schema(prefix),
        "HTTP_PORT": str(port),
        "TIMER_BATCH": str(batch),
        # One firing transaction at a time: the restart test must catch a process mid-firing.
        "TIMER_WORKERS": "1",
        "TIMER_RECHECK_SECONDS": "0.5",
        "RELAY_POLL_SECONDS": "0.2",
        "KAFKA_SESSION_TIMEOUT_MS": "3000",
        "KAFKA_HEARTBEAT_INTERVAL_MS": "500",
        "KAFKA_BATCH_TIMEOUT_MS": "20",
        "LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen([sys.executable, "-m", "services.supervision"], cwd=ROOT, env=env)


async def _ready(proc: subprocess.Popen[bytes], port: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(timeout=1) as http:
        while time.monotonic() < deadline:
            assert proc.poll() is None, "the service exited"
            try:
                if (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("the service never became ready")


def _kill(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)


async def _pending(database_url: str, prefix: str) -> int:
    rows = await fetch(
        database_url,
        f"SELECT count(*) AS n FROM {schema(prefix)}.timers WHERE kind = 'sign_for'",
    )
    return int(rows[0]["n"])


def _sign_for_overdue_ids(events) -> dict[str, set[str]]:  # type: ignore[no-untyped-def]
    ids: dict[str, set[str]] = {}
    for e in events:
        if e.type == "case.overdue" and e.data.timer == "sign_for":
            ids.setdefault(e.subject, set()).add(e.id)
    return ids


async def test_a_killed_process_fires_every_due_timer_exactly_once_after_restart(
    prefix, database_url, bootstrap
):
    cfg = kafka_settings(bootstrap)
    await make_topics(cfg, prefix)
    cases = [f"k{n:03d}" for n in range(300)]
    port = free_port()
    first = _spawn(prefix, port, batch=2)
    try:
        await _ready(first, port)
        due = datetime.now(UTC) + timedelta(seconds=3)
        # Dispatched a day ago, sign-for deadline in 3 s: only that timer comes due.
        await send(
            cfg,
            prefix,
            "assignments",
            [dispatch(c, due - DAY, sign_for=DAY, handle=2 * DAY) for c in cases],
        )
        await eventually(
            lambda: _pending(database_url, prefix),
            lambda n: n == len(cases),
            what="sign-for timers armed",
        )
    finally:
        _kill(first)
    assert datetime.now(UTC) < due, "killed before the timers came due"
    await asyncio.sleep((due - datetime.now(UTC)).total_seconds() + 0.5)

    # A second process starts with every timer due; kill it again while it fires (its
    # batches are small and fired one at a time, so that takes a while), then let a third
    # one finish.
    second = _spawn(prefix, port, batch=2)
    try:
        remaining = await eventually(
            lambda: _pending(database_url, prefix),
            lambda n: n < len(cases),
            seconds=60,
            what="firing started after the restart",
        )
    finally:
        _kill(second)
    third = _spawn(prefix, port, batch=2)
    try:
        await _ready(third, port)
        await eventually(lambda: _pending(database_url, prefix), lambda n: n == 0, what="all fired")
        events = await eventually(
            lambda: published(cfg, prefix, seconds=0.5),
            lambda es: len(_sign_for_overdue_ids(es)) == len(cases),
            what="every overdue published",
        )
        await asyncio.sleep(1.0)  # time for a wrongly repeated firing to show itself
        events = await published(cfg, prefix)
    finally:
        third.send_signal(signal.SIGTERM)
        assert third.wait(timeout=30) == 0
    ids = _sign_for_overdue_ids(events)
    assert set(ids) == set(cases)
    assert all(len(event_ids) == 1 for event_ids in ids.values()), (
        "one firing per timer (a republished event keeps its id)"
    )
    assert 0 < remaining < len(cases), "the second process was killed while firing"
    rows = await fetch(
        database_url,
        f"SELECT count(*) AS n FROM {schema(prefix)}.cases "
        "WHERE sign_for_overdue_at IS NOT NULL AND case_id LIKE 'k%'",
    )
    assert rows[0]["n"] == len(cases)


async def test_two_instances_share_the_timers_and_never_fire_the_same_one(
    prefix, database_url, bootstrap
):
    cfg = kafka_settings(bootstrap)
    await make_topics(cfg, prefix)
    one, one_scheduler = build_with_scheduler(
        settings(prefix, database_url, bootstrap, timer_batch=20)
    )
    two, two_scheduler = build_with_scheduler(
        settings(prefix, database_url, bootstrap, timer_batch=20)
    )
    await asyncio.gather(one.start(), two.start())
    cases = [f"s{n:04d}" for n in range(1000)]
    try:
        due = datetime.now(UTC) + timedelta(seconds=2)
        await send(
            cfg,
            prefix,
            "assignments",
            [dispatch(c, due - DAY, sign_for=DAY, handle=2 * DAY) for c in cases],
        )
        events = await eventually(
            lambda: published(cfg, prefix, seconds=0.5),
            lambda es: len(_sign_for_overdue_ids(es)) == len(cases),
            seconds=60,
            what="every timer fired",
        )
        await asyncio.sleep(1.0)
        events = await published(cfg, prefix)
    finally:
        await asyncio.gather(one.stop(), two.stop())
    ids = _sign_for_overdue_ids(events)
    assert set(ids) == set(cases)
    assert {len(event_ids) for event_ids in ids.values()} == {1}, "no timer fired twice"
    assert Counter(e.type for e in events) == {"case.overdue": len(cases)}
    shares = [one_scheduler.fired_total, two_scheduler.fired_total]
    assert sum(shares) == len(cases)
    assert all(share > 0 for share in shares), f"both instances fired some: {shares}"
