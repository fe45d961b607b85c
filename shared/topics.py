"""The topic registry: every Kafka topic of the backbone, who writes it, what it is keyed by.

DESIGN.md's topics table as code. Which event types travel on a topic is not
written here but read from the event models' ``topic`` class variable, so the
two cannot disagree. Names are bases; a deployment may put a prefix in front
(``TOPIC_PREFIX``, e.g. ``staging.``), and each topic has a dead-letter topic
``<topic>.dlq`` for messages its consumers can never handle.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from shared.events import EVENT_TYPES
from shared.events.envelope import (
    HEADER_AREA,
    HEADER_CE_ID,
    HEADER_CE_TYPE,
    HEADER_CONTENT_TYPE,
    HEADER_DEPARTMENT,
    ROUTING_HEADERS,
)

__all__ = [
    "DEFAULT_DLQ_PARTITIONS",
    "DEFAULT_PARTITIONS",
    "DLQ_ERROR_HEADERS",
    "DLQ_HEADER_ATTEMPT",
    "DLQ_HEADER_EXCEPTION",
    "DLQ_HEADER_GROUP",
    "DLQ_HEADER_MESSAGE",
    "DLQ_HEADER_OFFSET",
    "DLQ_HEADER_PARTITION",
    "DLQ_HEADER_STACKTRACE",
    "DLQ_HEADER_TOPIC",
    "DLQ_REQUIRED_HEADERS",
    "DLQ_SUFFIX",
    "ERROR_HEADERS",
    "HEADER_AREA",
    "HEADER_CE_ID",
    "HEADER_CE_TYPE",
    "HEADER_CONTENT_TYPE",
    "HEADER_DEPARTMENT",
    "ROUTING_HEADERS",
    "SERVICES",
    "TOPICS",
    "PhysicalTopic",
    "Topic",
    "all_topics",
    "contract_event_types",
    "dlq_name",
    "get_topic",
    "topic_for_event",
    "topic_name",
]

SERVICES = ("intake", "dispatch", "supervision", "scoring")

DEFAULT_PARTITIONS = 12
# Dead letters are rare and operators read them in arrival order; one
# partition keeps that order and costs the broker least.
DEFAULT_DLQ_PARTITIONS = 1
DLQ_SUFFIX = ".dlq"

# Headers of a dead-lettered record, added after the original record's own
# headers; values are UTF-8 text, numbers in decimal. When it was
# dead-lettered is the DLQ record's own timestamp.
DLQ_HEADER_EXCEPTION = "error.exception"  # exception class name, e.g. PoisonMessage
DLQ_HEADER_MESSAGE = "error.message"  # why, e.g. PoisonMessage's reason naming the field
DLQ_HEADER_TOPIC = "error.topic"  # topic the record was consumed from (prefixed name)
DLQ_HEADER_PARTITION = "error.partition"
DLQ_HEADER_OFFSET = "error.offset"
DLQ_HEADER_ATTEMPT = "error.attempt"  # deliveries tried before giving up, from 1
DLQ_HEADER_GROUP = "error.group"  # consumer group that failed: where a re-drive goes
DLQ_HEADER_STACKTRACE = "error.stacktrace"  # tail of the traceback, for handler failures

#: short name -> header name, for the DLQ writer and the re-drive tool.
ERROR_HEADERS: Mapping[str, str] = MappingProxyType(
    {
        "exception": DLQ_HEADER_EXCEPTION,
        "message": DLQ_HEADER_MESSAGE,
        "topic": DLQ_HEADER_TOPIC,
        "partition": DLQ_HEADER_PARTITION,
        "offset": DLQ_HEADER_OFFSET,
        "attempt": DLQ_HEADER_ATTEMPT,
        "group": DLQ_HEADER_GROUP,
        "stacktrace": DLQ_HEADER_STACKTRACE,
    }
)
DLQ_ERROR_HEADERS = tuple(ERROR_HEADERS.values())
#: Always present on a dead letter; the others when known.
DLQ_REQUIRED_HEADERS = (
    DLQ_HEADER_EXCEPTION,
    DLQ_HEADER_MESSAGE,
    DLQ_HEADER_TOPIC,
    DLQ_HEADER_PARTITION,
    DLQ_HEADER_OFFSET,
    DLQ_HEADER_ATTEMPT,
)

_LEGAL_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


@dataclass(frozen=True)
class Topic:
    """One topic of DESIGN.md's table. The Kafka key of every record is its envelope's subject."""

    base: str
    description: str
    #: the service that owns the topic, or None when systems outside the pipeline write it
    owner: str | None
    writers: str
    key: str
    #: our services that subscribe; outside readers are described in ``readers``
    consumers: tuple[str, ...]
    readers: str
    partitions: int = DEFAULT_PARTITIONS

    @property
    def dlq(self) -> str:
        return dlq_name(self.base)

    @property
    def event_types(self) -> tuple[str, ...]:
        """Event types that travel on this topic, from the models, sorted."""
        return tuple(sorted(t for t, model in EVENT_TYPES.items() if model.topic == self.base))

    @property
    def is_input(self) -> bool:
        """Written from outside: its producers are not bound by our code, only by the schema."""
        return self.owner is None


TOPICS: tuple[Topic, ...] = (
    Topic(
        base="reports",
        description="Problems reported by every channel; the pipeline's input.",
        owner=None,
        writers="channels: hotlines, inspectors' and grid workers' apps, photo reports, "
        "video, sensors, superiors",
        key="report id",
        consumers=("intake",),
        readers="",
    ),
    Topic(
        base="cases",
        description="Intake's verdict on each report: registered, merged as a duplicate, "
        "or rejected with reasons.",
        owner="intake",
        writers="intake",
        key="case id (report id for report.rejected)",
        consumers=("dispatch", "supervision", "scoring"),
        readers="ops dashboards, the city-wide platform (一网统管)",
    ),
    Topic(
        base="assignments",
        description="Dispatch decisions: department (条), area (块), deadlines, redispatches, "
        "escalations to a human dispatcher, refused extensions.",
        owner="dispatch",
        writers="dispatch",
        key="case id",
        consumers=("intake", "supervision", "scoring"),
        readers="department systems (filter on the department header), ops dashboards",
    ),
    Topic(
        base="feedback",
        description="What happens on the ground: signed for, handled, returned, extensions, "
        "verification, ratings, parking.",
        owner=None,
        writers="department systems, inspectors' apps, the call-back centre "
        "(directly or through intake's HTTP API)",
        key="case id",
        consumers=("intake", "dispatch", "supervision", "scoring"),
        readers="",
    ),
    Topic(
        base="supervision",
        description="Deadlines chased (warnings, overdue, notices), rework, closing, "
        "bounce-backs and look-backs.",
        owner="supervision",
        writers="supervision",
        key="case id",
        consumers=("intake", "dispatch", "scoring"),
        readers="department systems, the supervision centre's screens, ops dashboards",
    ),
    Topic(
        base="scores",
        description="Indicators, scores, bands and ranks per unit and period.",
        owner="scoring",
        writers="scoring",
        key="unit id",
        consumers=(),
        readers="dashboards, the city-wide platform, departments and street offices",
    ),
)

_BY_BASE = {t.base: t for t in TOPICS}

# Fail at import, not in production, if a contract model names a topic the
# table lacks. Only shared.events counts: tests declare their own probe types.
_orphans = {
    t: m.topic
    for t, m in EVENT_TYPES.items()
    if m.__module__.startswith("shared.events.") and m.topic not in _BY_BASE
}
if _orphans:
    raise RuntimeError(f"event types on topics missing from the registry: {_orphans}")


@dataclass(frozen=True)
class PhysicalTopic:
    """A topic as created on the broker: full name and partition count."""

    name: str
    base: str
    partitions: int
    is_dlq: bool


def topic_name(base: str, prefix: str = "") -> str:
    """The broker name of ``base`` (a topic or DLQ base name): ``prefix`` + ``base``, verbatim.

    The prefix carries its own separator (``staging.`` gives ``staging.cases``).
    """
    name = f"{prefix}{base}"
    if not _LEGAL_NAME.match(name) or name in {".", ".."}:
        raise ValueError(f"{name!r} is not a legal Kafka topic name")
    return name


def dlq_name(base: str) -> str:
    """Base name of a topic's dead-letter topic."""
    return f"{base}{DLQ_SUFFIX}"


def get_topic(base: str) -> Topic:
    try:
        return _BY_BASE[base]
    except KeyError:
        raise KeyError(f"unknown topic {base!r}; known: {sorted(_BY_BASE)}") from None


def topic_for_event(event_type: str) -> Topic:
    """The registered topic an event type travels on."""
    model = EVENT_TYPES.get(event_type)
    if model is None or model.topic not in _BY_BASE:
        raise KeyError(f"{event_type!r} is not an event type of a registered topic")
    return _BY_BASE[model.topic]


def contract_event_types() -> tuple[str, ...]:
    """Every event type of every registered topic, sorted.

    The contract, as opposed to ``EVENT_TYPES``, which also holds whatever
    probe types a test declares.
    """
    return tuple(sorted(t for topic in TOPICS for t in topic.event_types))


def all_topics(
    prefix: str = "",
    partitions: int | None = None,
    dlq_partitions: int | None = None,
) -> list[PhysicalTopic]:
    """Every topic to create, each followed by its DLQ; ``partitions`` overrides every default."""
    for given in (partitions, dlq_partitions):
        if given is not None and given < 1:
            raise ValueError(f"partition count must be at least 1, got {given}")
    out: list[PhysicalTopic] = []
    for topic in TOPICS:
        out.append(
            PhysicalTopic(
                name=topic_name(topic.base, prefix),
                base=topic.base,
                partitions=topic.partitions if partitions is None else partitions,
                is_dlq=False,
            )
        )
        out.append(
            PhysicalTopic(
                name=topic_name(topic.dlq, prefix),
                base=topic.dlq,
                partitions=DEFAULT_DLQ_PARTITIONS if dlq_partitions is None else dlq_partitions,
                is_dlq=True,
            )
        )
    return out


def topic_partitions(prefix: str = "", partitions: int | None = None) -> dict[str, int]:
    """Every topic under ``prefix`` with its partition count (``all_topics`` as the map
    ``ensure_topics`` takes); ``partitions`` overrides every topic's but the dead letters'."""
    return {t.name: t.partitions for t in all_topics(prefix, partitions)}
