"""Hypothesis strategies for raw Kafka records: every way a consumed record can be wrong.

Values: random bytes, tombstones, truncated JSON, JSON that is not an object,
deeply nested or huge documents, integers too long to parse, CloudEvents with
wrong envelope attributes, valid envelopes whose data is wrong, and valid
events of a type that belongs on another topic. Keys and headers are random.
Each value is also classified by :func:`is_poison` (decode + topic check), the
oracle the tests hold the consumer to.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from aiokafka import ConsumerRecord
from hypothesis import strategies as st

from shared.events.envelope import (
    EVENT_TYPES,
    PoisonMessage,
    decode,
    encode,
    make_event,
    to_json_dict,
)
from shared.events.examples import T0, example_data, example_event, example_source
from shared.ids import new_ulid
from shared.topics import TOPICS

_TYPES_BY_TOPIC = {t.base: t.event_types for t in TOPICS}

#: One event per consumed topic that every consumer of it handles without refusing.
GOOD_TYPES = {
    "reports": "report.submitted",
    "cases": "case.registered",
    "assignments": "case.dispatched",
    "feedback": "case.accepted",
    "supervision": "case.warned",
}


def fresh_event(event_type: str, **overrides: Any) -> Any:
    """A valid event of ``event_type`` about a new case (or report), with a new id."""
    model = EVENT_TYPES[event_type]
    fields = model.model_fields
    if "case_id" in fields:
        overrides.setdefault("case_id", new_ulid())
    if "report_id" in fields:
        overrides.setdefault("report_id", new_ulid())
    if "external_id" in fields:
        overrides.setdefault("external_id", f"fuzz-{new_ulid()}")
    data = example_data(event_type, **overrides)
    return make_event(data, source=example_source(data), time=T0 + timedelta(minutes=5))


def _doc(event_type: str) -> dict[str, Any]:
    return to_json_dict(example_event(event_type, event_id=new_ulid()))


def _json(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False, allow_nan=True).encode("utf-8", "surrogatepass")


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(st.characters(exclude_categories=()), max_size=20)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
#: Values a field cannot take whatever its type: of a JSON kind no field declares as a union.
WRONG_KIND = st.sampled_from([{"?": [1]}, [[{"x": None}]], {"nested": {"deeper": True}}])


@st.composite
def wrong_data(draw: st.DrawFn, topic: str) -> bytes:
    """A CloudEvent of the topic's own type whose data is wrong in one way."""
    event_type = draw(st.sampled_from(_TYPES_BY_TOPIC[topic]))
    doc = _doc(event_type)
    data = doc["data"]
    how = draw(st.sampled_from(["drop", "kind", "extra", "null", "swap", "text"]))
    fields = sorted(data)
    field = draw(st.sampled_from(fields))
    if how == "drop":
        required = [
            f for f, info in EVENT_TYPES[event_type].model_fields.items() if info.is_required()
        ]
        if required:
            del data[draw(st.sampled_from(required))]
        else:
            data["unexpected"] = 1
    elif how == "kind":
        data[field] = draw(WRONG_KIND)
    elif how == "extra":
        data[draw(st.text(min_size=1, max_size=10).filter(lambda k: k not in data))] = draw(
            JSON_VALUES
        )
    elif how == "null":
        doc["data"] = draw(st.sampled_from([None, [], "data", 0]))
    elif how == "swap":
        others = [t for t in _TYPES_BY_TOPIC[topic] if t != event_type] or [event_type]
        doc["type"] = draw(st.sampled_from(others))
        data["unexpected"] = True
    else:
        # Unstorable text (NUL, lone surrogates) where the model takes any string.
        data[field] = draw(st.sampled_from(["\x00", "a\x00b", "\ud800", "x\udfff"]))
    return _json(doc)


@st.composite
def wrong_envelope(draw: st.DrawFn, topic: str) -> bytes:
    """A CloudEvent of the topic's own type whose envelope attributes are wrong."""
    doc = _doc(draw(st.sampled_from(_TYPES_BY_TOPIC[topic])))
    attribute = draw(st.sampled_from(["specversion", "id", "time", "subject", "type", "source"]))
    bad: dict[str, list[Any]] = {
        "specversion": ["0.3", 1.0, None, ""],
        "id": ["", None, 7, "\x00", "id\x00x", "\ud800"],
        "time": ["yesterday", "2026-11-17T09:12:00", None, 0],
        "subject": ["", None, "someone-else", "\x00"],
        "type": ["", None, "case.exploded", 42],
        "source": ["", None, "\x00"],
    }
    value = draw(st.sampled_from(bad[attribute]))
    if value is None and draw(st.booleans()):
        del doc[attribute]
    else:
        doc[attribute] = value
    return _json(doc)


@st.composite
def wrong_topic(draw: st.DrawFn, topic: str) -> bytes:
    """A valid event of a type that travels on another topic."""
    others = [t for base, types in _TYPES_BY_TOPIC.items() if base != topic for t in types]
    return encode(example_event(draw(st.sampled_from(others)), event_id=new_ulid()))


@st.composite
def truncated(draw: st.DrawFn, topic: str) -> bytes:
    raw = encode(example_event(draw(st.sampled_from(_TYPES_BY_TOPIC[topic])), event_id=new_ulid()))
    return raw[: draw(st.integers(min_value=0, max_value=len(raw) - 1))]


@st.composite
def huge(draw: st.DrawFn, topic: str) -> bytes:
    """Big or deep documents: they must be refused without exhausting the stack or the memory."""
    kind = draw(st.sampled_from(["deep", "wide", "padded", "long_int", "deep_data"]))
    n = draw(st.integers(min_value=1_000, max_value=200_000))
    if kind == "deep":
        return b"[" * n + b"]" * n
    if kind == "wide":
        return b"[" + b"1," * n + b"1]"
    if kind == "padded":
        doc = _doc(draw(st.sampled_from(_TYPES_BY_TOPIC[topic])))
        doc["data"]["padding"] = "x" * (n * 5)
        return _json(doc)
    if kind == "long_int":
        doc = _doc(draw(st.sampled_from(_TYPES_BY_TOPIC[topic])))
        return _json(doc)[:-1] + b', "big": ' + b"9" * (4301 + n % 5000) + b"}"
    doc = _doc(draw(st.sampled_from(_TYPES_BY_TOPIC[topic])))
    head = _json(doc)[:-1]
    return head + b', "nested": ' + b'{"a": ' * n + b"1" + b"}" * n + b"}"


def poison_values(topic: str) -> st.SearchStrategy[bytes | None]:
    return st.one_of(
        st.binary(max_size=300),
        st.none(),
        JSON_VALUES.filter(lambda v: not isinstance(v, dict)).map(_json),
        truncated(topic),
        wrong_data(topic),
        wrong_envelope(topic),
        wrong_topic(topic),
        huge(topic),
    )


KEYS = st.none() | st.binary(max_size=40) | st.just(b"\x00")
HEADERS = st.lists(
    st.tuples(
        st.sampled_from(["ce_type", "ce_id", "content-type", "department"])
        | st.text(st.characters(exclude_categories=("Cs",)), max_size=16),
        st.binary(max_size=40),
    ),
    max_size=4,
)


def is_poison(value: bytes | None, topic: str) -> bool:
    """The oracle: bytes the consumer must dead-letter without calling its handler."""
    try:
        envelope = decode(value)
    except PoisonMessage:
        return True
    except Exception:  # decode itself must not fail otherwise: the test reports it
        return True
    return envelope.topic != topic


def record(
    topic: str,
    offset: int,
    value: bytes | None,
    key: bytes | None,
    headers: list[tuple[str, bytes]],
) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic=topic,
        partition=0,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=key,
        value=value,  # type: ignore[arg-type]
        checksum=None,
        serialized_key_size=len(key or b""),
        serialized_value_size=len(value or b""),
        headers=tuple(headers),
    )
