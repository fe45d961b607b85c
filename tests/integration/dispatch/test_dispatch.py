"""Dispatch against the real broker and Postgres: registered cases are dispatched, returns walk
the candidates to a human dispatcher, rework and extensions redispatch, and a return that
arrives before its case is applied when the case does."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client import REGISTRY

from shared.events import (
    CaseDispatched,
    CaseEscalated,
    CaseExtensionRefused,
    CaseRedispatched,
)
from shared.events.examples import example_data
from tests.integration.dispatch.conftest import DISPATCHER_NOW, Dispatch
from tests.integration.helpers import eventually, read_topic
from tests.integration.keys import as_
from tests.unit.dispatch.cases import (
    at,
    extension_granted,
    extension_requested,
    registered,
    returned,
    rework,
)


def headers(record_headers: list[tuple[str, bytes]]) -> dict[str, str]:
    return {k: v.decode() for k, v in record_headers}


async def test_registered_cases_are_dispatched_with_department_area_and_deadlines(
    dispatch: Dispatch,
) -> None:
    friday = at(3, 13, 15)
    rubbish = registered("E0102", street="320508002", area_class="B", case_id="RUBBISH-1")
    cover = registered("C0101", street="320508001", area_class="A", case_id="COVER-1")
    first = await dispatch.send(rubbish, friday, source="intake")
    await dispatch.send(cover, at(10, 1, 22), source="intake")
    # A second copy of a registration (a new event id) and events that are not dispatch's.
    copy = await dispatch.send(rubbish, friday, source="intake")
    others = [
        await dispatch.send(example_data("case.merged", case_id="DUP-1"), friday),
        await dispatch.send(example_data("report.rejected"), friday),
        await dispatch.send(
            example_data("case.accepted", case_id="RUBBISH-1", department="sanitation"), friday
        ),
    ]

    (envelope,) = await dispatch.wait_for("RUBBISH-1", 1)
    event = envelope.data
    assert isinstance(event, CaseDispatched)
    # Canglang routes rubbish to the district sanitation office first, by its rule.
    assert (event.department, event.area) == ("sanitation", "street-canglang")
    assert event.rule_id == "canglang-contracted-cleaning"
    assert "沧浪街道 has contracted street cleaning" in event.rule
    assert envelope.time == friday and envelope.source == "dispatch"
    assert event.dispatched_at == first.time
    # Friday 15:00 + 1 and 4 working hours, across the weekend.
    assert event.deadlines.sign_for == at(3, 13, 16)
    assert event.deadlines.handle == at(3, 16, 10)
    assert (event.deadlines.verify_limit, event.deadlines.clock) == (
        timedelta(minutes=30),
        "working",
    )

    (cover_envelope,) = await dispatch.wait_for("COVER-1", 1)
    cover_event = cover_envelope.data
    assert isinstance(cover_event, CaseDispatched)
    assert (cover_event.department, cover_event.area) == ("water-affairs", "street-pingjiang")
    assert cover_event.co_departments == ["traffic-police"]
    # Urgent: natural time through the National Day holiday night.
    assert cover_event.deadlines.handle == at(10, 2, 4)
    assert cover_event.deadlines.clock == "natural"

    # Once the copy and the others are consumed and the outbox is empty, the topic is final.
    handled = [env.id for env in (copy, *others)]
    await eventually(
        lambda: dispatch.table("SELECT event_id FROM inbox WHERE event_id = ANY($1)", handled),
        lambda rows: len(rows) == len(handled),
        what="the copy and the other events consumed",
    )
    await eventually(
        lambda: dispatch.table("SELECT id FROM outbox"), lambda rows: not rows, what="outbox empty"
    )
    records = await read_topic(dispatch.kafka, dispatch.prefix + "assignments", seconds=3)
    assert sorted(r.key.decode() for r in records) == ["COVER-1", "RUBBISH-1"], (
        "one dispatch per case, nothing for the copy or the others"
    )
    # The routing headers let a department's system filter without parsing.
    rubbish_headers = next(headers(list(r.headers)) for r in records if r.key == b"RUBBISH-1")
    assert rubbish_headers["department"] == "sanitation"
    assert rubbish_headers["area"] == "street-canglang"
    assert rubbish_headers["ce_type"] == "case.dispatched"

    view = (await dispatch.http.get("/v1/cases/RUBBISH-1")).json()
    assert (view["department"], view["dispatch_number"]) == ("sanitation", 1)
    assert view["candidates"] == ["sanitation", "street-canglang"]


async def test_returned_twice_is_escalated_and_a_dispatcher_assigns_it(
    dispatch: Dispatch,
) -> None:
    case_id = "COVER-2"
    await dispatch.send(registered("C0101", case_id=case_id), at(3, 16, 8), source="intake")
    await dispatch.wait_for(case_id, 1)
    await dispatch.send(returned("water-affairs", case_id=case_id), at(3, 16, 8, 10))
    # The department's system sends the same return again, with a new event id.
    await dispatch.send(returned("water-affairs", case_id=case_id), at(3, 16, 8, 10))
    found = await dispatch.wait_for(case_id, 2)
    second = found[1].data
    assert isinstance(second, CaseRedispatched)
    assert (second.reason, second.department, second.returns) == ("return", "street-pingjiang", 1)

    await dispatch.send(
        returned("street-pingjiang", case_id=case_id, suggested="gas-company"), at(3, 16, 8, 20)
    )
    found = await dispatch.wait_for(case_id, 3)
    assert len(found) == 3, "the copy of the first return did not count"
    escalation = found[2].data
    assert isinstance(escalation, CaseEscalated)
    assert escalation.reason == "returns_exhausted"
    assert escalation.tried_departments == ["water-affairs", "street-pingjiang"]

    queue = (await dispatch.http.get("/v1/escalated")).json()
    assert queue["total"] == 1
    (waiting,) = queue["cases"]
    assert (waiting["case_id"], waiting["returns"], waiting["area"]) == (
        case_id,
        2,
        "street-pingjiang",
    )
    assert "suggests gas-company" in waiting["detail"]

    # Manual dispatch takes the command centre's key: none is a 401, a department's a 403.
    order = {"department": "gas-company", "dispatcher_id": "d-7"}
    url = f"/v1/cases/{case_id}/dispatch"
    keyless = await dispatch.http.post(url, json=order, headers={"X-API-Key": ""})
    assert keyless.status_code == 401 and keyless.json()["reasons"][0]["code"] == "api_key_missing"
    bogus = await dispatch.http.post(url, json=order, headers={"X-API-Key": "not-a-key"})
    assert bogus.status_code == 401 and bogus.json()["reasons"][0]["code"] == "api_key_invalid"
    department = await dispatch.http.post(url, json=order, headers=as_("department", "gas-company"))
    assert department.status_code == 403
    assert department.json()["reasons"][0]["code"] == "wrong_principal"
    assert "department:gas-company" in department.json()["message"]

    refused = await dispatch.http.post(
        f"/v1/cases/{case_id}/dispatch", json={"department": "gas-works", "dispatcher_id": "d-7"}
    )
    assert refused.status_code == 422
    assert refused.json()["detail"]["field"] == "department"
    unknown = await dispatch.http.post(
        "/v1/cases/NO-SUCH-CASE/dispatch",
        json={"department": "gas-company", "dispatcher_id": "d-7"},
    )
    assert unknown.status_code == 404 and unknown.json()["detail"]["code"] == "unknown_case"
    malformed = await dispatch.http.post(f"/v1/cases/{case_id}/dispatch", json={"department": 7})
    assert malformed.status_code == 422
    assert (await dispatch.http.get("/v1/escalated", params={"limit": 0})).status_code == 422
    assert (await dispatch.http.get("/v1/cases/not a case id")).status_code == 422
    only_urgent = (await dispatch.http.get("/v1/escalated", params={"urgency": "urgent"})).json()
    assert only_urgent["total"] == 1  # a manhole cover is urgent
    other_area = (
        await dispatch.http.get("/v1/escalated", params={"area": "street-canglang"})
    ).json()
    assert other_area == {"total": 0, "cases": []}

    assigned = await dispatch.http.post(
        f"/v1/cases/{case_id}/dispatch",
        json={"department": "gas-company", "dispatcher_id": "d-7", "note": "a gas cover"},
    )
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["dispatch_number"] == 3
    found = await dispatch.wait_for(case_id, 4)
    manual = found[3].data
    assert isinstance(manual, CaseRedispatched)
    assert (manual.reason, manual.department, manual.dispatcher_id) == (
        "manual",
        "gas-company",
        "d-7",
    )
    assert manual.dispatched_at == DISPATCHER_NOW
    assert manual.deadlines.handle == DISPATCHER_NOW + timedelta(hours=6)
    assert (await dispatch.http.get("/v1/escalated")).json() == {"total": 0, "cases": []}
    again = await dispatch.http.post(
        f"/v1/cases/{case_id}/dispatch", json={"department": "gas-company", "dispatcher_id": "d-7"}
    )
    assert again.status_code == 409
    assert REGISTRY.get_sample_value("dispatch_escalated_queue_length") == 0
    returns = REGISTRY.get_sample_value("dispatch_returns_total", {"department": "water-affairs"})
    assert returns is not None and returns >= 1


async def test_rework_redispatches_to_the_same_department_with_a_new_deadline(
    dispatch: Dispatch,
) -> None:
    case_id = "RUBBISH-2"
    await dispatch.send(
        registered("E0102", street="320508003", case_id=case_id), at(3, 10, 10), source="intake"
    )
    (first,) = await dispatch.wait_for(case_id, 1)
    assert isinstance(first.data, CaseDispatched)
    assert first.data.deadlines.handle == at(3, 10, 15, 30)
    await dispatch.send(rework("street-jinchang", 1, case_id=case_id), at(3, 11, 9))
    found = await dispatch.wait_for(case_id, 2)
    event = found[1].data
    assert isinstance(event, CaseRedispatched)
    assert (event.reason, event.department, event.is_rework, event.rework_count) == (
        "rework",
        "street-jinchang",
        True,
        1,
    )
    assert event.dispatched_at == at(3, 11, 9)
    assert event.deadlines.handle == at(3, 11, 14, 30)


async def test_an_extension_is_granted_to_an_engineering_case_and_refused_to_an_ordinary_one(
    dispatch: Dispatch,
) -> None:
    t0 = at(3, 10, 10)
    await dispatch.send(registered("C0205", case_id="BRIDGE-1"), t0, source="intake")
    await dispatch.send(
        registered("E0102", street="320508003", case_id="RUBBISH-3"), t0, source="intake"
    )
    await dispatch.wait_for("BRIDGE-1", 1)
    await dispatch.wait_for("RUBBISH-3", 1)
    await dispatch.send(
        extension_requested("municipal-works", timedelta(days=2), case_id="BRIDGE-1"), at(3, 20, 9)
    )
    request = await dispatch.send(
        extension_requested("street-jinchang", timedelta(hours=2), case_id="RUBBISH-3"),
        at(3, 10, 11),
    )

    granted = (await dispatch.wait_for("BRIDGE-1", 2))[1].data
    assert isinstance(granted, CaseRedispatched)
    assert (granted.reason, granted.extension) == ("extension", timedelta(days=2))
    assert granted.deadlines.handle == at(3, 26, 10)  # 10 working days + 2 more

    refused = (await dispatch.wait_for("RUBBISH-3", 2))[1].data
    assert isinstance(refused, CaseExtensionRefused)
    assert (refused.reason, refused.department) == ("tier_not_eligible", "street-jinchang")

    # The command centre overrides the refusal.
    await dispatch.send(
        extension_granted(
            "street-jinchang", timedelta(hours=2), case_id="RUBBISH-3", request_event_id=request.id
        ),
        at(3, 10, 12),
    )
    override = (await dispatch.wait_for("RUBBISH-3", 3))[2].data
    assert isinstance(override, CaseRedispatched)
    assert override.reason == "extension"
    assert override.deadlines.handle == at(3, 10, 17, 30)


async def test_a_return_that_arrives_before_its_registration_is_applied_when_the_case_does(
    dispatch: Dispatch,
) -> None:
    case_id = "COVER-3"
    await dispatch.send(returned("water-affairs", case_id=case_id), at(3, 16, 8, 10))
    parked = await eventually(
        lambda: dispatch.table("SELECT event_type FROM pending WHERE case_id = $1", case_id),
        lambda rows: len(rows) == 1,
        what="the early return parked",
    )
    assert parked[0]["event_type"] == "case.returned"
    early = await dispatch.http.get(f"/v1/cases/{case_id}")
    assert early.status_code == 404 and "wait for its registration" in early.text

    await dispatch.send(registered("C0101", case_id=case_id), at(3, 16, 8), source="intake")
    first, second = await dispatch.wait_for(case_id, 2)
    assert isinstance(first.data, CaseDispatched) and first.data.department == "water-affairs"
    assert isinstance(second.data, CaseRedispatched)
    assert (second.data.reason, second.data.department) == ("return", "street-pingjiang")
    assert second.time == at(3, 16, 8, 10)
    assert await dispatch.table("SELECT * FROM pending") == []
    state = (await dispatch.http.get(f"/v1/cases/{case_id}")).json()
    assert (state["department"], state["returns"]) == ("street-pingjiang", 1)
