"""No event but ``report.submitted`` can carry a citizen's name or phone; routing headers are right.

The scan walks every field of every model, nested models included, so a
contact field added anywhere later fails here rather than in an audit. Its end-to-end
half, tests/integration/test_privacy_end_to_end.py, runs the four services on the real
broker and scans every published byte of every topic for the contacts it submitted.
"""

from __future__ import annotations

import types
import typing
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from shared.events import EVENT_TYPES, ReportSubmitted, encode, kafka_headers
from shared.events.examples import example_data, example_event
from shared.events.reports import Reporter
from shared.topics import contract_event_types

#: Field-name words that mean personal contact data.
PII_WORDS = {"name", "phone", "mobile", "tel", "telephone", "contact", "email", "idcard", "wechat"}


def _nested_models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _nested_models(typing.get_args(annotation)[0])
    if origin is not None or isinstance(annotation, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _nested_models(arg)]
    return []


def _pii_fields(model: type[BaseModel], path: str = "") -> list[str]:
    found: list[str] = []
    for name, field in model.model_fields.items():
        where = f"{path}{name}"
        words = set(name.lower().split("_"))
        if words & PII_WORDS:
            found.append(where)
        for nested in _nested_models(field.annotation):
            found += _pii_fields(nested, f"{where}.")
    return found


def test_the_scan_finds_contact_fields() -> None:
    assert _pii_fields(Reporter) == ["name", "phone"]
    assert _pii_fields(ReportSubmitted) == ["reporter.name", "reporter.phone"]


@pytest.mark.parametrize("event_type", contract_event_types())
def test_no_event_carries_citizen_contact(event_type: str) -> None:
    found = _pii_fields(EVENT_TYPES[event_type])
    if event_type == "report.submitted":
        assert all(f.startswith("reporter.") for f in found), found
    else:
        assert found == [], f"{event_type} has fields that could carry a citizen's contact"


def test_registered_case_refuses_reporter_and_leaks_nothing_of_the_report() -> None:
    report = example_data("report.submitted")
    assert isinstance(report, ReportSubmitted) and report.reporter is not None
    with pytest.raises(ValidationError, match="reporter"):
        example_data("case.registered", reporter=report.reporter.model_dump())
    published = encode(example_event("case.registered")).decode()
    assert report.reporter.phone is not None and report.reporter.name is not None
    assert report.reporter.phone not in published
    assert report.reporter.name not in published


def _headers(event_type: str, **overrides: Any) -> dict[str, str]:
    env = example_event(event_type, **overrides)
    pairs = kafka_headers(env)
    assert len({k for k, _ in pairs}) == len(pairs), "duplicate header"
    return {k: v.decode() for k, v in pairs}


def test_headers_carry_type_id_and_structured_mode() -> None:
    env = example_event("case.dispatched")
    headers = _headers("case.dispatched")
    assert headers["ce_type"] == "case.dispatched"
    assert headers["ce_id"] == env.id
    assert headers["content-type"] == "application/cloudevents+json"


@pytest.mark.parametrize(
    ("event_type", "expected"),
    [
        ("case.dispatched", {"department": "water-supply", "area": "320508102"}),
        ("case.handled", {"department": "water-supply", "area": "320508102"}),
        ("case.overdue", {"department": "water-supply", "area": "320508102"}),
        ("case.registered", {"area": "320508102"}),
        ("case.escalated", {"area": "320508102"}),
        ("report.submitted", {}),
        ("report.rejected", {}),
        ("score.published", {"department": "water-supply"}),
    ],
)
def test_routing_headers_when_present(event_type: str, expected: dict[str, str]) -> None:
    headers = _headers(event_type)
    assert {k: headers[k] for k in ("department", "area") if k in headers} == expected


def test_feedback_without_area_has_only_the_department_header() -> None:
    headers = _headers("case.accepted", area=None)
    assert headers["department"] == "water-supply"
    assert "area" not in headers


@pytest.mark.parametrize(
    ("unit_type", "unit_id", "expected"),
    [
        ("department", "sanitation", {"department": "sanitation"}),
        ("area", "320508102", {"area": "320508102"}),
        ("community", "320508102003", {}),
        ("grid", "32050810200301", {}),
    ],
)
def test_scores_route_by_unit_type(unit_type: str, unit_id: str, expected: dict[str, str]) -> None:
    headers = _headers("score.published", unit_type=unit_type, unit_id=unit_id)
    assert {k: headers[k] for k in ("department", "area") if k in headers} == expected
