"""Deadline timers against the real broker and Postgres, on a scaled clock.

The clock runs 20,000 times faster than the wall clock (a day in 4.3 s), so
the notice ladder's one working day between levels 1 and 2 passes within the
test; urgent cases count natural time, so one working day is 24 h.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import httpx

from shared.clock import ScaledClock, SystemClock
from shared.events.envelope import decode
from tests.integration.conftest import kafka_settings
from tests.integration.helpers import eventually, read_topic
from tests.integration.supervision.support import (
    describe,
    dispatch,
    feedback,
    fetch,
    make_topics,
    of_case,
    published,
    runtime,
    schema,
    send,
    wait_for_events,
    warm_up,
)

CST = timezone(timedelta(hours=8))
SCALE = 20_000
HOUR = timedelta(hours=1)


def _has(case_id: str, event_type: str, level: int | None = None):  # type: ignore[no-untyped-def]
    def check(events) -> bool:  # type: ignore[no-untyped-def]
        return any(
            e.type == event_type and getattr(e.data, "level", None) == level
            for e in of_case(events, case_id)
        )

    return check


async def test_a_late_case_climbs_the_ladder_once_per_rung_and_a_timely_one_gets_no_light(
    prefix, database_url, bootstrap
):
    cfg = kafka_settings(bootstrap)
    await make_topics(cfg, prefix)
    clock = ScaledClock(SCALE, start=datetime(2026, 11, 17, 8, 0, tzinfo=CST))
    service = runtime(prefix, database_url, bootstrap, clock=clock)
    await service.start()
    assert service.app is not None
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=service.app), base_url="http://t")
    try:
        await warm_up(cfg, prefix, database_url, clock.now())
        t0 = clock.now()
        # "late": never signed for, handled only after the second notice.
        # "timely": signed for, handled and verified well inside its limits.
        await send(
            cfg,
            prefix,
            "assignments",
            [
                dispatch("late", t0, sign_for=HOUR, handle=4 * HOUR),
                dispatch("timely", t0, sign_for=10 * HOUR, handle=20 * HOUR),
            ],
        )
        await send(
            cfg,
            prefix,
            "feedback",
            [
                feedback("case.accepted", "timely", t0 + timedelta(minutes=5)),
                feedback("case.handled", "timely", t0 + timedelta(minutes=10)),
                feedback("case.verified", "timely", t0 + timedelta(minutes=20)),
            ],
        )

        # Level 1 comes with the overdue (its interval is 0): the case is on the overdue list.
        await wait_for_events(cfg, prefix, _has("late", "case.notice_issued", 1), what="level 1")
        overdue = (await http.get("/v1/overdue", params={"department": "water-supply"})).json()
        [listed] = [c for c in overdue["cases"] if c["case_id"] == "late"]
        assert listed["timer"] == "handle"
        assert listed["notice_level"] >= 1
        assert listed["late_by_seconds"] > 0
        timers = (await http.get("/v1/cases/late/timers")).json()
        assert [(t["kind"], t["level"]) for t in timers["timers"]] == [("notice", 2)]
        assert (await http.get("/v1/overdue", params={"department": "nobody"})).json()[
            "cases"
        ] == []

        await wait_for_events(
            cfg, prefix, _has("late", "case.notice_issued", 2), what="level 2", seconds=40
        )
        handled_at = clock.now()
        await send(
            cfg,
            prefix,
            "feedback",
            [
                feedback("case.handled", "late", handled_at),
                feedback("case.verified", "late", handled_at + timedelta(minutes=10)),
            ],
        )
        await wait_for_events(cfg, prefix, _has("late", "case.closed"), what="late case closed")
        timers = (await http.get("/v1/cases/late/timers")).json()
        assert timers["closed"] is True
        assert [t["kind"] for t in timers["timers"]] in ([], ["lookback"])
        # Past the timely case's handling deadline (20 h = 3.6 s real) by now.
        await clock.sleep_until(t0 + 21 * HOUR)
        await asyncio.sleep(0.5)
        events = await published(cfg, prefix)
    finally:
        await http.aclose()
        await service.stop()

    late = of_case(events, "late")
    assert [describe(e) for e in late] == [
        ("case.overdue", "sign_for", None),
        ("case.warned", "handle", None),
        ("case.overdue", "handle", None),
        ("case.notice_issued", "handle", 1),
        ("case.notice_issued", "handle", 2),
        ("case.closed", None, None),
    ], "each light once, in order, and no level 3 once handled"
    assert len({e.id for e in late}) == len(late)
    times = [e.time for e in late[:5]]
    assert times == [
        t0 + HOUR,
        t0 + timedelta(hours=3.2),
        t0 + 4 * HOUR,
        t0 + 4 * HOUR,
        t0 + 28 * HOUR,
    ], "events carry the instants the timers were due"
    closed = late[-1].data
    assert closed.on_time is False  # type: ignore[attr-defined]
    assert closed.handle_deadline == t0 + 4 * HOUR  # type: ignore[attr-defined]
    assert all(e.source == "supervision" for e in late)

    timely = of_case(events, "timely")
    assert [e.type for e in timely] == ["case.closed"], "handled in time: no light at all"
    assert timely[0].data.on_time is True  # type: ignore[attr-defined]


async def test_a_sign_for_sent_just_before_its_deadline_disarms_the_timer_it_races(
    prefix, database_url, bootstrap
):
    """The timer waits its settle past the deadline, so the sign-for still on its way wins.

    Both cases have the same sign-for deadline. "racer" is signed for 300 ms before
    it, but the event is only sent once the deadline has passed, as a sign-for still
    in intake's outbox or the broker would arrive. Fired at its due instant, its
    timer would beat the sign-for and publish an overdue that never was (with
    ``timer_settle_ms=0`` this test fails so). "silent" is never signed for: its
    overdue comes, after the settle, dated at the deadline.
    """
    cfg = kafka_settings(bootstrap)
    await make_topics(cfg, prefix)
    clock = SystemClock()
    service = runtime(prefix, database_url, bootstrap, clock=clock, timer_settle_ms=1500)
    await service.start()
    try:
        await warm_up(cfg, prefix, database_url, clock.now())
        t0 = clock.now()
        limit = timedelta(seconds=2)
        due = t0 + limit
        await send(
            cfg,
            prefix,
            "assignments",
            [
                dispatch("racer", t0, sign_for=limit, handle=HOUR),
                dispatch("silent", t0, sign_for=limit, handle=HOUR),
            ],
        )
        await clock.sleep_until(due + timedelta(milliseconds=100))
        signed = due - timedelta(milliseconds=300)
        await send(cfg, prefix, "feedback", [feedback("case.accepted", "racer", signed)])
        await wait_for_events(
            cfg, prefix, _has("silent", "case.overdue"), what="the silent case's overdue"
        )
        fired_at = clock.now()
        events = await published(cfg, prefix)
    finally:
        await service.stop()

    assert of_case(events, "racer") == [], "signed for in time: no overdue"
    [overdue] = of_case(events, "silent")
    assert describe(overdue) == ("case.overdue", "sign_for", None)
    assert overdue.time == due, "dated at the deadline, not at the firing"
    assert fired_at >= due + timedelta(milliseconds=1500), "fired only once settled"


async def test_after_an_outage_the_sign_fors_sent_meanwhile_are_read_before_their_deadlines_fire(
    prefix, database_url, bootstrap
):
    """A restarted supervision reads its backlog before it fires what came due meanwhile.

    While the service is down, "signed" is signed for before its deadline; the deadline
    then passes. On restart every settle is long over, so without waiting for the
    consumer the timer fires at once, before the consumer has even joined its group,
    and publishes an overdue that never was (with ``timer_wait_for_reads=False`` this
    test fails so). "silent" is never signed for and gets its overdue.
    """
    cfg = kafka_settings(bootstrap)
    await make_topics(cfg, prefix)
    clock = SystemClock()
    limit = timedelta(seconds=2)
    first = runtime(prefix, database_url, bootstrap, clock=clock, timer_settle_ms=200)
    await first.start()
    try:
        await warm_up(cfg, prefix, database_url, clock.now())
        t0 = clock.now()
        await send(
            cfg,
            prefix,
            "assignments",
            [
                dispatch("signed", t0, sign_for=limit, handle=HOUR),
                dispatch("silent", t0, sign_for=limit, handle=HOUR),
            ],
        )
        await eventually(
            lambda: fetch(
                database_url,
                f"SELECT count(*) AS n FROM {schema(prefix)}.timers "
                "WHERE kind = 'sign_for' AND case_id = ANY($1::text[])",
                ["signed", "silent"],
            ),
            lambda rows: rows[0]["n"] == 2,
            what="both sign-for timers armed",
        )
    finally:
        await first.stop()
    due = t0 + limit
    await send(
        cfg, prefix, "feedback", [feedback("case.accepted", "signed", due - timedelta(seconds=1))]
    )
    await clock.sleep_until(due + timedelta(seconds=1))

    second = runtime(prefix, database_url, bootstrap, clock=clock, timer_settle_ms=200)
    await second.start()
    try:
        await wait_for_events(
            cfg, prefix, _has("silent", "case.overdue"), what="the silent case's overdue"
        )
        await asyncio.sleep(1.0)  # time for a wrong overdue of "signed" to show itself
        events = await published(cfg, prefix)
    finally:
        await second.stop()

    assert of_case(events, "signed") == [], "signed for in time: no overdue"
    assert [describe(e) for e in of_case(events, "silent")] == [("case.overdue", "sign_for", None)]


async def test_with_case_events_flowing_in_due_timers_cut_the_consumers_settle_short(
    prefix, database_url, bootstrap
):
    """A busy consumer holds its read up to ``follower_settle_ms`` (2.5 s here) to gather a
    case's events in one batch, and a due timer waits until the consumer has read past its
    due instant. The read therefore ends when the next due timer needs it: five timers due
    0.6 s apart, with case events flowing in all along, each fire within the timer settle
    and a read or two. Held for the whole settle (``reads_needed_by`` unwired), the reads
    end every 2.5 s, and a timer due just after one waits about 2 s for the next."""
    cfg = kafka_settings(bootstrap)
    await make_topics(cfg, prefix)
    clock = SystemClock()
    kafka = kafka_settings(bootstrap).model_copy(
        update={
            "follower_settle_ms": 2500,
            "follower_settle_min_batch": 5,
            "follower_fetch_max_wait_ms": 100,
        }
    )
    service = runtime(
        prefix, database_url, bootstrap, clock=clock, timer_settle_ms=200, kafka=kafka
    )
    flowing = True

    async def traffic() -> None:
        n = 0
        while flowing:
            at = clock.now()
            await send(
                cfg,
                prefix,
                "assignments",
                [dispatch(f"busy-{n + i}", at, sign_for=HOUR, handle=HOUR) for i in range(20)],
            )
            n += 20
            await asyncio.sleep(0.1)

    await service.start()
    try:
        await warm_up(cfg, prefix, database_url, clock.now())
        t0 = clock.now()
        lates = [f"late-{i}" for i in range(5)]
        await send(
            cfg,
            prefix,
            "assignments",
            [
                dispatch(case, t0, sign_for=timedelta(seconds=4 + 0.6 * i), handle=HOUR)
                for i, case in enumerate(lates)
            ],
        )
        sending = asyncio.create_task(traffic())
        await wait_for_events(
            cfg, prefix, _has(lates[-1], "case.overdue"), seconds=40, what="the last overdue"
        )
        flowing = False
        await sending
        records = await read_topic(cfg, prefix + "supervision", seconds=1)
    finally:
        await service.stop()

    lags = {}
    for record in records:
        env = decode(record.value)
        if env.subject in lates and env.type == "case.overdue":
            lags[env.subject] = record.timestamp / 1000 - env.time.timestamp()
    assert sorted(lags) == lates
    assert max(lags.values()) < 1.5, lags
    assert min(lags.values()) >= 0.2, "never before the timer settle"


async def test_a_timer_waits_for_the_partitions_another_instance_holds(
    prefix, database_url, bootstrap
):
    """Any instance fires any due timer. Another instance holds a partition this one does
    not and has applied it only up to t0 (its read mark): a timer due after t0 waits until
    that mark passes it, as a sign-for in that instance's backlog would need. This
    instance's own marks are saved for the others. (Without the marks, or with the
    others' mark ignored, "held" fires after its 200 ms settle.)"""
    cfg = kafka_settings(bootstrap)
    await make_topics(cfg, prefix)
    clock = SystemClock()
    service = runtime(prefix, database_url, bootstrap, clock=clock, timer_settle_ms=200)
    marks = f"{schema(prefix)}.read_marks"
    await service.start()
    try:
        await warm_up(cfg, prefix, database_url, clock.now())
        mine = await eventually(
            lambda: fetch(database_url, f"SELECT topic, partition, as_of FROM {marks}"),
            lambda rows: len(rows) == 9,
            what="this instance's marks: three topics of three partitions",
        )
        assert {r["topic"] for r in mine} == {
            prefix + t for t in ("cases", "assignments", "feedback")
        }
        t0 = clock.now()
        await fetch(
            database_url,
            f"INSERT INTO {marks} (topic, partition, as_of) VALUES ($1, 3, $2)",
            prefix + "cases",
            t0,
        )
        await send(
            cfg,
            prefix,
            "assignments",
            [dispatch("held", t0, sign_for=timedelta(seconds=1), handle=HOUR)],
        )
        await asyncio.sleep(3.0)
        assert of_case(await published(cfg, prefix, seconds=0.5), "held") == [], (
            "due 1 s after the other instance's mark: held"
        )
        caught_up = clock.now()
        await fetch(
            database_url,
            f"UPDATE {marks} SET as_of = $1 WHERE partition = 3",
            caught_up,
        )
        await wait_for_events(
            cfg, prefix, _has("held", "case.overdue"), seconds=10, what="the overdue, released"
        )
    finally:
        await service.stop()
