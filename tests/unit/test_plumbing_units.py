"""Pure parts of the plumbing: envelope encoding, transient classification, logs, settings."""

import asyncio
import json
import logging
import time
from datetime import UTC, datetime

import asyncpg
import pytest

from shared.db import is_transient
from shared.events.envelope import (
    EventData,
    PoisonMessage,
    decode,
    encode,
    kafka_headers,
    make_event,
)
from shared.logs import JsonFormatter
from shared.settings import KafkaSettings, ServiceSettings


class UnitProbe(EventData):
    event_type = "test.unit_probe"
    topic = "probes"
    subject_field = "key"
    key: str
    department: str
    area: str = ""
    n: int


def test_envelope_round_trip_and_headers():
    env = make_event(
        UnitProbe(key="C1", department="D01", n=3),
        source="test",
        time=datetime(2026, 11, 2, tzinfo=UTC),
    )
    raw = encode(env)
    doc = json.loads(raw)
    assert doc["specversion"] == "1.0" and doc["type"] == "test.unit_probe"
    assert doc["data"] == {"key": "C1", "department": "D01", "area": "", "n": 3}
    assert decode(raw) == env
    assert dict(kafka_headers(env)) == {
        "content-type": b"application/cloudevents+json",
        "ce_type": b"test.unit_probe",
        "ce_id": env.id.encode(),
        "department": b"D01",
    }


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\x00\xff", "not JSON"),
        (b"[1,2]", "not a CloudEvents JSON object"),
        (b'{"specversion":"0.3"}', "specversion"),
        (b'{"specversion":"1.0","type":"nope"}', "unknown event type"),
        (
            b'{"specversion":"1.0","type":"test.unit_probe","id":"1","source":"s","subject":"c",'
            b'"time":"2026-11-02T00:00:00Z","data":{"key":"c","department":"D","n":"many"}}',
            "n:",
        ),
        (None, "tombstone"),
    ],
)
def test_decode_names_what_is_wrong(raw, reason):
    with pytest.raises(PoisonMessage, match=reason):
        decode(raw)


def test_ids_sort_by_creation():
    from shared.ids import new_ulid

    a, b = new_ulid(1_000), new_ulid(2_000)
    assert len(a) == 26 and a < b


def test_transient_classification():
    assert is_transient(ConnectionRefusedError())
    assert is_transient(asyncpg.exceptions.ConnectionDoesNotExistError("gone"))
    assert is_transient(asyncpg.exceptions.DeadlockDetectedError("deadlock"))
    assert not is_transient(ValueError("bad data"))
    assert not is_transient(asyncpg.exceptions.UniqueViolationError("dup"))
    try:
        try:
            raise ConnectionResetError()
        except ConnectionResetError:
            raise KeyError("bug while handling an outage")  # noqa: B904
    except KeyError as bug:
        assert not is_transient(bug), "only an explicit cause makes a wrapped error transient"


def test_json_log_line_carries_ids():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello %s", ("world",), None)
    record.case_id = "C1"
    record.event_id = "E1"
    line = json.loads(JsonFormatter("intake").format(record))
    assert line["msg"] == "hello world" and line["case_id"] == "C1" and line["event_id"] == "E1"
    assert line["service"] == "intake" and line["level"] == "INFO"


def test_settings_from_environment(monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "k1:9092,k2:9092")
    monkeypatch.setenv("KAFKA_IDEMPOTENCE", "false")
    monkeypatch.setenv("DATABASE_URL", "postgresql://x@db/y")
    monkeypatch.setenv("CLOCK_SCALE", "3600")
    s = ServiceSettings()
    assert s.kafka.bootstrap_servers == "k1:9092,k2:9092" and s.kafka.idempotence is False
    assert s.database_url == "postgresql://x@db/y" and s.clock_scale == 3600


def test_sasl_settings_must_be_complete():
    from shared.kafka import client_options

    with pytest.raises(ValueError, match="KAFKA_SASL_USERNAME"):
        client_options(
            KafkaSettings(security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-512")
        )
    opts = client_options(
        KafkaSettings(
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism="SCRAM-SHA-512",
            sasl_username="intake",
            sasl_password="secret",
        )
    )
    assert opts["sasl_mechanism"] == "SCRAM-SHA-512" and opts["sasl_plain_username"] == "intake"


def test_fast_encoding_is_the_plain_json_of_every_contract_event():
    import json

    from shared.events.envelope import to_json_dict
    from shared.events.examples import example_event, example_types

    for event_type in example_types():
        env = example_event(event_type)
        plain = json.dumps(to_json_dict(env), ensure_ascii=False, separators=(",", ":")).encode()
        assert encode(env) == plain, event_type


def test_emitting_with_the_data_already_serialised_publishes_the_same_event():
    from shared.events.examples import example_event
    from shared.outbox import Tx

    tx = Tx(conn=None, topic_prefix="p_")  # type: ignore[arg-type]
    for event_type in ("case.registered", "case.merged", "report.rejected", "case.dispatched"):
        envelope = example_event(event_type)
        tx.emit(envelope, data_json=envelope.data.model_dump_json())
        tx.emit(envelope)
        spliced, plain = tx.pending[-2:]
        assert decode(spliced.value) == envelope
        assert spliced.value == plain.value == encode(envelope)
        assert (spliced.topic, spliced.key, spliced.headers, spliced.event_type) == (
            plain.topic,
            plain.key,
            kafka_headers(envelope),
            event_type,
        )


class _NeedsReads:
    """A read watcher that needs the reads by what ``needed_by`` says, and hears nothing."""

    def __init__(self, needed_by):
        self.reads_needed_by = needed_by

    def caught_up(self, subscription, as_of, partitions):
        raise AssertionError("the probe's consumer holds no partitions: never caught up")


def _batch_reader(*, follower: bool = False, reads_needed_by=None, **kafka: int):
    """The batch reader ``subscribe`` gives a subscriber, from a broker that never connects."""
    from faststream.kafka import KafkaBroker

    from shared.consumer import ConsumerContext, subscribe

    async def handler(tx, events):  # never called: nothing is consumed here
        raise AssertionError

    ctx = ConsumerContext(
        service="probe",
        pool=None,  # type: ignore[arg-type]
        kafka=KafkaSettings(**kafka),
        reads=None if reads_needed_by is None else _NeedsReads(reads_needed_by),
    )
    broker = KafkaBroker("127.0.0.1:1")
    subscribe(broker, ctx, ("a", "b"), "probe", handler, follower=follower)
    (subscriber,) = broker.subscribers
    return subscriber.get_msg


async def test_an_empty_poll_does_not_sleep_before_the_next():
    """faststream's batch loop slept batch_timeout_ms after each empty poll: records arriving
    then waited it out (up to 50 ms a hop). The reader the services use returns at once."""

    class Consumer:
        polls: list[dict[str, int]] = []

        async def getmany(self, timeout_ms: int, max_records: int) -> dict[str, list[int]]:
            self.polls.append({"timeout_ms": timeout_ms, "max_records": max_records})
            return {} if len(self.polls) == 1 else {"p0": [1, 2], "p1": [3]}

    read = _batch_reader(batch_timeout_ms=200, max_batch=7)
    consumer = Consumer()
    began = time.perf_counter()
    assert await read(consumer) == ()
    assert time.perf_counter() - began < 0.1
    assert await read(consumer) == (1, 2, 3)
    assert consumer.polls == [{"timeout_ms": 200, "max_records": 7}] * 2


def test_a_settled_heap_is_the_services_and_the_collector_is_given_back() -> None:
    import gc

    from shared.runtime import GC_YOUNG_THRESHOLD, settled_heap

    before = gc.get_threshold()
    with settled_heap():
        assert gc.get_threshold()[0] == GC_YOUNG_THRESHOLD
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


class _Record:
    def __init__(self, offset: int, age: float) -> None:
        self.topic, self.partition, self.offset = "t", 0, offset
        self.timestamp = int((time.time() - age) * 1000)


class _Fetches:
    """A consumer whose reads hand out the given batches in turn, then nothing."""

    def __init__(self, *batches: list[_Record]) -> None:
        self.batches = list(batches)
        self.polls: list[int] = []

    def assignment(self) -> set[object]:
        return set()  # never caught up: no partitions held

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[str, list[_Record]]:
        self.polls.append(max_records)
        if self.batches:
            return {"t-0": self.batches.pop(0)[:max_records]}
        await asyncio.sleep(timeout_ms / 1000)
        return {}


def _settling_reader(settle_ms: int, min_batch: int, reads_needed_by=None, **kafka: int):
    """A follower's reader that settles reads of ``min_batch`` records for ``settle_ms``."""
    return _batch_reader(
        follower=True,
        reads_needed_by=reads_needed_by,
        batch_timeout_ms=20,
        follower_settle_ms=settle_ms,
        follower_settle_min_batch=min_batch,
        **kafka,
    )


async def test_a_busy_followers_read_settles_and_takes_what_came_meanwhile() -> None:
    read = _settling_reader(300, 2, max_batch=50)
    young = [_Record(1, 0.0), _Record(2, 0.0)]
    consumer = _Fetches(young, [_Record(3, 0.0)])
    began = time.perf_counter()
    batch = await read(consumer)
    assert [r.offset for r in batch] == [1, 2, 3]
    assert 0.25 < time.perf_counter() - began < 0.6, "until the oldest record is 300 ms old"
    assert consumer.polls[:2] == [50, 48], "what came meanwhile fills the batch, no more"


async def test_a_quiet_or_late_read_is_not_held() -> None:
    read = _settling_reader(300, 2)
    began = time.perf_counter()
    assert [r.offset for r in await read(_Fetches([_Record(1, 0.0)]))] == [1], "quiet"
    assert [r.offset for r in await read(_Fetches([_Record(1, 1.0), _Record(2, 0.9)]))] == [1, 2]
    assert time.perf_counter() - began < 0.1, "records older than the settle: no wait"


async def test_a_producer_clock_ahead_holds_a_read_no_longer_than_the_settle() -> None:
    read = _settling_reader(200, 1)
    began = time.perf_counter()
    await asyncio.wait_for(read(_Fetches([_Record(1, -3600.0)])), 2)  # stamped an hour ahead
    assert time.perf_counter() - began < 0.4


async def test_a_read_settles_no_later_than_the_reads_are_needed() -> None:
    """Supervision's next due timer waits on the reads: the settle ends when it needs them."""
    needed_by: list[float | None] = []
    read = _settling_reader(1000, 1, reads_needed_by=lambda: needed_by[-1])
    for need, longest in ((0.15, 0.4), (-5.0, 0.1), (None, 1.3)):
        needed_by.append(None if need is None else time.time() + need)
        consumer = _Fetches([_Record(1, 0.0)], [_Record(2, 0.0)])
        began = time.perf_counter()
        batch = await read(consumer)
        took = time.perf_counter() - began
        assert took < longest, (need, took)
        if need is None:
            assert took > 0.9, "nobody waits: the whole settle"
            assert [r.offset for r in batch] == [1, 2]
        elif need < 0:
            assert [r.offset for r in batch] == [1], "needed already: not held at all"
        else:
            assert took > 0.1, "held until the reads are needed, no longer"


async def test_a_full_read_is_not_held() -> None:
    read = _settling_reader(300, 1, max_batch=2)
    began = time.perf_counter()
    assert len(await read(_Fetches([_Record(1, 0.0), _Record(2, 0.0)]))) == 2
    assert time.perf_counter() - began < 0.1
