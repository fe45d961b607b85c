"""The reliability contract of shared/, shown against the real broker and Postgres.

A tiny ping service stands in for a real one: pings in -> a row per ping and a pong out.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from aiokafka import ConsumerRecord
from prometheus_client import REGISTRY

from shared.db import session_lock
from shared.events.envelope import Envelope, make_event
from shared.runtime import ServiceRuntime, Subscription
from shared.topics import ERROR_HEADERS
from tests.integration.conftest import kafka_settings, service_settings
from tests.integration.dbproxy import CuttableProxy
from tests.integration.helpers import create_topics, eventually, produce, read_topic
from tests.integration.pingsvc import COUNTED, Ping, Pong, ping_runtime, pong_runtime

ROOT = Path(__file__).resolve().parents[2]


def pings(numbers: list[int], key: str = "case-1", fail: set[int] | None = None) -> list:
    now = datetime.now(UTC)
    return [
        make_event(Ping(key=key, n=n, fail=n in (fail or set())), source="test", time=now)
        for n in numbers
    ]


async def applied(database_url: str, schema: str) -> list[int]:
    conn = await asyncpg.connect(database_url)
    try:
        exists = await conn.fetchval("SELECT to_regclass($1)", f"{schema}.applied")
        if exists is None:
            return []
        return [r["n"] for r in await conn.fetch(f"SELECT n FROM {schema}.applied ORDER BY n")]
    finally:
        await conn.close()


def spawn(prefix: str, schema: str, crash_at: str = "") -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PING_SERVICE": f"{prefix}ping",
        "PING_SCHEMA": schema,
        "TOPIC_PREFIX": prefix,
        "CRASH_AT": crash_at,
        "LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen([sys.executable, "-m", "tests.integration.pingsvc"], cwd=ROOT, env=env)


async def wait_exit(proc: subprocess.Popen[bytes], seconds: float = 60) -> int:
    for _ in range(int(seconds * 10)):
        code = proc.poll()
        if code is not None:
            return code
        await asyncio.sleep(0.1)
    proc.kill()
    raise AssertionError("the service did not exit")


async def test_redelivery_after_crash_between_commit_and_ack_is_applied_once(
    prefix, database_url, bootstrap
):
    cfg = kafka_settings(bootstrap)
    schema = f"{prefix}ping"
    await create_topics(cfg, prefix, ["pings", "pongs", "pings.dlq"], partitions=1)
    await produce(cfg, prefix + "pings", pings(list(range(1, 21))))

    crashed = spawn(prefix, schema, crash_at="before_ack")
    assert await wait_exit(crashed) == 17, "the service should crash right after its first commit"
    first = await applied(database_url, schema)
    assert first, "the crashed service committed nothing before the crash"

    healthy = spawn(prefix, schema)
    try:
        done = await eventually(
            lambda: applied(database_url, schema), lambda v: len(v) >= 20, what="20 pings applied"
        )
        await asyncio.sleep(1.0)  # time for a wrongly repeated batch to show itself
        assert await applied(database_url, schema) == list(range(1, 21)) == done
    finally:
        healthy.terminate()
        await wait_exit(healthy)
    # A repeated INSERT would have failed on the primary key and landed in the DLQ.
    assert await read_topic(cfg, prefix + "pings.dlq", seconds=1) == []


async def test_crash_between_publish_and_outbox_delete_duplicates_are_dropped_downstream(
    prefix, database_url, bootstrap
):
    cfg = kafka_settings(bootstrap)
    schema = f"{prefix}ping"
    await create_topics(cfg, prefix, ["pings", "pongs", "pings.dlq", "pongs.dlq"], partitions=1)
    await produce(cfg, prefix + "pings", pings(list(range(1, 11))))

    crashed = spawn(prefix, schema, crash_at="after_publish")
    assert await wait_exit(crashed) == 17
    healthy = spawn(prefix, schema)
    try:
        records = await eventually(
            lambda: read_topic(cfg, prefix + "pongs", seconds=1),
            lambda rs: len({dict(r.headers)["ce_id"] for r in rs}) >= 10 and len(rs) > 10,
            what="pongs republished after the crash",
        )
    finally:
        healthy.terminate()
        await wait_exit(healthy)
    ids = [dict(r.headers)["ce_id"] for r in records]
    assert len(ids) > len(set(ids)) == 10, "the relay should have published some pongs twice"

    downstream = pong_runtime(
        service_settings(f"{prefix}pong", prefix, database_url, bootstrap), f"{prefix}pong"
    )
    await downstream.start()
    try:
        got = await eventually(
            lambda: applied(database_url, f"{prefix}pong"),
            lambda v: len(v) >= 10,
            what="pongs applied",
        )
        await asyncio.sleep(0.5)
        assert await applied(database_url, f"{prefix}pong") == list(range(1, 11)) == got
    finally:
        await downstream.stop()
    assert await read_topic(cfg, prefix + "pongs.dlq", seconds=1) == []


async def test_poison_goes_to_dlq_and_the_partition_flows_on(prefix, database_url, bootstrap):
    cfg = kafka_settings(bootstrap)
    schema = f"{prefix}ping"
    await create_topics(cfg, prefix, ["pings", "pongs", "pings.dlq"], partitions=1)
    first, failing, last = pings([1, 2, 3], fail={2})
    await produce(
        cfg, prefix + "pings", [first, b"\xff not json at all", failing, last], key="case-1"
    )

    runtime = ping_runtime(
        service_settings(f"{prefix}ping", prefix, database_url, bootstrap), schema
    )
    labels = {"service": f"{prefix}ping", "topic": prefix + "pings"}
    COUNTED.clear()
    await runtime.start()
    try:
        await eventually(
            lambda: applied(database_url, schema), lambda v: v == [1, 3], what="good pings applied"
        )
        dead = await read_topic(cfg, prefix + "pings.dlq", expect_at_least=2)
    finally:
        await runtime.stop()
    assert len(dead) == 2
    # The batch failed whole first and was rolled back, then went one event at a time:
    # only what committed is counted, once.
    assert REGISTRY.get_sample_value("dlq_messages_total", labels) == 2
    assert REGISTRY.get_sample_value("events_failed_total", {**labels, "kind": "poison"}) == 1
    # The handler's own after-commit counting: ping 1 was handled in the rolled-back batch
    # and again alone; ping 2's savepoint rolled back. Each good ping counted once.
    assert COUNTED == [1, 3]
    by_exception = {dict(r.headers)[ERROR_HEADERS["exception"]].decode(): r for r in dead}
    assert set(by_exception) == {"PoisonMessage", "ValueError"}
    garbage = by_exception["PoisonMessage"]
    assert garbage.value == b"\xff not json at all", "the DLQ keeps the original bytes"
    headers = {k: v.decode() for k, v in garbage.headers}
    assert headers[ERROR_HEADERS["topic"]] == prefix + "pings"
    assert headers[ERROR_HEADERS["partition"]] == "0"
    assert headers[ERROR_HEADERS["offset"]] == "1"
    assert "not JSON" in headers[ERROR_HEADERS["message"]]
    assert int(headers[ERROR_HEADERS["attempt"]]) >= 1
    failed = {k: v.decode(errors="replace") for k, v in by_exception["ValueError"].headers}
    assert "ping 2 asks to fail" in failed[ERROR_HEADERS["message"]]
    assert failed["ce_id"] == failing.id, "the original headers travel with the dead letter"


async def test_database_outage_is_retried_and_loses_nothing(prefix, database_url, bootstrap):
    cfg = kafka_settings(bootstrap)
    schema = f"{prefix}ping"
    await create_topics(cfg, prefix, ["pings", "pongs", "pings.dlq"], partitions=2)
    proxy = CuttableProxy(database_url)
    await proxy.start()
    runtime = ping_runtime(service_settings(f"{prefix}ping", prefix, proxy.url, bootstrap), schema)
    await runtime.start()
    try:
        await produce(cfg, prefix + "pings", pings([1, 2, 3, 4, 5], key="a"))
        await eventually(
            lambda: applied(database_url, schema), lambda v: len(v) == 5, what="first pings"
        )

        await proxy.cut()
        await produce(cfg, prefix + "pings", pings([6, 7, 8], key="a") + pings([9, 10], key="b"))
        await asyncio.sleep(3)
        assert await applied(database_url, schema) == [1, 2, 3, 4, 5], (
            "nothing can apply while the database is away"
        )

        await proxy.restore()
        await eventually(
            lambda: applied(database_url, schema),
            lambda v: len(v) == 10,
            seconds=40,
            what="all pings after the outage",
        )
        pongs = await read_topic(cfg, prefix + "pongs", expect_at_least=10, seconds=20)
    finally:
        await runtime.stop()
        await proxy.cut()
    assert await applied(database_url, schema) == list(range(1, 11))
    assert len({dict(r.headers)["ce_id"] for r in pongs}) == 10
    assert await read_topic(cfg, prefix + "pings.dlq", seconds=1) == [], "an outage is not poison"


async def test_events_of_one_key_leave_in_order_across_batches(prefix, database_url, bootstrap):
    cfg = kafka_settings(bootstrap)
    schema = f"{prefix}ping"
    await create_topics(cfg, prefix, ["pings", "pongs", "pings.dlq"], partitions=3)
    numbers = list(range(1, 301))
    await produce(
        cfg, prefix + "pings", pings(numbers[:150], key="k1") + pings(numbers[150:], key="k2")
    )
    settings = service_settings(f"{prefix}ping", prefix, database_url, bootstrap, relay_batch=7)
    settings.kafka.max_batch = 11  # many small batches and relay rounds
    runtime = ping_runtime(settings, schema)
    await runtime.start()
    try:
        await read_topic(cfg, prefix + "pongs", expect_at_least=300, seconds=30)
    finally:
        await runtime.stop()
    # Each relay round deletes what the round before it sent: every pong went once.
    pongs = await read_topic(cfg, prefix + "pongs", expect_at_least=300, seconds=30)
    assert len(pongs) == 300
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval(f"SELECT count(*) FROM {schema}.outbox") == 0
    finally:
        await conn.close()
    by_key: dict[bytes, list[int]] = {}
    for record in sorted(pongs, key=lambda r: (r.partition, r.offset)):
        by_key.setdefault(record.key, []).append(json.loads(record.value)["data"]["n"])
    assert by_key[b"k1"] == numbers[:150]
    assert by_key[b"k2"] == numbers[150:]


def _of_a_batch(o: object, prefix: str) -> bool:
    """A record of this test's topics, or faststream's message around a batch of them.

    By type(), not isinstance(): the garbage may hold a weak proxy (the handler's view of
    a message) whose message is gone, and isinstance() would dereference it. Only this
    test's topics count: in the whole suite another test's stopped runtime (its broker's
    objects, its last batch in flight at the stop) can become garbage while this test runs.
    """
    kind = type(o)
    if issubclass(kind, ConsumerRecord):
        return o.topic.startswith(prefix)
    if kind.__module__.startswith("faststream") and "Message" in kind.__qualname__:
        raw = getattr(o, "raw_message", None)
        return any(_of_a_batch(r, prefix) for r in (raw if type(raw) is tuple else (raw,)))
    return False


async def test_consumed_batches_leave_no_garbage_for_the_collector(prefix, database_url, bootstrap):
    # The services collect rarely (shared.runtime.GC_YOUNG_THRESHOLD): a batch that is
    # freed only by the collector stays in memory until a full scan finds it.
    cfg = kafka_settings(bootstrap)
    schema = f"{prefix}ping"
    await create_topics(cfg, prefix, ["pings", "pongs", "pings.dlq"], partitions=2)
    settings = service_settings(f"{prefix}ping", prefix, database_url, bootstrap)
    settings.kafka.max_batch = 7  # several batches
    runtime = ping_runtime(settings, schema)
    await runtime.start()
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        await produce(cfg, prefix + "pings", pings(list(range(1, 41))))
        await read_topic(cfg, prefix + "pongs", expect_at_least=40, seconds=30)
        await eventually(lambda: applied(database_url, schema), lambda ns: len(ns) == 40)
        gc.collect()
        left = Counter(type(o).__qualname__ for o in gc.garbage if _of_a_batch(o, prefix))
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        await runtime.stop()
    assert not left, f"batches left as cyclic garbage: {dict(left)}"


async def test_a_session_lock_is_released_or_dies_with_its_connection(database_url):
    # Pooled connections are not reset on release, so nothing else would free the lock.
    holder, other = await asyncpg.connect(database_url), await asyncpg.connect(database_url)
    try:
        async with session_lock(holder, 4242) as taken:
            assert taken
            async with session_lock(other, 4242) as also:
                assert not also
        async with session_lock(other, 4242) as taken_after:
            assert taken_after

        class UnlockFails:
            def __init__(self, conn: asyncpg.Connection) -> None:
                self.conn = conn
                self.fetchval, self.is_closed, self.terminate = (
                    conn.fetchval,
                    conn.is_closed,
                    conn.terminate,
                )

            async def execute(self, query: str, *args: object) -> str:
                raise ConnectionError("the unlock did not get through")

        try:
            async with session_lock(UnlockFails(holder), 4343) as taken:  # type: ignore[arg-type]
                assert taken
        except ConnectionError:
            pass
        else:
            raise AssertionError("a failed unlock must surface")
        assert holder.is_closed()
        for _ in range(50):  # the server ends the session, and its lock, a moment later
            async with session_lock(other, 4343) as freed:
                if freed:
                    break
            await asyncio.sleep(0.1)
        assert freed
    finally:
        await holder.close()
        await other.close()


async def test_a_dead_lettered_event_can_be_redriven(prefix, database_url, bootstrap):
    """Once the cause is fixed, re-publishing a dead letter must apply it, not drop it as seen."""
    cfg = kafka_settings(bootstrap)
    schema = f"{prefix}ping"
    await create_topics(cfg, prefix, ["pings", "pongs", "pings.dlq"], partitions=1)
    (failing,) = pings([7], fail={7})
    await produce(cfg, prefix + "pings", [failing])
    runtime = ping_runtime(
        service_settings(f"{prefix}ping", prefix, database_url, bootstrap), schema
    )
    await runtime.start()
    try:
        (dead,) = await read_topic(cfg, prefix + "pings.dlq", expect_at_least=1, seconds=20)
        # The operator fixes the cause; here the fix is a corrected copy with the same id.
        fixed = failing.model_copy(update={"data": failing.data.model_copy(update={"fail": False})})
        await produce(cfg, prefix + "pings", [fixed])
        await eventually(
            lambda: applied(database_url, schema), lambda v: v == [7], what="re-driven ping"
        )
        await produce(cfg, prefix + "pings", [fixed])  # and a second re-drive is a duplicate
        await asyncio.sleep(1.5)
    finally:
        await runtime.stop()
    assert await applied(database_url, schema) == [7]
    assert dict(dead.headers)["ce_id"] == failing.id.encode()
    assert len(await read_topic(cfg, prefix + "pings.dlq", seconds=1)) == 1


async def test_a_busy_follower_settles_so_a_keys_events_on_two_topics_meet(
    prefix, database_url, bootstrap
):
    # A case's registration and its dispatch arrive on two topics some hundreds of ms apart:
    # a busy follower's read settles until its oldest record is follower_settle_ms old and
    # takes what came meanwhile, so the two are folded in one batch. A quiet one (reads
    # smaller than follower_settle_min_batch) is not held back.
    cfg = kafka_settings(bootstrap)
    await create_topics(cfg, prefix, ["pings", "pongs", "pings.dlq", "pongs.dlq"], partitions=2)
    batches: list[list[tuple[str, str]]] = []

    async def record(tx: object, events: Sequence[Envelope]) -> None:
        batches.append([(env.type, env.subject) for env in events])

    def handled(group: str) -> Callable[[], Awaitable[int]]:
        # The second service reads the topics from the start: only its own keys count.
        async def count() -> int:
            return sum(1 for b in batches for _, key in b if group in key)

        return count

    async def split_keys(group: str, min_batch: int) -> set[str]:
        """Keys whose ping and pong were handled in different batches."""
        settings = service_settings(f"{prefix}{group}", prefix, database_url, bootstrap)
        settings.kafka.follower_fetch_max_wait_ms = 100
        settings.kafka.follower_settle_ms = 3000  # beyond the pair's sends, one by one
        settings.kafka.follower_settle_min_batch = min_batch
        service = ServiceRuntime(
            settings=settings,
            schema=f"{prefix}{group}",
            migrations_dir=None,
            subscriptions=[Subscription(("pings", "pongs"), record, follower=True)],
        )
        batches.clear()
        await service.start()
        try:
            # Read from where the group starts; its first poll is done before the pair is sent.
            await produce(cfg, prefix + "pings", pings([0], key=f"warm-{group}"))
            await eventually(handled(group), lambda n: n >= 1, seconds=30)
            keys = [f"{group}-{i}" for i in range(20)]
            await produce(cfg, prefix + "pings", [p for k in keys for p in pings([1], key=k)])
            await asyncio.sleep(0.4)  # the pongs follow, as a dispatch follows a registration
            now = datetime.now(UTC)
            await produce(
                cfg,
                prefix + "pongs",
                [make_event(Pong(key=k, n=1), source="t", time=now) for k in keys],
            )
            await eventually(handled(group), lambda n: n >= 1 + 2 * len(keys), seconds=30)
        finally:
            await service.stop()
        batch_of = {event: i for i, batch in enumerate(batches) for event in batch}
        return {k for k in keys if batch_of[("test.ping", k)] != batch_of[("test.pong", k)]}

    assert await split_keys("busy", min_batch=1) == set(), "settled: every pair met"
    # Every read of the quiet follower is below its threshold: the pings are handled as they
    # come, before their pongs are sent.
    assert len(await split_keys("quiet", min_batch=1000)) == 20
