"""Bytes that can never be handled raise PoisonMessage with a reason an operator can act on.

The reason lands in the DLQ's ``error.message`` header, so it must name the
offending attribute or field.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.events import EVENT_TYPES, PoisonMessage, decode, encode
from shared.events.envelope import _decode_carefully, to_json_dict
from shared.events.examples import example_event, example_types


def _doc(event_type: str = "case.registered") -> dict[str, Any]:
    return to_json_dict(example_event(event_type))


def _raw(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "tombstone"),
        (b"", "not JSON"),
        (b"\x00\xff garbage", "not JSON"),
        (b"{not json", "not JSON"),
        (b"[1, 2, 3]", "not a CloudEvents JSON object"),
        (b'"case.registered"', "not a CloudEvents JSON object"),
    ],
)
def test_garbage_is_poison(raw: bytes | None, reason: str) -> None:
    with pytest.raises(PoisonMessage, match=reason):
        decode(raw)


@pytest.mark.parametrize("specversion", ["0.3", "2.0", 1.0, None])
def test_wrong_specversion_is_poison(specversion: Any) -> None:
    doc = _doc()
    doc["specversion"] = specversion
    with pytest.raises(PoisonMessage, match="specversion"):
        decode(_raw(doc))


def test_missing_specversion_is_poison() -> None:
    doc = _doc()
    del doc["specversion"]
    with pytest.raises(PoisonMessage, match="specversion"):
        decode(_raw(doc))


@pytest.mark.parametrize("event_type", ["case.exploded", "", None, 42])
def test_unknown_type_is_poison(event_type: Any) -> None:
    doc = _doc()
    doc["type"] = event_type
    with pytest.raises(PoisonMessage, match="unknown event type"):
        decode(_raw(doc))


@pytest.mark.parametrize(
    ("event_type", "mutate", "field"),
    [
        ("case.registered", lambda d: d.update(grid_code="3205081020030"), "data.grid_code"),
        ("case.registered", lambda d: d.pop("case_id"), "data.case_id"),
        ("case.registered", lambda d: d.update(urgency="asap"), "data.urgency"),
        ("case.registered", lambda d: d.update(lat=95.0), "data.lat"),
        ("case.registered", lambda d: d.update(reporter={"phone": "1"}), "data.reporter"),
        ("case.dispatched", lambda d: d["deadlines"].pop("handle"), "data.deadlines.handle"),
        (
            "case.dispatched",
            lambda d: d["deadlines"].update(sign_for="2026-11-17T10:00:00"),
            "data.deadlines.sign_for",
        ),
        ("case.rated", lambda d: d.update(rating="delighted"), "data.rating"),
        ("case.closed", lambda d: d.update(rework_count=-1), "data.rework_count"),
        ("report.rejected", lambda d: d.update(reasons=[]), "data.reasons"),
        ("score.published", lambda d: d["indicators"].pop("due"), "data.indicators.due"),
        ("score.published", lambda d: d.update(period="2026-W47"), "not a month label"),
    ],
)
def test_invalid_data_is_poison_naming_the_field(event_type: str, mutate: Any, field: str) -> None:
    doc = _doc(event_type)
    mutate(doc["data"])
    with pytest.raises(PoisonMessage, match=f"invalid {event_type}") as caught:
        decode(_raw(doc))
    assert field in str(caught.value)


def test_missing_data_is_poison() -> None:
    doc = _doc()
    del doc["data"]
    with pytest.raises(PoisonMessage, match=r"invalid case\.registered: data"):
        decode(_raw(doc))


@pytest.mark.parametrize(
    ("attribute", "value"),
    [("time", "2026-11-17T09:13:00"), ("time", None), ("id", ""), ("source", None)],
)
def test_invalid_envelope_attribute_is_poison(attribute: str, value: Any) -> None:
    doc = _doc()
    doc[attribute] = value
    with pytest.raises(PoisonMessage, match=f"envelope: {attribute}"):
        decode(_raw(doc))


def test_valid_event_still_decodes() -> None:
    env = example_event("case.registered")
    assert decode(encode(env)) == env


@pytest.mark.parametrize("event_type", example_types())
def test_the_one_pass_decode_agrees_with_the_careful_one(event_type: str) -> None:
    # decode validates the bytes once with Envelope[data class]; the step-by-step path
    # that names a poison message's fault must accept and build exactly the same event.
    raw = encode(example_event(event_type))
    fast, careful = decode(raw), _decode_carefully(raw)
    assert fast == careful
    assert type(fast.data) is type(careful.data) is EVENT_TYPES[event_type]


def test_a_wrong_guess_of_the_event_type_goes_the_careful_way() -> None:
    # The event type is read off the bytes as a guess (the first "type" attribute); here a
    # duplicate attribute, which JSON parsers resolve to the last, makes the guess wrong.
    env = example_event("case.registered")
    raw = b'{"type":"case.closed",' + encode(env)[1:]
    assert decode(raw) == env


def test_a_missing_specversion_is_poison_on_the_one_pass_path_too() -> None:
    doc = _doc()
    del doc["specversion"]  # the envelope model has a default for producers
    raw = _raw(doc)
    with pytest.raises(PoisonMessage, match="specversion"):
        decode(raw)


@pytest.mark.parametrize("text", ["\u0000", "\ud800"])
def test_text_postgres_cannot_store_is_poison_on_the_one_pass_path_too(text: str) -> None:
    # pydantic-core accepts NUL and lone surrogates; the inbox and every store would not.
    doc = _doc()
    doc["data"]["description"] = f"pothole{text}"
    raw = json.dumps(doc).encode()  # ensure_ascii: the text travels as a \\u escape
    with pytest.raises(PoisonMessage, match="NUL or an unpaired surrogate"):
        decode(raw)


def test_a_subject_that_is_not_the_datas_is_poison_on_the_one_pass_path_too() -> None:
    doc = _doc()
    doc["subject"] = "01M7KGZ4R0AAAAAAAAAAAAAAZZ"
    with pytest.raises(PoisonMessage, match="subject"):
        decode(_raw(doc))
