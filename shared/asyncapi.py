"""The AsyncAPI 3.0 document of the backbone, generated from the event models and the topic registry.

Never edited by hand: ``make docs`` (``python -m shared.asyncapi --write
docs/asyncapi.json``) regenerates it, and a contract test fails when the
committed copy is stale. Output is deterministic (sorted keys, fixed
examples) so that test can compare bytes.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic.json_schema import models_json_schema

from shared.events import CONTRACT_VERSION, EVENT_TYPES
from shared.events.envelope import (
    CONTENT_TYPE,
    HEADER_CE_ID,
    HEADER_CE_TYPE,
    HEADER_CONTENT_TYPE,
    ROUTING_HEADERS,
    SPECVERSION,
    STRUCTURED_CONTENT_TYPE,
    Envelope,
    EventData,
    kafka_headers,
    to_json_dict,
)
from shared.events.examples import example_event
from shared.topics import (
    DLQ_HEADER_ATTEMPT,
    DLQ_HEADER_EXCEPTION,
    DLQ_HEADER_GROUP,
    DLQ_HEADER_MESSAGE,
    DLQ_HEADER_OFFSET,
    DLQ_HEADER_PARTITION,
    DLQ_HEADER_STACKTRACE,
    DLQ_HEADER_TOPIC,
    DLQ_REQUIRED_HEADERS,
    TOPICS,
    Topic,
    contract_event_types,
    get_topic,
)

ASYNCAPI_VERSION = "3.0.0"
KAFKA_BINDING_VERSION = "0.5.0"
SCHEMA_REF = "#/components/schemas/{model}"
ENVELOPE_SCHEMA = "CloudEvent"
DEAD_LETTER_MESSAGE = "DeadLetter"

_DESCRIPTION = """\
The event backbone of a city case-management platform: every reported problem \
goes round the closed loop (report → case → dispatch → handling → verification \
→ closing → evaluation) as events on Kafka.

Every record value is a CloudEvents 1.0 document in structured JSON mode; the \
record key is the envelope's `subject` (the case id, the report id, or the \
scored unit's id), so one case's events stay in order within a topic. Headers \
repeat `ce_type` and `ce_id` and add the routing headers `department` and \
`area` so a subscriber can filter without parsing. Because `ce_*` headers are \
present, CloudEvents SDKs that guess the content mode from them must be told \
to read structured mode (the `content-type` header says so).

Topic names are bases: a deployment may add a prefix (`TOPIC_PREFIX`). Each \
topic has a dead-letter topic `<topic>.dlq` holding records a consumer could \
never handle, unchanged, with the error in headers. Events that leave the \
pipeline never carry a citizen's name or phone number."""

_DLQ_HEADERS: dict[str, str] = {
    DLQ_HEADER_EXCEPTION: "class name of the exception that made the record unhandleable",
    DLQ_HEADER_MESSAGE: "the error, naming the offending field where there is one",
    DLQ_HEADER_TOPIC: "topic the record was consumed from (full, prefixed name)",
    DLQ_HEADER_PARTITION: "its partition there, decimal",
    DLQ_HEADER_OFFSET: "its offset there, decimal",
    DLQ_HEADER_ATTEMPT: "deliveries tried before dead-lettering, decimal, from 1",
    DLQ_HEADER_GROUP: "consumer group that failed: where a re-drive should go",
    DLQ_HEADER_STACKTRACE: "tail of the traceback, when a handler raised",
}


def build_document() -> dict[str, Any]:
    """The whole AsyncAPI document as a JSON-ready dict."""
    event_types = contract_event_types()
    models = [EVENT_TYPES[t] for t in event_types]
    _, defs = models_json_schema([(m, "validation") for m in models], ref_template=SCHEMA_REF)
    schemas: dict[str, Any] = dict(defs.get("$defs", {}))
    schemas[ENVELOPE_SCHEMA] = _envelope_schema()

    messages = {t: _message(EVENT_TYPES[t]) for t in event_types}
    messages[DEAD_LETTER_MESSAGE] = _dead_letter_message()

    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for topic in TOPICS:
        channels[topic.base] = _channel(topic)
        channels[topic.dlq] = _dlq_channel(topic)
        operations.update(_operations(topic))

    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "City case event backbone",
            "version": CONTRACT_VERSION,
            "description": _DESCRIPTION,
        },
        "defaultContentType": STRUCTURED_CONTENT_TYPE,
        "servers": {
            "development": {
                "host": "127.0.0.1:9092",
                "protocol": "kafka",
                "description": "local broker started by `make up`, `make run` or `make test`",
            },
            "production": {
                "host": "kafka:9092",
                "protocol": "kafka",
                "description": "placeholder: the deployment's bootstrap servers "
                "(KAFKA_BOOTSTRAP_SERVERS; SASL/SCRAM and TLS are configuration)",
            },
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }


def render(document: dict[str, Any] | None = None) -> str:
    """The document as stable JSON text (sorted keys, two-space indent, final newline)."""
    doc = build_document() if document is None else document
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _envelope_schema() -> dict[str, Any]:
    schema = Envelope.model_json_schema(ref_template=SCHEMA_REF)
    schema.pop("$defs", None)
    props = schema["properties"]
    props["specversion"] = {"const": SPECVERSION, "type": "string"}
    props["datacontenttype"] = {"const": CONTENT_TYPE, "type": "string"}
    props["id"]["description"] = "unique event id, sortable by creation (ULID)"
    props["source"]["description"] = "the sending service or system, e.g. /citycases/intake"
    props["type"]["description"] = "the event type; also in the ce_type header"
    props["time"]["description"] = "event time: when it happened in the city's clock"
    props["subject"]["description"] = "case id (report id, unit id): also the Kafka key"
    props["data"] = {"type": "object", "description": "the event type's payload"}
    schema["required"] = sorted(props)
    schema["title"] = ENVELOPE_SCHEMA
    schema["description"] = "CloudEvents 1.0, structured JSON mode."
    return schema


def _headers_schema(model: type[EventData]) -> dict[str, Any]:
    props: dict[str, Any] = {
        HEADER_CONTENT_TYPE: {"const": STRUCTURED_CONTENT_TYPE, "type": "string"},
        HEADER_CE_TYPE: {"const": model.event_type, "type": "string"},
        HEADER_CE_ID: {"type": "string", "description": "the envelope's id"},
    }
    required = [HEADER_CONTENT_TYPE, HEADER_CE_TYPE, HEADER_CE_ID]
    # A model that overrides routing() decides its headers itself (scores: by unit type).
    custom_routing = model.routing is not EventData.routing
    for name in ROUTING_HEADERS:
        field = model.model_fields.get(name)
        if field is not None and not custom_routing:
            props[name] = {"type": "string", "description": f"data.{name}, for filtering"}
            if field.is_required():
                required.append(name)
        elif custom_routing:
            props[name] = {
                "type": "string",
                "description": f"the {name} the event concerns, if any",
            }
    return {"type": "object", "properties": props, "required": required}


def _message(model: type[EventData]) -> dict[str, Any]:
    topic = get_topic(model.topic)
    example = example_event(model.event_type)
    return {
        "name": model.event_type,
        "title": model.event_type,
        "summary": inspect.cleandoc(model.__doc__ or "").splitlines()[0],
        "description": inspect.cleandoc(model.__doc__ or ""),
        "contentType": STRUCTURED_CONTENT_TYPE,
        "headers": _headers_schema(model),
        "payload": {
            "allOf": [
                {"$ref": SCHEMA_REF.format(model=ENVELOPE_SCHEMA)},
                {
                    "type": "object",
                    "properties": {
                        "type": {"const": model.event_type, "type": "string"},
                        "subject": {"type": "string", "description": f"data.{model.subject_field}"},
                        "data": {"$ref": SCHEMA_REF.format(model=model.__name__)},
                    },
                },
            ]
        },
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": topic.key},
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
        "examples": [
            {
                "name": model.event_type.replace(".", "_"),
                "headers": {k: v.decode() for k, v in kafka_headers(example)},
                "payload": to_json_dict(example),
            }
        ],
    }


def _dead_letter_message() -> dict[str, Any]:
    return {
        "name": DEAD_LETTER_MESSAGE,
        "title": "dead letter",
        "summary": "A record a consumer could never handle, unchanged, with the error in headers.",
        "contentType": "application/octet-stream",
        "headers": {
            "type": "object",
            "description": "the original record's headers, plus these",
            "properties": {
                name: {"type": "string", "description": text} for name, text in _DLQ_HEADERS.items()
            },
            "required": list(DLQ_REQUIRED_HEADERS),
        },
        "payload": {
            "type": "string",
            "format": "binary",
            "description": "the original record value, byte for byte (may not be JSON)",
        },
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": "the original record's key"},
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }


def _channel(topic: Topic) -> dict[str, Any]:
    description = f"{topic.description}\n\nWritten by: {topic.writers}. Key: {topic.key}."
    if topic.readers:
        description += f" Also read by: {topic.readers}."
    return {
        "address": topic.base,
        "title": topic.base,
        "description": description,
        "messages": {t: {"$ref": f"#/components/messages/{t}"} for t in topic.event_types},
        "bindings": {
            "kafka": {
                "topic": topic.base,
                "partitions": topic.partitions,
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }


def _dlq_channel(topic: Topic) -> dict[str, Any]:
    return {
        "address": topic.dlq,
        "title": topic.dlq,
        "description": f"Dead letters of `{topic.base}`, written by the consumer that failed.",
        "messages": {DEAD_LETTER_MESSAGE: {"$ref": f"#/components/messages/{DEAD_LETTER_MESSAGE}"}},
    }


def _operations(topic: Topic) -> dict[str, Any]:
    def messages(channel: str, names: Sequence[str]) -> list[dict[str, str]]:
        return [{"$ref": f"#/channels/{channel}/messages/{n}"} for n in names]

    ops: dict[str, Any] = {}
    sender = topic.owner or "external"
    ops[f"{sender}.send.{topic.base}"] = {
        "action": "send",
        "channel": {"$ref": f"#/channels/{topic.base}"},
        "summary": f"{topic.writers} publish to {topic.base}",
        "messages": messages(topic.base, topic.event_types),
    }
    for service in topic.consumers:
        ops[f"{service}.receive.{topic.base}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{topic.base}"},
            "summary": f"{service} consumes {topic.base}",
            "messages": messages(topic.base, topic.event_types),
        }
        ops[f"{service}.send.{topic.dlq}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{topic.dlq}"},
            "summary": f"{service} dead-letters what it can never handle from {topic.base}",
            "messages": messages(topic.dlq, [DEAD_LETTER_MESSAGE]),
        }
    ops[f"operators.receive.{topic.dlq}"] = {
        "action": "receive",
        "channel": {"$ref": f"#/channels/{topic.dlq}"},
        "summary": f"operators inspect and re-drive dead letters of {topic.base}",
        "messages": messages(topic.dlq, [DEAD_LETTER_MESSAGE]),
    }
    return ops


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.asyncapi", description=__doc__)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", metavar="PATH", help="write the document to PATH")
    group.add_argument("--check", metavar="PATH", help="exit 1 if PATH differs from the code")
    args = parser.parse_args(argv)
    text = render()
    if args.write:
        path = Path(args.write)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    elif args.check:
        path = Path(args.check)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            print(f"{path} is stale: run `make docs`", file=sys.stderr)
            return 1
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
