"""Every event type survives a trip through the official CloudEvents SDK, both ways.

Our encoder must produce what any CloudEvents reader understands, and our
decoder must accept what a stock CloudEvents writer produces (channels and
department systems may publish with the SDK instead of our code).
"""

from __future__ import annotations

import json

import pytest
from cloudevents.core.bindings import kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from shared.events import Envelope, decode, encode, kafka_headers
from shared.events.envelope import to_json_dict
from shared.events.examples import example_event, example_types
from shared.topics import contract_event_types

ALL_TYPES = list(contract_event_types())


def _assert_same_attributes(sdk_event: CloudEvent, env: Envelope) -> None:
    assert sdk_event.get_specversion() == env.specversion == "1.0"
    assert sdk_event.get_id() == env.id
    assert sdk_event.get_source() == env.source
    assert sdk_event.get_type() == env.type
    assert sdk_event.get_subject() == env.subject
    assert sdk_event.get_datacontenttype() == env.datacontenttype
    assert sdk_event.get_time() == env.time
    assert sdk_event.get_data() == to_json_dict(env)["data"]


def test_every_event_type_has_an_example() -> None:
    assert example_types() == ALL_TYPES


@pytest.mark.parametrize("event_type", ALL_TYPES)
def test_round_trip_through_sdk_structured_json(event_type: str) -> None:
    env = example_event(event_type)
    fmt = JSONFormat()

    sdk_event = fmt.read(CloudEvent, encode(env))
    _assert_same_attributes(sdk_event, env)

    assert decode(fmt.write(sdk_event)) == env


@pytest.mark.parametrize("event_type", ALL_TYPES)
def test_round_trip_through_sdk_kafka_structured_binding(event_type: str) -> None:
    env = example_event(event_type)
    record = kafka.KafkaMessage(
        headers=dict(kafka_headers(env)), key=env.subject.encode(), value=encode(env)
    )

    # Structured mode must be asked for: the SDK's auto-detection (from_kafka)
    # takes any ce_* header as a sign of binary mode, and DESIGN.md wants
    # ce_type/ce_id headers. The content-type header is what the spec reads.
    assert record.headers["content-type"] == b"application/cloudevents+json"
    sdk_event = kafka.from_structured_event(record)
    _assert_same_attributes(sdk_event, env)
    assert sdk_event.get_extension("partitionkey") == env.subject

    # The SDK writes the key back as a ``partitionkey`` extension attribute;
    # unknown extension attributes must not make our decoder refuse the event.
    back = kafka.to_structured_event(sdk_event)
    assert json.loads(back.value)["partitionkey"] == env.subject
    assert back.key == env.subject
    assert decode(back.value) == env


@pytest.mark.parametrize("event_type", ALL_TYPES)
def test_event_written_by_the_sdk_decodes(event_type: str) -> None:
    env = example_event(event_type)
    doc = to_json_dict(env)
    attributes = {k: v for k, v in doc.items() if k != "data"}
    attributes["time"] = env.time  # the SDK wants a datetime and writes UTC as "Z"

    raw = JSONFormat().write(CloudEvent(attributes, doc["data"]))

    assert decode(raw) == env
