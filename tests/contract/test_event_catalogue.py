"""The catalogue of DESIGN.md's topics table, hardcoded: this list is the contract.

Adding, removing or moving an event type must change this file on purpose.
"""

from __future__ import annotations

import pytest

from shared.events import EVENT_TYPES, CaseHandled, make_event
from shared.events.examples import T0, example_data
from shared.topics import (
    DEFAULT_DLQ_PARTITIONS,
    DEFAULT_PARTITIONS,
    DLQ_ERROR_HEADERS,
    ERROR_HEADERS,
    TOPICS,
    all_topics,
    contract_event_types,
    get_topic,
    topic_for_event,
    topic_name,
    topic_partitions,
)

EXPECTED: dict[str, set[str]] = {
    "reports": {"report.submitted"},
    "cases": {"case.registered", "case.merged", "report.rejected"},
    "assignments": {
        "case.dispatched",
        "case.redispatched",
        "case.escalated",
        "case.extension_refused",
    },
    "feedback": {
        "case.accepted",
        "case.handled",
        "case.returned",
        "case.extension_requested",
        "case.extension_granted",
        "case.verified",
        "case.verification_failed",
        "case.rated",
        "case.parked",
        "case.unparked",
    },
    "supervision": {
        "case.warned",
        "case.overdue",
        "case.notice_issued",
        "case.rework_ordered",
        "case.closed",
        "case.rebounded",
        "case.lookback_due",
    },
    "scores": {"score.published"},
}

EXPECTED_OWNERS = {
    "reports": None,
    "cases": "intake",
    "assignments": "dispatch",
    "feedback": None,
    "supervision": "supervision",
    "scores": "scoring",
}

EXPECTED_SUBJECT = {"report.submitted": "report_id", "report.rejected": "report_id"}


def test_every_design_event_type_exists_on_its_topic() -> None:
    # EVENT_TYPES may also hold probe types other tests declare; the contract
    # is what shared.events declares.
    actual: dict[str, set[str]] = {}
    for event_type, model in EVENT_TYPES.items():
        if model.__module__.startswith("shared.events."):
            actual.setdefault(model.topic, set()).add(event_type)
    assert actual == EXPECTED
    assert set(contract_event_types()) == set().union(*EXPECTED.values())


def test_registry_lists_the_design_topics_with_owners() -> None:
    assert {t.base: t.owner for t in TOPICS} == EXPECTED_OWNERS
    for topic in TOPICS:
        assert set(topic.event_types) == EXPECTED[topic.base]
        assert topic.dlq == f"{topic.base}.dlq"
        assert set(topic.consumers) <= {"intake", "dispatch", "supervision", "scoring"}
        assert topic.owner not in topic.consumers


@pytest.mark.parametrize("event_type", contract_event_types())
def test_each_event_type_knows_its_topic_and_subject(event_type: str) -> None:
    model = EVENT_TYPES[event_type]
    assert topic_for_event(event_type).base == model.topic
    expected_field = EXPECTED_SUBJECT.get(
        event_type, "unit_id" if model.topic == "scores" else "case_id"
    )
    assert model.subject_field == expected_field
    assert expected_field in model.model_fields
    assert (model.__doc__ or "").strip(), f"{model.__name__} needs a docstring: it is the spec"


def test_make_event_takes_the_subject_from_the_data() -> None:
    data = example_data("case.handled")
    assert isinstance(data, CaseHandled)
    env = make_event(data, source="/test", time=T0)
    assert env.subject == data.subject() == data.case_id
    with pytest.raises(ValueError, match="subject"):
        make_event(data, source="/test", time=T0, subject="another-case")


def test_topic_names_with_prefix_and_dlqs() -> None:
    assert topic_name("cases") == "cases"
    assert topic_name("cases", "staging.") == "staging.cases"
    assert topic_name(get_topic("cases").dlq, "staging.") == "staging.cases.dlq"
    with pytest.raises(ValueError, match="legal"):
        topic_name("cases", "bad prefix/")
    with pytest.raises(KeyError, match="unknown topic"):
        get_topic("nope")

    physical = all_topics("t1.")
    assert [p.name for p in physical] == [
        name for t in TOPICS for name in (f"t1.{t.base}", f"t1.{t.base}.dlq")
    ]
    assert all(p.partitions == DEFAULT_PARTITIONS for p in physical if not p.is_dlq)
    assert {p.partitions for p in all_topics(partitions=3, dlq_partitions=2)} == {2, 3}
    with pytest.raises(ValueError, match="at least 1"):
        all_topics(partitions=0)
    # The map ensure_topics takes: an override sets every topic's count but the dead letters'.
    planned = topic_partitions("t1.", 5)
    assert list(planned) == [p.name for p in physical]
    assert {n for name, n in planned.items() if name.endswith(".dlq")} == {DEFAULT_DLQ_PARTITIONS}
    assert {n for name, n in planned.items() if not name.endswith(".dlq")} == {5}


def test_dlq_error_headers_are_distinct_and_namespaced() -> None:
    assert len(set(DLQ_ERROR_HEADERS)) == len(DLQ_ERROR_HEADERS)
    assert all(h.startswith("error.") for h in DLQ_ERROR_HEADERS)
    for short in ("exception", "message", "topic", "partition", "offset", "attempt"):
        assert ERROR_HEADERS[short] == f"error.{short}"
