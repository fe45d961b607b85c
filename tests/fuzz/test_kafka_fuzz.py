"""Property: every raw record on every consumed topic is handled or dead-lettered with a reason.

In-process, against the real Postgres: hypothesis-made records (random
values, keys and headers) go through ``shared.consumer.handle_batch``, the
function every subscription runs. Each batch must commit ("done"), each
poison record must leave a dead letter on ``<topic>.dlq`` naming why in its
``error.*`` headers, a batch of nothing but poison must change no state, and
a good event after it must be handled. The end-to-end runs through the broker
are in test_kafka_end_to_end.py.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.consumer import ConsumerContext, handle_batch
from shared.events.envelope import encode, kafka_headers
from shared.topics import DLQ_HEADER_MESSAGE, DLQ_HEADER_OFFSET, DLQ_REQUIRED_HEADERS
from tests.fuzz.budget import COUNTS, fuzz_settings
from tests.fuzz.conftest import CONSUMED, Service
from tests.fuzz.kafka_inputs import (
    GOOD_TYPES,
    HEADERS,
    KEYS,
    fresh_event,
    is_poison,
    poison_values,
    record,
)

PAIRS = [(service, topic) for service, topics in CONSUMED.items() for topic in topics]
_OFFSETS = itertools.count(1_000_000)


def context(service: Service) -> ConsumerContext:
    runtime = service.runtime
    return ConsumerContext(
        service=service.name,
        pool=runtime.db,
        kafka=runtime.settings.kafka,
        topic_prefix=service.prefix,
        max_backoff=0.1,
    )


async def dead_letters(service: Service, topic: str, after: int) -> list[dict[str, Any]]:
    rows = await service.query(
        "SELECT id, key, value, header_keys, header_values FROM outbox "
        "WHERE topic = $1 AND id > $2 ORDER BY id",
        topic + ".dlq",
        after,
    )
    return [
        {
            "id": r["id"],
            "key": r["key"],
            "value": r["value"],
            "headers": dict(zip(r["header_keys"], r["header_values"], strict=True)),
        }
        for r in rows
    ]


async def last_outbox_id(service: Service) -> int:
    rows = await service.query("SELECT coalesce(max(id), 0) AS n FROM outbox")
    return int(rows[0]["n"])


async def feed(service: Service, topic: str, records: list[Any]) -> str:
    full = service.prefix + topic
    return await handle_batch(
        context(service), full, records, service.handlers[topic], group=f"{service.name}.fuzz"
    )


async def good_event_is_handled(service: Service, topic: str) -> None:
    """A valid event after the poison: handled, not dead-lettered."""
    full = service.prefix + topic
    envelope = fresh_event(GOOD_TYPES[topic])
    mark = await last_outbox_id(service)
    offset = next(_OFFSETS)
    good = record(
        full, offset, encode(envelope), envelope.subject.encode(), kafka_headers(envelope)
    )
    assert await feed(service, topic, [good]) == "done"
    assert await dead_letters(service, full, mark) == [], "the good event was dead-lettered"
    seen = await service.query("SELECT 1 FROM inbox WHERE event_id = $1", envelope.id)
    assert seen, f"the good {envelope.type} was not recorded as handled"


@pytest.mark.parametrize(("name", "topic"), PAIRS, ids=[f"{s}-{t}" for s, t in PAIRS])
@fuzz_settings(40)
@given(data=st.data())
async def test_every_poison_record_is_dead_lettered_with_a_reason(offline, name, topic, data):
    service: Service = offline[name]
    full = service.prefix + topic
    values = data.draw(st.lists(poison_values(topic), min_size=1, max_size=4), label="values")
    records = [
        record(
            full,
            next(_OFFSETS),
            v,
            data.draw(KEYS, label="key"),
            data.draw(HEADERS, label="headers"),
        )
        for v in values
    ]
    poison = [r for r in records if is_poison(r.value, topic)]
    state_before = await service.row_counts()
    mark = await last_outbox_id(service)

    assert await feed(service, topic, records) == "done"

    letters = {
        int(d["headers"][DLQ_HEADER_OFFSET]): d for d in await dead_letters(service, full, mark)
    }
    for r in poison:
        letter = letters.get(r.offset)
        assert letter is not None, (
            f"poison at offset {r.offset} was not dead-lettered: {r.value[:200]!r}"
        )
        assert all(h in letter["headers"] for h in DLQ_REQUIRED_HEADERS), letter["headers"]
        assert letter["headers"][DLQ_HEADER_MESSAGE].strip(), "a dead letter without a reason"
        assert letter["value"] == (r.value or b"") and letter["key"] == r.key
    if len(poison) == len(records):
        assert await service.row_counts() == state_before, "poison wrote handler state"
        assert len(letters) == len(records)
    COUNTS[f"kafka {name} {topic} records"] += len(records)
    COUNTS[f"kafka {name} {topic} dead-lettered"] += len(letters)

    await good_event_is_handled(service, topic)
