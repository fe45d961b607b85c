"""Open311 GeoReport v2: every endpoint, in JSON and XML, keys per channel, errors per the spec."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import defusedxml.ElementTree as SafeET

from tests.integration.helpers import eventually
from tests.integration.intake.conftest import about, cell
from tests.integration.keys import dev_key

ROOT = Path(__file__).resolve().parents[3]
FORM = {"content-type": "application/x-www-form-urlencoded"}


def _form(ref, code: str, **fields: str) -> str:
    lat, long = cell(ref, code).centre
    doc = {
        "api_key": dev_key("channel", "open311"),
        "service_code": "C0114",
        "lat": str(lat),
        "long": str(long),
        "description": "street light out",
        "media_url": "https://media.example.org/lamp.jpg",
        "attribute[lamp_problem]": "out",
        "first_name": "Ann",
        "last_name": "Lee",
        "phone": "13700001111",
        "email": "ann@example.org",
    }
    doc.update(fields)
    return urlencode({k: v for k, v in doc.items() if v is not None})


def _xml(response):
    assert response.headers["content-type"].startswith("text/xml"), response.headers
    return SafeET.fromstring(response.content)


async def test_discovery_and_services_in_json_and_xml(stack, ref):
    discovery = await stack.http.get("/open311/v2/discovery.json")
    assert discovery.status_code == 200
    [endpoint] = discovery.json()["endpoints"]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"].endswith("/open311/v2")
    root = _xml(await stack.http.get("/open311/v2/discovery.xml"))
    assert root.tag == "discovery"
    assert [f.text for f in root.findall("endpoints/endpoint/formats/format")] == [
        "application/json",
        "text/xml",
    ]

    services = (await stack.http.get("/open311/v2/services.json")).json()
    assert len(services) == len(ref.categories)
    lamp = next(s for s in services if s["service_code"] == "C0114")
    assert lamp["metadata"] is True and lamp["type"] == "realtime"
    root = _xml(await stack.http.get("/open311/v2/services.xml"))
    assert root.tag == "services" and len(root.findall("service")) == len(ref.categories)
    assert root.find("service/service_code").text == ref.categories[0].code

    definition = (await stack.http.get("/open311/v2/services/C0114.json")).json()
    assert definition["service_code"] == "C0114"
    codes = [a["code"] for a in definition["attributes"]]
    assert codes == ["lamp_problem", "pole_number"]
    lamp_problem = definition["attributes"][0]
    assert lamp_problem["required"] is True and lamp_problem["datatype"] == "singlevaluelist"
    assert {"key", "name"} <= set(lamp_problem["values"][0])
    root = _xml(await stack.http.get("/open311/v2/services/C0114.xml"))
    assert root.tag == "service_definition"
    assert root.find("attributes/attribute/code").text == "lamp_problem"
    assert root.find("attributes/attribute/values/value/key") is not None

    missing = await stack.http.get("/open311/v2/services/NOPE.xml")
    assert missing.status_code == 404
    assert _xml(missing).find("error/code").text == "404"
    assert (await stack.http.get("/open311/v2/services.csv")).status_code == 404


async def test_post_request_json_and_xml_and_get_it_back(stack, ref):
    posted = await stack.http.post(
        "/open311/v2/requests.json", content=_form(ref, "32050800400201"), headers=FORM
    )
    assert posted.status_code == 201, posted.text
    [created] = posted.json()
    request_id = created["service_request_id"]

    one = (await stack.http.get(f"/open311/v2/requests/{request_id}.json")).json()
    assert len(one) == 1
    record = one[0]
    assert record["status"] == "open" and record["service_code"] == "C0114"
    assert record["address_id"] == "32050800400201"
    assert record["media_url"] == "https://media.example.org/lamp.jpg"
    assert record["expected_datetime"] is None and record["agency_responsible"] is None
    root = _xml(await stack.http.get(f"/open311/v2/requests/{request_id}.xml"))
    assert root.tag == "service_requests"
    assert root.find("request/service_request_id").text == request_id
    assert root.find("request/status").text == "open"

    events = await eventually(
        lambda: stack.events("cases"),
        lambda es: bool(about(es, case_id=request_id)),
        what="case.registered from Open311",
    )
    [registered] = about(events, case_id=request_id)
    assert registered.data.channel == "open311"
    assert registered.data.attributes == {"lamp_problem": "out"}

    # The same place again, in XML: a duplicate, shown closed with the spec's note.
    dup = await stack.http.post(
        "/open311/v2/requests.xml", content=_form(ref, "32050800400201"), headers=FORM
    )
    assert dup.status_code == 201
    dup_id = _xml(dup).find("request/service_request_id").text
    assert dup_id != request_id
    record = (await stack.http.get(f"/open311/v2/requests/{dup_id}.json")).json()[0]
    assert (record["status"], record["status_notes"]) == ("closed", "Duplicate request.")


async def test_api_keys_per_channel(stack, ref):
    wrong = await stack.http.post(
        "/open311/v2/requests.json",
        content=_form(ref, "32050800400301", api_key="not-a-key"),
        headers=FORM,
    )
    assert wrong.status_code == 403
    assert wrong.json() == [{"code": 403, "description": "Invalid api_key"}]
    none = await stack.http.post(
        "/open311/v2/requests.xml",
        content=_form(ref, "32050800400301", api_key=None),
        headers=FORM,
    )
    assert none.status_code == 403 and _xml(none).find("error/code").text == "403"

    app_key = await stack.http.post(
        "/open311/v2/requests.json",
        content=_form(ref, "32050800400301", api_key=dev_key("channel", "citizen_app")),
        headers=FORM,
    )
    assert app_key.status_code == 201
    request_id = app_key.json()[0]["service_request_id"]
    events = await eventually(
        lambda: stack.events("cases"),
        lambda es: bool(about(es, case_id=request_id)),
        what="case from the citizen app's key",
    )
    assert about(events, case_id=request_id)[0].data.channel == "citizen_app"

    # The operator's tool: a new key works at once, a revoked one is refused.
    env = {
        **os.environ,
        "DB_SCHEMA": stack.schema,
        "DATABASE_URL": stack.database_url,
    }
    create = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "shared.apikeys",
        "--service",
        "intake",
        "create",
        "--kind",
        "channel",
        "--id",
        "open311",
        "--label",
        "test",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await create.communicate()
    assert create.returncode == 0, err
    key = out.decode().strip()
    stored = await stack.fetch(
        "SELECT key_hash, kind, principal_id FROM access_keys WHERE label = 'test'"
    )
    assert len(stored) == 1 and key not in stored[0]["key_hash"]
    assert (stored[0]["kind"], stored[0]["principal_id"]) == ("channel", "open311")
    ok = await stack.http.post(
        "/open311/v2/requests.json",
        content=_form(ref, "32050800400401", api_key=key),
        headers=FORM,
    )
    assert ok.status_code == 201
    revoke = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "shared.apikeys",
        "--service",
        "intake",
        "revoke",
        key,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await revoke.communicate()
    assert revoke.returncode == 0, err
    refused = await stack.http.post(
        "/open311/v2/requests.json",
        content=_form(ref, "32050800400401", api_key=key),
        headers=FORM,
    )
    assert refused.status_code == 403

    department = await stack.http.post(
        "/open311/v2/requests.json",
        content=_form(ref, "32050800400401", api_key=dev_key("department", "sanitation")),
        headers=FORM,
    )
    assert department.status_code == 403
    assert department.json()[0]["description"] == "api_key is a department key, not a channel's"


async def test_errors_come_as_a_list_of_code_and_description(stack, ref):
    rejected = await stack.http.post(
        "/open311/v2/requests.json",
        content=_form(ref, "32050800100310", **{"attribute[lamp_problem]": "on_fire"}),
        headers=FORM,
    )
    assert rejected.status_code == 400
    [error] = rejected.json()
    assert error["code"] == 400
    assert error["description"].startswith("invalid_attribute attribute[lamp_problem]:")

    outside = await stack.http.post(
        "/open311/v2/requests.xml",
        content=_form(ref, "32050800100310", lat="40.0", long="116.4", media_url=""),
        headers=FORM,
    )
    assert outside.status_code == 400
    descriptions = {e.find("description").text.split(":")[0] for e in _xml(outside)}
    assert descriptions == {"outside_city lat/long", "missing_field media_url"}

    address_only = await stack.http.post(
        "/open311/v2/requests.json",
        content=_form(ref, "32050800100310", lat=None, long=None, address_string="干将路 1 号"),
        headers=FORM,
    )
    assert address_only.status_code == 400
    assert address_only.json()[0]["description"].startswith("unknown_address address_string:")

    for fields, status in (
        ({"service_code": None}, 400),
        ({"lat": "north"}, 400),
        ({"lat": "31.3", "long": None}, 400),
        ({"address_id": "12"}, 400),
    ):
        response = await stack.http.post(
            "/open311/v2/requests.json",
            content=_form(ref, "32050800100310", **fields),
            headers=FORM,
        )
        assert response.status_code == status, (fields, response.text)
        assert set(response.json()[0]) == {"code", "description"}
    multipart = await stack.http.post(
        "/open311/v2/requests.json",
        content=b"--x--",
        headers={"content-type": "multipart/form-data; boundary=x"},
    )
    assert multipart.status_code == 415
    unknown = await stack.http.get("/open311/v2/requests/NOSUCH.xml")
    assert unknown.status_code == 404 and _xml(unknown).tag == "errors"


async def test_get_requests_filters(stack, ref):
    external_id = f"o311-{uuid.uuid4().hex[:8]}"
    form = _form(ref, "32050800100102", service_code="E0504", external_id=external_id)
    form = form.replace("attribute%5Blamp_problem%5D=out&", "")
    first = await stack.http.post("/open311/v2/requests.json", content=form, headers=FORM)
    assert first.status_code == 201, first.text
    request_id = first.json()[0]["service_request_id"]
    retry = await stack.http.post("/open311/v2/requests.json", content=form, headers=FORM)
    assert retry.status_code == 200 and retry.json()[0]["service_request_id"] == request_id

    by_code = (await stack.http.get("/open311/v2/requests.json?service_code=E0504")).json()
    assert [r["service_request_id"] for r in by_code] == [request_id]
    open_ones = (
        await stack.http.get("/open311/v2/requests.json?service_code=E0504,C0114&status=open")
    ).json()
    assert request_id in [r["service_request_id"] for r in open_ones]
    assert all(r["status"] == "open" for r in open_ones)
    closed = (
        await stack.http.get("/open311/v2/requests.json?service_code=E0504&status=closed")
    ).json()
    assert closed == []

    now = datetime.now(UTC)
    window = urlencode(
        {
            "start_date": (now - timedelta(hours=1)).isoformat(),
            "end_date": (now + timedelta(hours=1)).isoformat(),
            "service_code": "E0504",
        }
    )
    assert [
        r["service_request_id"]
        for r in (await stack.http.get(f"/open311/v2/requests.json?{window}")).json()
    ] == [request_id]
    past = urlencode({"end_date": (now - timedelta(days=1)).isoformat(), "service_code": "E0504"})
    assert (await stack.http.get(f"/open311/v2/requests.json?{past}")).json() == []

    by_id = await stack.http.get(
        f"/open311/v2/requests.xml?service_request_id={request_id},NOSUCH&service_code=C0101"
    )
    ids = [e.text for e in _xml(by_id).findall("request/service_request_id")]
    assert ids == [request_id], "service_request_id overrides the other filters"

    for bad in (
        "status=pending",
        "start_date=yesterday",
        "start_date=2026-01-01T00:00:00",
        "start_date=2026-01-01T00:00:00Z&end_date=2026-06-01T00:00:00Z",
    ):
        response = await stack.http.get(f"/open311/v2/requests.json?{bad}")
        assert response.status_code == 400, bad
        assert response.json()[0]["code"] == 400
