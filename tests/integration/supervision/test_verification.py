"""Verification, rework and bounce-backs against the real broker and Postgres."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx

from shared.clock import ManualClock, ScaledClock
from tests.integration.conftest import kafka_settings
from tests.integration.helpers import eventually
from tests.integration.supervision.support import (
    describe,
    dispatch,
    event,
    feedback,
    make_topics,
    of_case,
    published,
    runtime,
    send,
    wait_for_events,
    warm_up,
)

CST = timezone(timedelta(hours=8))
HOUR = timedelta(hours=1)


async def test_failed_verification_orders_rework_and_the_redispatch_rearms_the_timers(
    prefix, database_url, bootstrap
):
    cfg = kafka_settings(bootstrap)
    await make_topics(cfg, prefix)
    clock = ScaledClock(20_000, start=datetime(2026, 11, 17, 8, 0, tzinfo=CST))
    service = runtime(prefix, database_url, bootstrap, clock=clock)
    await service.start()
    assert service.app is not None
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=service.app), base_url="http://t")
    try:
        await warm_up(cfg, prefix, database_url, clock.now())
        t0 = clock.now()
        await send(
            cfg,
            prefix,
            "assignments",
            [dispatch("rw", t0, sign_for=100 * HOUR, handle=200 * HOUR)],
        )
        await send(
            cfg,
            prefix,
            "feedback",
            [
                feedback("case.accepted", "rw", t0 + timedelta(minutes=1)),
                feedback("case.handled", "rw", t0 + timedelta(minutes=2)),
                feedback(
                    "case.verification_failed",
                    "rw",
                    t0 + timedelta(minutes=3),
                    reason="cover still loose",
                ),
            ],
        )
        events = await wait_for_events(
            cfg,
            prefix,
            lambda es: any(e.type == "case.rework_ordered" for e in of_case(es, "rw")),
            what="rework ordered",
        )
        [order] = [e for e in of_case(events, "rw") if e.type == "case.rework_ordered"]
        assert order.data.rework_count == 1  # type: ignore[attr-defined]
        assert order.data.reason == "cover still loose"  # type: ignore[attr-defined]
        before = (await http.get("/v1/cases/rw/timers")).json()
        assert before["timers"] == [], "verified (failed) and not yet redispatched"
        unknown = await http.get("/v1/cases/nope/timers")
        assert unknown.status_code == 404 and "nope" in unknown.json()["detail"]
        for path, params, field in [
            ("/v1/cases/bad id/timers", {}, ["path", "case_id"]),
            ("/v1/overdue", {"limit": "0"}, ["query", "limit"]),
            ("/v1/overdue", {"timer": "bogus"}, ["query", "timer"]),
            ("/v1/overdue", {"department": "有"}, ["query", "department"]),
            ("/v1/hotspots", {"limit": "x"}, ["query", "limit"]),
        ]:
            bad = await http.get(path, params=params)
            assert bad.status_code == 422, (path, params, bad.text)
            assert bad.json()["detail"][0]["loc"] == field

        # Dispatch's answer to the rework order: same department, fresh deadlines.
        t1 = clock.now()
        await send(
            cfg,
            prefix,
            "assignments",
            [
                dispatch(
                    "rw",
                    t1,
                    # Seconds of real time ahead on the 20,000x clock (2 h was 0.4 s: a slow
                    # machine read the timers after they fired and a notice was armed), yet
                    # near enough that the rework's deadline fires within the wait below.
                    sign_for=20 * HOUR,
                    handle=40 * HOUR,
                    number=2,
                    redispatch="rework",
                    is_rework=True,
                    rework_count=1,
                )
            ],
        )

        async def rearmed() -> dict:
            return (await http.get("/v1/cases/rw/timers")).json()

        timers = await eventually(
            rearmed, lambda t: t["dispatch_number"] == 2 and t["timers"], what="timers re-armed"
        )
        assert {t["dispatch_number"] for t in timers["timers"]} == {2}
        assert timers["timers"][0]["kind"] in ("sign_for", "handle_warning", "handle")
        handle = [t for t in timers["timers"] if t["kind"] == "handle"]
        assert handle and datetime.fromisoformat(handle[0]["due_at"]) == t1 + 40 * HOUR

        events = await wait_for_events(
            cfg,
            prefix,
            lambda es: any(
                e.type == "case.overdue" and e.data.timer == "handle" for e in of_case(es, "rw")
            ),
            what="the rework's own deadline fires",
        )
    finally:
        await http.aclose()
        await service.stop()
    story = [
        describe(e) + (getattr(e.data, "dispatch_number", None),) for e in of_case(events, "rw")
    ]
    assert story[:4] == [
        ("case.rework_ordered", None, None, None),
        ("case.overdue", "sign_for", None, 2),
        ("case.warned", "handle", None, 2),
        ("case.overdue", "handle", None, 2),
    ]


def _registered(case_id: str, at: datetime, lat_offset: float) -> object:
    return event(
        "case.registered",
        at,
        case_id=case_id,
        category_code="E0102",
        kind="event",
        component_id=None,
        lat=31.2989 + lat_offset,
        long=120.5853,
        registered_at=at,
    )


async def test_the_second_bounce_back_at_a_place_raises_the_bureau_notice(
    prefix, database_url, bootstrap
):
    cfg = kafka_settings(bootstrap)
    await make_topics(cfg, prefix)
    # Nothing here waits on a timer: a still clock keeps them all from firing.
    t0 = datetime(2026, 11, 2, 9, 0, tzinfo=CST)
    service = runtime(prefix, database_url, bootstrap, clock=ManualClock(t0))
    await service.start()
    assert service.app is not None
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=service.app), base_url="http://t")
    try:
        # The original case: registered, dispatched, handled, verified -> closed.
        await send(cfg, prefix, "cases", [_registered("orig", t0, 0)])  # type: ignore[list-item]
        await send(
            cfg,
            prefix,
            "assignments",
            [dispatch("orig", t0 + HOUR, sign_for=HOUR, handle=4 * HOUR, category_code="E0102")],
        )
        await send(
            cfg,
            prefix,
            "feedback",
            [
                feedback("case.handled", "orig", t0 + 2 * HOUR),
                feedback("case.verified", "orig", t0 + 3 * HOUR),
            ],
        )
        await wait_for_events(
            cfg,
            prefix,
            lambda es: any(e.type == "case.closed" for e in of_case(es, "orig")),
            what="original closed",
        )
        # Back at the same spot within 30 days (~22 m and ~33 m away), and one far away.
        day = timedelta(days=1)
        await send(
            cfg,
            prefix,
            "cases",
            [
                _registered("back1", t0 + 5 * day, 0.0002),  # type: ignore[list-item]
                _registered("back2", t0 + 9 * day, 0.0003),  # type: ignore[list-item]
                _registered("elsewhere", t0 + 9 * day, 0.01),  # type: ignore[list-item]
                _registered("back3", t0 + 12 * day, -0.0001),  # type: ignore[list-item]
            ],
        )
        events = await wait_for_events(
            cfg,
            prefix,
            lambda es: sum(e.type == "case.rebounded" for e in es) >= 3,
            what="three bounce-backs",
        )
        hotspots = (await http.get("/v1/hotspots", params={"quarter": "2026-Q4"})).json()
        bad = await http.get("/v1/hotspots", params={"quarter": "2026-Q5"})
    finally:
        await http.aclose()
        await service.stop()
    rebounds = {e.subject: e.data for e in events if e.type == "case.rebounded"}
    assert set(rebounds) == {"back1", "back2", "back3"}
    counts = sorted(
        (r.count, r.bureau_notice, r.key_problem)  # type: ignore[attr-defined]
        for r in rebounds.values()
    )
    assert counts == [(1, False, False), (2, True, False), (3, True, True)]
    assert {r.previous_case_id for r in rebounds.values()} == {"orig"}  # type: ignore[attr-defined]
    assert {r.department for r in rebounds.values()} == {"water-supply"}  # type: ignore[attr-defined]
    [problem] = hotspots["key_problems"]
    assert (problem["quarter"], problem["rebounds"], problem["category_code"]) == (
        "2026-Q4",
        3,
        "E0102",
    )
    [place] = hotspots["places"]
    assert (place["rebounds"], place["bureau_notices"], place["highest_count"]) == (3, 2, 3)
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["query", "quarter"]


async def test_parking_pauses_the_timers_and_unparking_resumes_them_with_the_time_left(
    prefix, database_url, bootstrap
):
    cfg = kafka_settings(bootstrap)
    await make_topics(cfg, prefix)
    t0 = datetime(2026, 11, 17, 9, 0, tzinfo=CST)  # a Tuesday, working clock
    clock = ManualClock(t0)
    service = runtime(prefix, database_url, bootstrap, clock=clock)
    await service.start()
    assert service.app is not None
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=service.app), base_url="http://t")

    async def timers() -> dict:
        return (await http.get("/v1/cases/pk/timers")).json()

    try:
        await send(
            cfg,
            prefix,
            "assignments",
            [dispatch("pk", t0, sign_for=HOUR, handle=3 * HOUR, clock="working")],
        )
        await send(cfg, prefix, "feedback", [feedback("case.accepted", "pk", t0)])
        armed = await eventually(
            timers,
            lambda t: [x["kind"] for x in t.get("timers", [])] == ["handle_warning", "handle"],
            what="handling timers armed",
        )
        assert not any(t["paused"] for t in armed["timers"])
        # Parked at 11:00 with one working hour left; back on Thursday at 10:00.
        await send(
            cfg, prefix, "feedback", [feedback("case.parked", "pk", t0 + 2 * HOUR, reason="x")]
        )
        paused = await eventually(
            timers, lambda t: t["parked"] and all(x["paused"] for x in t["timers"]), what="paused"
        )
        assert len(paused["timers"]) == 2
        # The clock passes the old deadline while parked: nothing fires.
        clock.set(t0 + timedelta(days=1))
        thursday = datetime(2026, 11, 19, 10, 0, tzinfo=CST)
        await send(cfg, prefix, "feedback", [feedback("case.unparked", "pk", thursday)])
        resumed = await eventually(timers, lambda t: not t["parked"], what="resumed")
        handle = next(x for x in resumed["timers"] if x["kind"] == "handle")
        assert datetime.fromisoformat(handle["due_at"]) == thursday + HOUR
        assert not handle["paused"]
        events = await published(cfg, prefix, seconds=1)
    finally:
        await http.aclose()
        await service.stop()
    assert of_case(events, "pk") == [], "parked over its deadline: no light"
