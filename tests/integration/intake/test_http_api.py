"""The native HTTP API: file a report, read a case and its timeline, post feedback."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from prometheus_client import generate_latest

from shared.events import CaseAccepted, CaseClosed, CaseDispatched, CaseHandled
from shared.events.envelope import make_event
from shared.events.examples import example_data
from tests.integration.helpers import eventually, produce
from tests.integration.intake.conftest import about, cell
from tests.integration.keys import as_


def _body(ref, code: str = "32050800200201", **overrides):
    lat, long = cell(ref, code).centre
    body = {
        "channel": "citizen_app",
        "external_id": f"app-{datetime.now(UTC).timestamp()}-{code}",
        "category_code": "E0405",
        "description": "共享单车乱停放",
        "location": {"lat": lat, "long": long, "address": "干将路 88 号"},
        "media_urls": ["https://media.example.org/a.jpg"],
        "reporter": {"name": "李先生", "phone": "13911112222"},
    }
    body.update(overrides)
    return body


async def test_post_report_registers_and_a_retry_returns_the_same_case(stack, ref):
    body = _body(ref)
    first = await stack.http.post("/v1/reports", json=body)
    assert first.status_code == 201, first.text
    created = first.json()
    assert created["outcome"] == "registered" and created["repeated"] is False
    assert (created["grid_code"], created["area"]) == ("32050800200201", "street-canglang")

    again = await stack.http.post("/v1/reports", json=body)
    assert again.status_code == 200
    assert again.json()["case_id"] == created["case_id"] and again.json()["repeated"] is True
    rows = await stack.fetch(
        "SELECT case_id FROM cases WHERE external_id = $1", body["external_id"]
    )
    assert len(rows) == 1

    events = await eventually(
        lambda: stack.events("cases"),
        lambda es: bool(about(es, case_id=created["case_id"])),
        what="case.registered from the HTTP path",
    )
    [registered] = about(events, case_id=created["case_id"])
    assert registered.type == "case.registered" and registered.data.channel == "citizen_app"

    metrics = generate_latest().decode()
    assert 'intake_reports_received_total{channel="citizen_app",path="http"}' in metrics
    assert 'intake_cases_registered_total{channel="citizen_app",path="http"}' in metrics
    assert 'intake_reports_repeated_total{channel="citizen_app"}' in metrics
    assert 'intake_report_to_registered_seconds_count{path="http"}' in metrics


async def test_post_report_near_an_open_case_is_merged(stack, ref):
    first = await stack.http.post("/v1/reports", json=_body(ref, "32050800200301"))
    second = await stack.http.post("/v1/reports", json=_body(ref, "32050800200301"))
    assert (first.status_code, second.status_code) == (201, 201)
    merged = second.json()
    assert merged["outcome"] == "merged"
    assert merged["master_case_id"] == first.json()["case_id"]

    view = (await stack.http.get(f"/v1/cases/{merged['case_id']}")).json()
    assert view["status"] == "merged" and view["master_case_id"] == first.json()["case_id"]
    master = (await stack.http.get(f"/v1/cases/{first.json()['case_id']}")).json()
    assert master["duplicates"] == [merged["case_id"]]


async def test_a_report_that_cannot_be_filed_is_422_with_the_reasons(stack, ref):
    body = _body(ref, category_code="C0101", media_urls=[])
    response = await stack.http.post("/v1/reports", json=body)
    assert response.status_code == 422
    problem = response.json()
    assert {(r["code"], r["field"]) for r in problem["reasons"]} == {
        ("missing_field", "media_urls"),
        ("missing_attribute", "attributes.cover_damage"),
    }
    assert problem["message"].startswith("Report not filed:")
    events = await eventually(
        lambda: stack.events("cases"),
        lambda es: bool(about(es, external_id=body["external_id"])),
        what="report.rejected from the HTTP path",
    )
    [rejected] = about(events, external_id=body["external_id"])
    assert rejected.type == "report.rejected"
    assert [r.model_dump(mode="json") for r in rejected.data.reasons] == problem["reasons"]
    assert 'intake_reports_rejected_total{reason="missing_attribute"}' in generate_latest().decode()


async def test_a_body_that_is_not_a_report_is_400_naming_the_field(stack, ref):
    cases = [
        ({**_body(ref), "location": {"lat": 31.3}}, "location"),
        ({k: v for k, v in _body(ref).items() if k != "channel"}, "channel"),
        ({**_body(ref), "reporter": {"phone": "call me"}}, "reporter.phone"),
        ({**_body(ref), "surprise": 1}, "surprise"),
        ({**_body(ref), "description": "bad\u0000text"}, "description"),
        ({**_body(ref), "attributes": {"x": "lone \ud800 surrogate"}}, "attributes.x"),
    ]
    for body, field in cases:
        # Encoded here: httpx's UTF-8 cannot carry the lone surrogate, JSON's \u escape can.
        response = await stack.http.post(
            "/v1/reports",
            content=json.dumps(body).encode(),
            headers={"content-type": "application/json", **as_("channel", "citizen_app")},
        )
        assert response.status_code == 400, (field, response.text)
        assert response.json()["reasons"][0]["field"] == field
    broken = await stack.http.post(
        "/v1/reports",
        content=b"{not json",
        headers={"content-type": "application/json", **as_("channel", "citizen_app")},
    )
    assert broken.status_code == 400


async def test_unknown_case_is_404(stack):
    assert (await stack.http.get("/v1/cases/01NOSUCHCASE")).status_code == 404
    assert (await stack.http.get("/v1/cases/%20bad%20")).status_code == 404
    response = await stack.http.post(
        "/v1/cases/01NOSUCHCASE/events",
        json={"type": "accepted", "actor_id": "ws-1"},
        headers=as_("department", "sanitation"),
    )
    assert response.status_code == 404


async def test_case_view_follows_the_other_topics_in_any_order(stack, ref):
    created = (await stack.http.post("/v1/reports", json=_body(ref, "32050800200401"))).json()
    case_id = created["case_id"]
    t0 = datetime.now(UTC)
    dispatched = example_data(
        "case.dispatched",
        case_id=case_id,
        department="sanitation",
        area="street-canglang",
        category_code="E0405",
        grid_code="32050800200401",
        kind="event",
        urgency="ordinary",
        deadlines={
            "sign_for": (t0 + timedelta(hours=1)).isoformat(),
            "handle": (t0 + timedelta(hours=4)).isoformat(),
            "verify_limit": "PT30M",
            "clock": "working",
        },
        dispatched_at=t0.isoformat(),
    )
    assert isinstance(dispatched, CaseDispatched)
    feedback = {"case_id": case_id, "department": "sanitation", "area": "street-canglang"}
    handled = example_data("case.handled", **feedback)
    accepted = example_data("case.accepted", **feedback)
    closed = example_data(
        "case.closed", case_id=case_id, department="sanitation", area="street-canglang"
    )
    assert isinstance(handled, CaseHandled) and isinstance(accepted, CaseAccepted)
    assert isinstance(closed, CaseClosed)
    # The department's system is quicker than dispatch's relay: feedback lands first.
    await produce(
        stack.kafka,
        stack.topic("feedback"),
        [
            make_event(handled, source="dept", time=t0 + timedelta(minutes=30)),
            make_event(accepted, source="dept", time=t0 + timedelta(minutes=5)),
        ],
    )
    await eventually(
        lambda: stack.http.get(f"/v1/cases/{case_id}"),
        lambda r: r.json()["status"] == "handled",
        what="feedback folded before the dispatch",
    )
    await produce(
        stack.kafka,
        stack.topic("assignments"),
        [make_event(dispatched, source="dispatch", time=t0)],
    )
    view = (
        await eventually(
            lambda: stack.http.get(f"/v1/cases/{case_id}"),
            lambda r: r.json()["department"] == "sanitation",
            what="the dispatch folded in",
        )
    ).json()
    assert view["status"] == "handled", "a late dispatch must not set the status back"
    assert view["deadlines"]["handle"].startswith((t0 + timedelta(hours=4)).strftime("%Y-%m-%dT"))
    open311 = (await stack.http.get(f"/open311/v2/requests/{case_id}.json")).json()[0]
    assert open311["status"] == "open"
    assert open311["agency_responsible"] == "Sanitation Office"
    assert open311["expected_datetime"] == dispatched.deadlines.handle.isoformat()

    await produce(
        stack.kafka,
        stack.topic("supervision"),
        [make_event(closed, source="supervision", time=t0 + timedelta(hours=2))],
    )
    view = (
        await eventually(
            lambda: stack.http.get(f"/v1/cases/{case_id}"),
            lambda r: r.json()["status"] == "closed",
            what="the case closed",
        )
    ).json()
    assert [item["type"] for item in view["timeline"]] == [
        "case.registered",
        "case.dispatched",
        "case.accepted",
        "case.handled",
        "case.closed",
    ]
    assert view["closed_at"] is not None and view["on_time"] is True
    open311 = (await stack.http.get(f"/open311/v2/requests/{case_id}.json")).json()[0]
    assert open311["status"] == "closed"
    assert open311["updated_datetime"] == (t0 + timedelta(hours=2)).isoformat()


async def test_feedback_over_http_is_published_and_shows_in_the_timeline(stack, ref):
    created = (await stack.http.post("/v1/reports", json=_body(ref, "32050800300301"))).json()
    case_id = created["case_id"]
    url = f"/v1/cases/{case_id}/events"

    not_yet = await stack.http.post(
        url,
        json={"type": "accepted", "actor_id": "ws-0112"},
        headers=as_("department", "sanitation"),
    )
    assert not_yet.status_code == 409, "no department before dispatch"
    posted = await stack.http.post(
        url, json={"type": "accepted", "actor_id": "ws-0112", "department": "sanitation"}
    )
    assert posted.status_code == 202, posted.text
    event_id = posted.json()["event_id"]

    missing = await stack.http.post(
        url, json={"type": "returned", "actor_id": "ws-0112", "department": "sanitation"}
    )
    assert missing.status_code == 422 and missing.json()["reasons"][0]["field"] == "reason"
    wrong = await stack.http.post(
        url, json={"type": "rated", "actor_id": "cb-1", "rating": "so-so", "department": "parks"}
    )
    assert wrong.status_code == 400
    unknown = await stack.http.post(
        url, json={"type": "verified", "actor_id": "i-1", "department": "no-such-dept"}
    )
    assert unknown.status_code == 422 and unknown.json()["reasons"][0]["field"] == "department"

    events = await eventually(
        lambda: stack.events("feedback"),
        lambda es: any(e.id == event_id for e in es),
        what="case.accepted on the feedback topic",
    )
    [accepted] = [e for e in events if e.id == event_id]
    assert accepted.type == "case.accepted" and accepted.data.department == "sanitation"
    assert accepted.data.actor_role == "department"
    # Intake follows feedback too: its own event comes back and is not counted twice.
    await eventually(
        lambda: stack.fetch("SELECT 1 FROM inbox WHERE event_id = $1", event_id),
        lambda rows: len(rows) == 1,
        what="intake consumed its own feedback event",
    )
    view = (await stack.http.get(f"/v1/cases/{case_id}")).json()
    assert view["status"] == "accepted"
    assert [i["type"] for i in view["timeline"]] == ["case.registered", "case.accepted"]

    # A duplicate takes no feedback: it goes to the master.
    duplicate = (await stack.http.post("/v1/reports", json=_body(ref, "32050800300301"))).json()
    assert duplicate["outcome"] == "merged"
    refused = await stack.http.post(
        f"/v1/cases/{duplicate['case_id']}/events",
        json={"type": "accepted", "actor_id": "ws-1", "department": "sanitation"},
    )
    assert refused.status_code == 409 and case_id in refused.json()["message"]
