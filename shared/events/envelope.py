"""The CloudEvents 1.0 envelope (structured JSON mode) every event travels in.

Each event type is a pydantic class deriving from :class:`EventData`; declaring
the class registers it, so decoding, the AsyncAPI document and the tests all
see the same set of types.

On Kafka the whole CloudEvent is the record value (structured mode, so the
``content-type`` header says ``application/cloudevents+json``); ``ce_type``,
``ce_id`` and the routing headers are copies for subscribers that filter
without parsing. The record key is the envelope's ``subject``.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any, ClassVar, Generic

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from typing_extensions import TypeVar

from shared.ids import new_ulid

SPECVERSION = "1.0"
#: ``datacontenttype`` of every event's ``data``.
CONTENT_TYPE = "application/json"
#: Media type of a whole structured-mode CloudEvent (the Kafka ``content-type`` header).
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"

HEADER_CONTENT_TYPE = "content-type"
HEADER_CE_TYPE = "ce_type"
HEADER_CE_ID = "ce_id"
HEADER_DEPARTMENT = "department"
HEADER_AREA = "area"
#: Routing headers, in the order :func:`kafka_headers` writes them.
ROUTING_HEADERS = (HEADER_DEPARTMENT, HEADER_AREA)

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

#: event type (``case.registered``) -> its data model; filled by subclassing.
EVENT_TYPES: dict[str, type[EventData]] = {}


class EventData(BaseModel):
    """Base of every event payload.

    Subclasses set ``event_type`` and ``topic``; ``extra="forbid"`` so a typo in a
    producer is caught at the producer, not three services downstream.
    ``subject_field`` names the field that is the envelope's subject (and so
    the Kafka key): the case id unless a subclass says otherwise.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_type: ClassVar[str] = ""
    topic: ClassVar[str] = ""
    subject_field: ClassVar[str] = "case_id"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("event_type"):
            other = EVENT_TYPES.get(cls.event_type)
            if other is not None and other.__qualname__ != cls.__qualname__:
                raise TypeError(f"event type {cls.event_type!r} declared twice")
            EVENT_TYPES[cls.event_type] = cls

    def subject(self) -> str:
        """The envelope subject and Kafka key: what this event is about."""
        return str(getattr(self, self.subject_field))

    def routing(self) -> dict[str, str]:
        """Routing headers (department, area) so subscribers filter without parsing."""
        out: dict[str, str] = {}
        for name in ROUTING_HEADERS:
            value = getattr(self, name, None)
            if isinstance(value, str) and value:
                out[name] = value
        return out


#: The data class an envelope carries. ``Envelope`` alone carries any :class:`EventData`;
#: ``Envelope[CaseRegistered]`` validates its data as that class, which is how
#: :func:`decode` checks a whole event in one pass over the bytes.
D = TypeVar("D", bound=EventData, default=EventData)


class Envelope(BaseModel, Generic[D]):
    """A CloudEvents 1.0 event whose ``data`` is a typed :class:`EventData`.

    ``Envelope[X]`` is pydantic's parametrisation: an instance of it is an
    ``Envelope``, and equal to an ``Envelope`` with equal attributes.
    """

    model_config = ConfigDict(frozen=True)

    specversion: str = SPECVERSION
    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    type: str = Field(min_length=1)
    time: AwareDatetime
    subject: str = Field(min_length=1)
    datacontenttype: str = CONTENT_TYPE
    data: D

    @property
    def topic(self) -> str:
        return self.data.topic


class PoisonMessage(ValueError):
    """Bytes that can never be handled: undecodable, not a CloudEvent, unknown type, invalid data."""


def make_event(
    data: EventData,
    *,
    source: str,
    time: datetime,
    subject: str | None = None,
    event_id: str | None = None,
) -> Envelope:
    """Wrap ``data`` in an envelope; ``time`` is the event time, ``subject`` defaults from data.

    A subject that disagrees with the data is refused: the subject is the Kafka
    key, and a wrong key silently breaks the per-case ordering.
    """
    if not data.event_type:
        raise TypeError(f"{type(data).__name__} has no event_type")
    expected = data.subject()
    if subject is None:
        subject = expected
    elif subject != expected:
        raise ValueError(
            f"subject {subject!r} of a {data.event_type} must be its {data.subject_field} {expected!r}"
        )
    return Envelope(
        id=event_id or new_ulid(),
        source=source,
        type=data.event_type,
        time=time,
        subject=subject,
        data=data,
    )


def to_json_dict(envelope: Envelope) -> dict[str, Any]:
    doc = envelope.model_dump(mode="json", exclude={"data"})
    doc["data"] = envelope.data.model_dump(mode="json")
    return doc


def encode(envelope: Envelope, data_json: str | None = None) -> bytes:
    """The structured-mode CloudEvent as bytes.

    ``data_json`` is the data already serialised (``envelope.data.model_dump_json()``)
    by a caller that also stores it, so it is not serialised twice; ``data`` is
    the envelope's last field, so it is spliced in at the end.
    """
    if data_json is not None:
        head = envelope.model_dump_json(exclude={"data"})
        return (head[:-1] + ',"data":' + data_json + "}").encode()
    # Serialised by pydantic's core as the concrete data class (serialize_as_any):
    # the same bytes as json.dumps of to_json_dict, at half the cost on the hot path.
    return envelope.model_dump_json(serialize_as_any=True).encode()


def kafka_headers(envelope: Envelope) -> list[tuple[str, bytes]]:
    """Headers of the Kafka record carrying ``encode(envelope)``.

    ``content-type`` marks structured mode as the CloudEvents Kafka binding
    requires; without it a spec-following reader that sees ``ce_*`` headers
    would take the record for binary mode.
    """
    headers = [
        (HEADER_CONTENT_TYPE, STRUCTURED_CONTENT_TYPE.encode()),
        (HEADER_CE_TYPE, envelope.type.encode()),
        (HEADER_CE_ID, envelope.id.encode()),
    ]
    headers += [(k, v.encode()) for k, v in envelope.data.routing().items()]
    return headers


#: The envelope's ``type`` attribute as a producer writes it (before ``data``): a guess at
#: the event type, so the bytes are validated once, by the typed envelope, in pydantic-core.
_TYPE_ATTRIBUTE = re.compile(rb'"type"\s*:\s*"([A-Za-z0-9._-]{1,100})"')
#: event type -> ``Envelope[its data class]``, made on first use.
_TYPED: dict[str, type[Envelope]] = {}


def _typed_envelope(event_type: str) -> type[Envelope] | None:
    typed = _TYPED.get(event_type)
    if typed is None:
        model = EVENT_TYPES.get(event_type)
        if model is None:
            return None
        typed = _TYPED[event_type] = Envelope[model]  # type: ignore[valid-type]
    return typed


def decode(raw: bytes | None) -> Envelope:
    """Parse structured-mode CloudEvents JSON into a typed envelope, or raise PoisonMessage.

    The common case costs one ``model_validate_json`` of the typed envelope
    (the event type read off the bytes): JSON parsing and every check of the
    envelope and its data in pydantic-core, no Python dict in between. Any
    doubt — a wrong guess, a validation error — goes the careful way, which
    gives the same result or the reason the event is refused.
    """
    if raw is None:
        raise PoisonMessage("empty message (tombstone)")
    found = _TYPE_ATTRIBUTE.search(raw)
    # Only an escape (\u0000, \ud800) or raw surrogate bytes can bring text Postgres cannot
    # store; such a document goes the careful way, which looks for it.
    if found is not None and b"\\u" not in raw and b"\xed" not in raw:
        event_type = found.group(1).decode()
        typed = _typed_envelope(event_type)
        if typed is not None:
            try:
                env = typed.model_validate_json(raw)
            except ValidationError:
                pass
            else:
                # specversion has a default for producers; a consumer insists on it.
                if (
                    env.type == event_type
                    and env.specversion == SPECVERSION
                    and "specversion" in env.model_fields_set
                    and env.subject == env.data.subject()
                ):
                    return env
    return _decode_carefully(raw)


def _decode_carefully(raw: bytes) -> Envelope:
    """Step by step, so that a refusal names what is wrong."""
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        # ValueError covers bad UTF-8, bad JSON and integers too long to convert;
        # RecursionError a document nested deeper than the parser's stack.
        raise PoisonMessage(f"not JSON: {str(exc)[:200] or type(exc).__name__}") from None
    if not isinstance(doc, dict):
        raise PoisonMessage("not a CloudEvents JSON object")
    # Only an escape (\u0000, \ud800) or raw surrogate bytes can bring such text in.
    if b"\\u" in raw or b"\xed" in raw:
        where = _unstorable(doc)
        if where is not None:
            raise PoisonMessage(f"{where}: contains a NUL or an unpaired surrogate")
    if doc.get("specversion") != SPECVERSION:
        raise PoisonMessage(f"specversion must be {SPECVERSION!r}, got {doc.get('specversion')!r}")
    event_type = doc.get("type")
    model = EVENT_TYPES.get(event_type) if isinstance(event_type, str) else None
    if model is None:
        raise PoisonMessage(f"unknown event type {event_type!r}")
    try:
        data = model.model_validate(doc.get("data"))
    except ValidationError as exc:
        raise PoisonMessage(f"invalid {event_type}: {_describe(exc, 'data')}") from None
    try:
        envelope = Envelope.model_validate({**doc, "data": data})
    except ValidationError as exc:
        raise PoisonMessage(f"invalid {event_type} envelope: {_describe(exc)}") from None
    if envelope.subject != data.subject():
        # The subject is the Kafka key: one that disagrees with the data breaks per-case order.
        raise PoisonMessage(
            f"subject {envelope.subject[:100]!r} of a {event_type} must be its "
            f"{data.subject_field} {data.subject()[:100]!r}"
        )
    return envelope


def _unstorable(value: Any, path: str = "") -> str | None:
    """The path of the first string (or key) Postgres cannot store: a NUL or a lone surrogate."""
    if isinstance(value, str):
        return path or "(root)" if _UNSTORABLE.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if _UNSTORABLE.search(key):
                return path or "(root)"
            found = _unstorable(item, where)
            if found is not None:
                return found
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = _unstorable(item, f"{path}.{i}" if path else str(i))
            if found is not None:
                return found
    return None


def _describe(exc: ValidationError, prefix: str = "") -> str:
    """The first few errors as ``path: reason``, paths as they appear in the JSON document."""
    parts = []
    for err in exc.errors()[:5]:
        path = [prefix] if prefix else []
        path += [str(p) for p in err["loc"]]
        where = ".".join(path) or "(root)"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)
