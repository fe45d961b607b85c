"""Through the real broker: poison on a consumed topic is dead-lettered, and the partition flows.

One run per service: a handful of the fuzz suite's kinds of bad record, all on
one partition (one key), then a good event behind them. The good event must be
handled, and every bad record must arrive on ``<topic>.dlq`` (published by the
relay) with a reason in ``error.message``.
"""

from __future__ import annotations

import json

import pytest
from aiokafka import AIOKafkaProducer

from shared.events.envelope import encode, kafka_headers, to_json_dict
from shared.events.examples import example_event
from shared.ids import new_ulid
from shared.kafka import client_options
from shared.topics import DLQ_HEADER_MESSAGE, DLQ_HEADER_OFFSET
from tests.fuzz.budget import COUNTS
from tests.fuzz.conftest import CONSUMED, SERVICES
from tests.fuzz.kafka_inputs import GOOD_TYPES, fresh_event
from tests.integration.helpers import eventually, read_topic


def bad_records(topic: str) -> list[bytes | None]:
    other = "report.submitted" if topic != "reports" else "case.registered"
    doc = to_json_dict(fresh_event(GOOD_TYPES[topic]))
    wrong = json.loads(json.dumps(doc))
    wrong["data"]["unexpected"] = True
    nul = json.loads(json.dumps(doc))
    nul["id"] = "a\x00b"
    return [
        b"\x00\xff not json",
        None,
        encode(fresh_event(GOOD_TYPES[topic]))[:40],
        json.dumps(wrong).encode(),
        json.dumps(nul).encode(),
        encode(example_event(other, event_id=new_ulid())),
        b"[" * 100_000 + b"]" * 100_000,
        json.dumps(doc).encode()[:-1] + b', "n": ' + b"9" * 5000 + b"}",
    ]


@pytest.mark.parametrize("name", SERVICES)
async def test_poison_through_the_broker_is_dead_lettered_and_the_partition_flows(online, name):
    service = await online(name)
    topic = CONSUMED[name][0]
    full = service.prefix + topic
    kafka = service.runtime.settings.kafka
    bad = bad_records(topic)
    good = fresh_event(GOOD_TYPES[topic])
    producer = AIOKafkaProducer(enable_idempotence=False, acks="all", **client_options(kafka))
    await producer.start()
    try:
        for value in bad:
            await producer.send_and_wait(full, value, key=b"one-partition")
        await producer.send_and_wait(
            full, encode(good), key=b"one-partition", headers=kafka_headers(good)
        )
    finally:
        await producer.stop()

    await eventually(
        lambda: service.query("SELECT 1 FROM inbox WHERE event_id = $1", good.id),
        bool,
        seconds=60,
        what=f"{name} handling the good event behind the poison",
    )
    letters = await eventually(
        lambda: read_topic(kafka, full + ".dlq", expect_at_least=len(bad), seconds=5),
        lambda found: len(found) >= len(bad),
        seconds=60,
        what=f"{len(bad)} dead letters on {full}.dlq",
    )
    assert len(letters) == len(bad), [r.value[:80] for r in letters]
    for letter in letters:
        headers = dict(letter.headers)
        assert headers[DLQ_HEADER_MESSAGE].strip(), headers
        assert int(headers[DLQ_HEADER_OFFSET]) < len(bad)
    assert sorted(r.value for r in letters) == sorted(v or b"" for v in bad)
    COUNTS[f"kafka end-to-end {name} {topic} dead-lettered"] += len(letters)
