"""Who may write through intake's HTTP API: keys per channel, department and centre, and their rate.

Missing or unknown keys are 401s, a key used outside its principal's remit a
403 naming why, a key over its rate a 429 with Retry-After; revoking a key
shuts it out from the next request on.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
from prometheus_client import REGISTRY

from shared.apikeys import Principal, key_hash, register_key, revoke_key
from shared.auth import HEADER
from shared.events.envelope import make_event
from shared.events.examples import example_data
from shared.ratelimit import RateLimiter
from tests.integration.helpers import eventually, produce
from tests.integration.intake.test_http_api import _body
from tests.integration.keys import as_


def _reason(response) -> str:
    return response.json()["reasons"][0]["code"]


async def _connect(stack) -> asyncpg.Connection:
    return await asyncpg.connect(stack.database_url, server_settings={"search_path": stack.schema})


async def test_a_report_needs_its_channels_key(stack, ref):
    body = _body(ref, "32050800200301")
    missing = await stack.http.post("/v1/reports", json=body, headers={HEADER: ""})
    assert (missing.status_code, _reason(missing)) == (401, "api_key_missing")
    assert HEADER in missing.json()["message"]
    unknown = await stack.http.post("/v1/reports", json=body, headers={HEADER: "guess"})
    assert (unknown.status_code, _reason(unknown)) == (401, "api_key_invalid")

    other_channel = await stack.http.post(
        "/v1/reports", json=body, headers=as_("channel", "hotline_12345")
    )
    assert (other_channel.status_code, _reason(other_channel)) == (403, "channel_mismatch")
    assert "'hotline_12345', not 'citizen_app'" in other_channel.json()["message"]
    department = await stack.http.post(
        "/v1/reports", json=body, headers=as_("department", "sanitation")
    )
    assert (department.status_code, _reason(department)) == (403, "wrong_principal")
    rows = await stack.fetch("SELECT 1 FROM cases WHERE external_id = $1", body["external_id"])
    assert rows == [], "a refused request filed nothing"

    filed = await stack.http.post("/v1/reports", json=body, headers=as_("channel", "citizen_app"))
    assert filed.status_code == 201, filed.text
    refused = REGISTRY.get_sample_value(
        "http_requests_refused_total",
        {"service": "intake", "status": "403", "code": "channel_mismatch"},
    )
    assert refused is not None and refused >= 1


async def test_keys_are_stored_hashed_and_revoking_one_takes_effect_at_once(stack, ref):
    key = "a-key-for-the-wechat-bridge"
    conn = await _connect(stack)
    try:
        await register_key(conn, key, Principal("channel", "wechat_photo"), "test")
        stored = await conn.fetch("SELECT key_hash FROM access_keys WHERE label = 'test'")
        assert [r["key_hash"] for r in stored] == [key_hash(key)]
        dump = await conn.fetchval("SELECT string_agg(t::text, '') FROM access_keys t")
        assert key not in dump, "the key itself is never stored"
        body = _body(ref, "32050800200302", channel="wechat_photo")
        ok = await stack.http.post("/v1/reports", json=body, headers={HEADER: key})
        assert ok.status_code == 201, ok.text
        assert await revoke_key(conn, key_hash(key))
    finally:
        await conn.close()
    body = _body(ref, "32050800200303", channel="wechat_photo")
    revoked = await stack.http.post("/v1/reports", json=body, headers={HEADER: key})
    assert (revoked.status_code, _reason(revoked)) == (401, "api_key_invalid")


async def test_feedback_is_the_holding_departments_and_checks_are_the_centres(stack, ref):
    created = (await stack.http.post("/v1/reports", json=_body(ref, "32050800300401"))).json()
    url = f"/v1/cases/{created['case_id']}/events"
    sanitation, parks = as_("department", "sanitation"), as_("department", "parks")

    for_another = await stack.http.post(
        url, json={"type": "accepted", "actor_id": "p-1", "department": "sanitation"}, headers=parks
    )
    assert for_another.status_code == 403
    assert for_another.json()["reasons"][0]["field"] == "department"
    accepted = await stack.http.post(
        url,
        json={"type": "accepted", "actor_id": "ws-1", "department": "sanitation"},
        headers=sanitation,
    )
    assert accepted.status_code == 202, accepted.text
    t0 = datetime.now(UTC)
    dispatched = example_data(
        "case.dispatched",
        case_id=created["case_id"],
        department="sanitation",
        co_departments=["street-canglang"],
        area="street-canglang",
        category_code="E0405",
        grid_code="32050800300401",
        dispatched_at=t0.isoformat(),
    )
    await produce(
        stack.kafka,
        stack.topic("assignments"),
        [make_event(dispatched, source="dispatch", time=t0)],
    )
    await eventually(
        lambda: stack.http.get(f"/v1/cases/{created['case_id']}"),
        lambda r: r.json()["department"] == "sanitation",
        what="the case dispatched to sanitation",
    )
    not_theirs = await stack.http.post(
        url, json={"type": "handled", "actor_id": "p-1"}, headers=parks
    )
    assert not_theirs.status_code == 403
    assert "held by sanitation, not parks" in not_theirs.json()["message"]
    verify_own = await stack.http.post(
        url, json={"type": "verified", "actor_id": "ws-1"}, headers=sanitation
    )
    assert verify_own.status_code == 403 and verify_own.json()["reasons"][0]["field"] == "type"
    as_inspector = await stack.http.post(
        url, json={"type": "handled", "actor_id": "ws-1", "actor_role": "inspector"},
        headers=sanitation,
    )  # fmt: skip
    assert as_inspector.status_code == 403
    assert as_inspector.json()["reasons"][0]["field"] == "actor_role"

    centre = as_("centre")
    centre_handles = await stack.http.post(
        url, json={"type": "handled", "actor_id": "c-1", "department": "sanitation"},
        headers=centre,
    )  # fmt: skip
    assert centre_handles.status_code == 403
    handled = await stack.http.post(
        url, json={"type": "handled", "actor_id": "ws-1"}, headers=sanitation
    )
    assert handled.status_code == 202, handled.text
    # A co-department speaks for its own share of the case.
    co = await stack.http.post(
        url,
        json={"type": "accepted", "actor_id": "st-1"},
        headers=as_("department", "street-canglang"),
    )
    assert co.status_code == 202, co.text
    verified = await stack.http.post(
        url, json={"type": "verified", "actor_id": "inspector-07"}, headers=centre
    )
    assert verified.status_code == 202, verified.text
    channel = await stack.http.post(
        url, json={"type": "rated", "actor_id": "x", "rating": "satisfied"},
        headers=as_("channel", "citizen_app"),
    )  # fmt: skip
    assert (channel.status_code, _reason(channel)) == (403, "wrong_principal")
    events = await eventually(
        lambda: stack.events("feedback"),
        lambda es: len([e for e in es if e.subject == created["case_id"]]) >= 4,
        what="the four accepted feedback events",
    )
    mine = [e for e in events if e.subject == created["case_id"]]
    assert sorted((e.type, e.data.department) for e in mine) == [
        ("case.accepted", "sanitation"),
        ("case.accepted", "street-canglang"),
        ("case.handled", "sanitation"),
        ("case.verified", "sanitation"),
    ]


async def test_a_key_over_its_rate_gets_429_with_retry_after(stack, ref):
    # A day ahead of the database's clock, which filled the bucket on earlier requests.
    now = [datetime.now(UTC) + timedelta(days=1)]
    saved = stack.runtime.auth.limiter
    stack.runtime.auth.limiter = RateLimiter(rate=0.5, burst=2, clock=lambda: now[0])
    try:
        key = as_("channel", "video")
        answers = []
        for i in range(3):
            body = _body(ref, "32050800200304", channel="video", external_id=f"rate-{i}")
            answers.append(await stack.http.post("/v1/reports", json=body, headers=key))
        assert [r.status_code for r in answers[:2]] == [201, 200] or all(
            r.status_code in (200, 201) for r in answers[:2]
        )
        limited = answers[2]
        assert limited.status_code == 429
        assert limited.headers["Retry-After"] == "2"
        assert _reason(limited) == "rate_limited"
        # Another key has its own bucket.
        other = _body(ref, "32050800200304", channel="drone", external_id="rate-drone")
        assert (
            await stack.http.post("/v1/reports", json=other, headers=as_("channel", "drone"))
        ).status_code in (200, 201)
        now[0] += timedelta(seconds=2)
        body = _body(ref, "32050800200304", channel="video", external_id="rate-later")
        assert (await stack.http.post("/v1/reports", json=body, headers=key)).status_code in (
            200,
            201,
        )
    finally:
        stack.runtime.auth.limiter = saved
