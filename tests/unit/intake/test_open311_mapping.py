"""Open311 translation: forms into reports, filters into queries, records into the spec's XML."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import defusedxml.ElementTree as SafeET
import pytest
from starlette.datastructures import QueryParams

from services.intake.open311 import (
    MAX_SPAN,
    report_from_form,
    request_query,
    service_definition,
    service_list,
    xml_document,
)
from shared.events import ReportSubmitted
from shared.reference import ReferenceData, load_reference

NOW = datetime(2026, 11, 17, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def ref() -> ReferenceData:
    return load_reference()


def test_a_form_becomes_a_report_with_attributes_and_contact():
    fields = [
        ("api_key", "k"),
        ("service_code", "C0114"),
        ("lat", "31.31"),
        ("long", "120.61"),
        ("address_string", "干将路 8 号"),
        ("attribute[lamp_problem]", "out"),
        ("attribute[tags][]", "a"),
        ("attribute[tags][]", "b"),
        ("first_name", "Ann"),
        ("last_name", "Lee"),
        ("phone", "13700001111"),
        ("email", "ann@example.org"),
        ("media_url", "https://m.example.org/1.jpg"),
        ("external_id", "fms-77"),
    ]
    doc = report_from_form(fields, "open311", NOW)
    assert isinstance(doc, dict)
    report = ReportSubmitted.model_validate(doc)
    assert report.channel == "open311" and report.external_id == "fms-77"
    assert report.location.lat == 31.31 and report.location.address == "干将路 8 号"
    assert report.attributes == {"lamp_problem": "out", "tags": ["a", "b"]}
    assert report.reporter is not None
    assert (report.reporter.name, report.reporter.phone) == ("Ann Lee", "13700001111")
    assert [str(u) for u in report.media_urls] == ["https://m.example.org/1.jpg"]
    assert report.reported_at == NOW
    assert "ann@example.org" not in report.model_dump_json(), "email is not kept"


def test_address_id_is_a_grid_code_and_bad_numbers_are_named():
    doc = report_from_form([("service_code", "E0104"), ("address_id", "32050800100101")], "o", NOW)
    assert isinstance(doc, dict) and doc["location"] == {"grid_code": "32050800100101"}
    problems = report_from_form([("lat", "north"), ("address_id", "12")], "o", NOW)
    assert problems == [
        "service_code is required",
        "lat must be a number, not 'north'",
        "address_id must be a 14-digit grid code",
    ]


def test_without_external_id_each_post_is_a_new_report():
    a = report_from_form([("service_code", "E0104")], "open311", NOW)
    b = report_from_form([("service_code", "E0104")], "open311", NOW)
    assert isinstance(a, dict) and isinstance(b, dict)
    assert a["external_id"] != b["external_id"]


def test_request_query_defaults_to_the_last_90_days():
    query = request_query(QueryParams(""), NOW)
    assert not isinstance(query, str)
    assert (query.start, query.end, query.is_open) == (NOW - MAX_SPAN, NOW, None)
    only_start = request_query(QueryParams("start_date=2026-11-01T00:00:00Z"), NOW)
    assert not isinstance(only_start, str) and only_start.end == only_start.start + MAX_SPAN


def test_request_query_filters():
    query = request_query(QueryParams("service_code=C0101,E0104&status=closed"), NOW)
    assert not isinstance(query, str)
    assert query.category_codes == ["C0101", "E0104"] and query.is_open is False
    both = request_query(QueryParams("status=open,closed"), NOW)
    assert not isinstance(both, str) and both.is_open is None
    ids = request_query(QueryParams("service_request_id=A1,%20B2,bad id&status=open"), NOW)
    assert not isinstance(ids, str)
    assert ids.case_ids == ["A1", "B2"] and ids.is_open is None and ids.start is None


@pytest.mark.parametrize(
    "query",
    [
        "status=pending",
        "start_date=soon",
        "end_date=2026-11-01T00:00:00",
        "start_date=2026-11-02T00:00:00Z&end_date=2026-11-01T00:00:00Z",
        "start_date=2026-01-01T00:00:00Z&end_date=2026-11-01T00:00:00Z",
    ],
)
def test_bad_filters_are_explained(query):
    assert isinstance(request_query(QueryParams(query), NOW), str)


def test_services_and_definitions_follow_the_catalogue(ref):
    services = service_list(ref)
    assert [s["service_code"] for s in services] == [c.code for c in ref.categories]
    cover = service_definition(ref.category("C0101"))  # type: ignore[arg-type]
    [attribute] = cover["attributes"]
    assert attribute["code"] == "cover_damage" and attribute["order"] == 1
    assert [v["key"] for v in attribute["values"]] == ["missing", "broken", "displaced", "noisy"]
    no_attributes = service_definition(ref.category("E0104"))  # type: ignore[arg-type]
    assert no_attributes["attributes"] == []


def test_xml_uses_the_spec_element_names_and_drops_what_xml_cannot_carry():
    body = [
        {
            "service_request_id": "C1",
            "status": "open",
            "description": "bell\x07 and \x0bvtab",
            "requested_datetime": NOW,
            "lat": 31.3,
            "media_url": None,
            "metadata": True,
        }
    ]
    root = SafeET.fromstring(xml_document("service_requests", body))
    request = root.find("request")
    assert request is not None
    assert request.findtext("description") == "bell and vtab"
    assert request.findtext("requested_datetime") == NOW.isoformat()
    assert request.findtext("media_url") == ""
    assert request.findtext("metadata") == "true"
    errors = SafeET.fromstring(xml_document("errors", [{"code": 403, "description": "no"}]))
    assert errors.findtext("error/code") == "403"
    definition = SafeET.fromstring(
        xml_document(
            "service_definition",
            {"service_code": "X", "attributes": [{"code": "a", "values": [{"key": "k"}]}]},
        )
    )
    assert definition.findtext("attributes/attribute/values/value/key") == "k"


def test_a_search_spans_at_most_ninety_days():
    assert timedelta(days=90) == MAX_SPAN
