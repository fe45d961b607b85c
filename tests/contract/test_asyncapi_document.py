"""The committed AsyncAPI document is the code's, current and self-consistent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shared.asyncapi import DEAD_LETTER_MESSAGE, build_document, render
from shared.events import decode
from shared.topics import DLQ_ERROR_HEADERS, TOPICS, contract_event_types

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.json"


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"external reference {ref}"
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_committed_document_is_current() -> None:
    assert COMMITTED.exists(), "docs/asyncapi.json is missing: run `make docs`"
    assert COMMITTED.read_text(encoding="utf-8") == render(), (
        "docs/asyncapi.json is stale: the event models or topics changed; run `make docs`"
    )


def test_rendering_is_deterministic() -> None:
    assert render() == render()


def test_every_reference_resolves() -> None:
    doc = build_document()
    for ref in _refs(doc):
        _resolve(doc, ref)


def test_channels_and_messages_cover_every_topic_and_event_type() -> None:
    doc = build_document()
    assert doc["asyncapi"] == "3.0.0"
    for topic in TOPICS:
        assert set(doc["channels"][topic.base]["messages"]) == set(topic.event_types)
        assert set(doc["channels"][topic.dlq]["messages"]) == {DEAD_LETTER_MESSAGE}
        sender = topic.owner or "external"
        assert doc["operations"][f"{sender}.send.{topic.base}"]["action"] == "send"
        for service in topic.consumers:
            assert doc["operations"][f"{service}.receive.{topic.base}"]["action"] == "receive"
    assert set(doc["components"]["messages"]) == set(contract_event_types()) | {DEAD_LETTER_MESSAGE}
    dead_letter_headers = doc["components"]["messages"][DEAD_LETTER_MESSAGE]["headers"]
    assert set(dead_letter_headers["properties"]) == set(DLQ_ERROR_HEADERS)


def test_message_examples_are_valid_events() -> None:
    doc = build_document()
    for event_type in contract_event_types():
        message = doc["components"]["messages"][event_type]
        assert message["description"], f"{event_type} has no description"
        (example,) = message["examples"]
        env = decode(json.dumps(example["payload"]).encode())
        assert env.type == event_type
        assert example["headers"]["ce_type"] == event_type
        assert example["headers"]["ce_id"] == env.id
        for header in message["headers"]["required"]:
            assert header in example["headers"]
