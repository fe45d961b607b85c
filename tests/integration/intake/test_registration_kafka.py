"""Reports on the ``reports`` topic become registered cases, merged duplicates or rejections."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.events import CaseClosed, CaseMerged, CaseRegistered, ReportRejected
from shared.events.envelope import make_event
from shared.geo import distance_m
from shared.topics import DLQ_HEADER_EXCEPTION, DLQ_HEADER_TOPIC
from tests.integration.helpers import eventually, produce, read_topic
from tests.integration.intake.conftest import about, cell, report, submitted

# Metres per degree of latitude: enough to place test points a few metres apart.
_M_PER_DEG_LAT = 111_195.0


def _north(lat: float, metres: float) -> float:
    return lat + metres / _M_PER_DEG_LAT


async def _verdicts(stack, external_id: str, at_least: int = 1):
    return await eventually(
        lambda: stack.events("cases"),
        lambda events: len(about(events, external_id=external_id)) >= at_least,
        seconds=30,
        what=f"a verdict on {external_id}",
    )


async def test_report_on_the_topic_registers_a_case_with_its_grid_and_area(stack, ref):
    where = cell(ref, "32050800100101")
    lat, long = where.centre
    data = report(
        category_code="E0104",
        lat=lat,
        long=long,
        reporter={"name": "王女士", "phone": "13800000000"},
    )
    await produce(stack.kafka, stack.topic("reports"), [submitted(data)])

    events = about(await _verdicts(stack, data.external_id), external_id=data.external_id)
    assert len(events) == 1
    [registered] = events
    case = registered.data
    assert isinstance(case, CaseRegistered)
    assert case.grid_code == "32050800100101"
    assert (case.community, case.street, case.district) == (
        "320508001001",
        "320508001",
        "320508",
    )
    assert case.area == "street-pingjiang"
    assert case.area_class == where.area_class.value
    assert (case.lat, case.long) == (lat, long)
    assert case.channel == "hotline_12345" and case.report_id == data.report_id
    assert (case.urgency, case.tier, case.kind) == ("ordinary", "ordinary", "event")
    assert case.reporter_ref and case.reporter_ref.startswith("rr_") and case.callback_possible
    assert registered.source == "intake" and registered.subject == case.case_id

    records = await read_topic(stack.kafka, stack.topic("cases"), seconds=2)
    raw = next(r for r in records if dict(r.headers)["ce_id"].decode() == registered.id)
    assert dict(raw.headers)["area"] == b"street-pingjiang"
    assert b"13800000000" not in raw.value and "王女士".encode() not in raw.value
    contacts = await stack.fetch(
        "SELECT name, phone, reporter_ref FROM case_contacts WHERE case_id = $1", case.case_id
    )
    assert [tuple(r) for r in contacts] == [("王女士", "13800000000", case.reporter_ref)]


async def test_the_same_report_twice_gives_one_case(stack, ref):
    lat, long = cell(ref, "32050800100201").centre
    first = report(category_code="E0105", lat=lat, long=long)
    # A redelivery by the hotline system: same channel and external id, new event and report id.
    again = first.model_copy(update={"report_id": first.report_id + "b"})
    envelopes = [submitted(first), submitted(again)]
    await produce(stack.kafka, stack.topic("reports"), envelopes[:1])
    await _verdicts(stack, first.external_id)
    await produce(stack.kafka, stack.topic("reports"), envelopes[1:])
    await eventually(
        lambda: stack.fetch("SELECT 1 FROM inbox WHERE event_id = $1", envelopes[1].id),
        lambda rows: len(rows) == 1,
        what="the repeated report consumed",
    )
    events = about(await stack.events("cases"), external_id=first.external_id)
    assert [e.type for e in events] == ["case.registered"]
    rows = await stack.fetch(
        "SELECT case_id FROM cases WHERE channel = $1 AND external_id = $2",
        "hotline_12345",
        first.external_id,
    )
    assert [r["case_id"] for r in rows] == [events[0].data.case_id]


async def test_near_duplicate_is_merged_and_one_just_outside_is_a_new_case(stack, ref):
    # E0106: radius 50 m. A master, one 30 m away (merged), one 60 m away (new case).
    lat, long = cell(ref, "32050800100301").centre
    master = report(category_code="E0106", lat=lat, long=long)
    await produce(stack.kafka, stack.topic("reports"), [submitted(master)])
    [registered] = about(await _verdicts(stack, master.external_id), external_id=master.external_id)

    near = report(category_code="E0106", lat=_north(lat, 30), long=long)
    far = report(category_code="E0106", lat=_north(lat, 60), long=long)
    assert 29 < distance_m(lat, long, near.location.lat, long) < 31
    assert 59 < distance_m(lat, long, far.location.lat, long) < 61
    await produce(stack.kafka, stack.topic("reports"), [submitted(near), submitted(far)])
    await _verdicts(stack, far.external_id)
    events = await _verdicts(stack, near.external_id)

    [merged] = about(events, external_id=near.external_id)
    assert isinstance(merged.data, CaseMerged)
    assert merged.data.master_case_id == registered.data.case_id
    assert 29 < merged.data.distance_m < 31
    [outside] = about(events, external_id=far.external_id)
    assert isinstance(outside.data, CaseRegistered)
    # The same category elsewhere is no duplicate, nor is another category at the same place.
    other = report(category_code="E0102", lat=lat, long=long, attributes={"volume": "small"})
    await produce(stack.kafka, stack.topic("reports"), [submitted(other)])
    [elsewhere] = about(await _verdicts(stack, other.external_id), external_id=other.external_id)
    assert elsewhere.type == "case.registered"


async def test_two_reports_of_one_place_in_one_batch_give_a_case_and_a_duplicate(stack, ref):
    lat, long = cell(ref, "32050800100401").centre
    pair = [report(category_code="E0401", lat=lat, long=long) for _ in range(2)]
    await produce(stack.kafka, stack.topic("reports"), [submitted(r) for r in pair])
    events = await _verdicts(stack, pair[1].external_id)
    await _verdicts(stack, pair[0].external_id)
    events = await stack.events("cases")
    kinds = sorted(about(events, external_id=r.external_id)[0].type for r in pair)
    assert kinds == ["case.merged", "case.registered"]


async def test_garbage_goes_to_the_dlq_and_the_next_report_is_still_registered(stack, ref):
    lat, long = cell(ref, "32050800300101").centre
    after = report(category_code="E0201", lat=lat, long=long)
    await produce(stack.kafka, stack.topic("reports"), [b"\xff\xfe not json {"], key="k1")
    await produce(stack.kafka, stack.topic("reports"), [submitted(after)], key="k1")
    [registered] = about(await _verdicts(stack, after.external_id), external_id=after.external_id)
    assert registered.type == "case.registered"
    dead = await eventually(
        lambda: read_topic(stack.kafka, stack.topic("reports.dlq"), seconds=1),
        lambda records: any(r.value == b"\xff\xfe not json {" for r in records),
        what="the garbage in reports.dlq",
    )
    record = next(r for r in dead if r.value == b"\xff\xfe not json {")
    headers = dict(record.headers)
    assert headers[DLQ_HEADER_EXCEPTION] == b"PoisonMessage"
    assert headers[DLQ_HEADER_TOPIC] == stack.topic("reports").encode()


async def test_a_report_that_cannot_be_filed_is_rejected_with_every_reason(stack, ref):
    bad = report(
        category_code="C0101",  # needs a photo and the cover_damage attribute
        lat=31.9,
        long=121.4,  # far outside the district
        media_urls=[],
    )
    unknown = report(category_code="Z9999", grid_code="32050899999999")
    await produce(stack.kafka, stack.topic("reports"), [submitted(bad), submitted(unknown)])
    [rejected] = about(await _verdicts(stack, bad.external_id), external_id=bad.external_id)
    assert isinstance(rejected.data, ReportRejected)
    assert rejected.subject == bad.report_id
    reasons = {(r.code, r.field) for r in rejected.data.reasons}
    assert reasons == {
        ("outside_city", "location"),
        ("missing_field", "media_urls"),
        ("missing_attribute", "attributes.cover_damage"),
    }
    assert rejected.data.message.startswith("Report not filed:")
    [other] = about(await _verdicts(stack, unknown.external_id), external_id=unknown.external_id)
    assert {r.code for r in other.data.reasons} == {"unknown_category", "unknown_grid_code"}
    assert await stack.fetch("SELECT 1 FROM cases WHERE external_id = $1", bad.external_id) == []


async def test_a_grid_code_alone_locates_a_report(stack, ref):
    data = report(category_code="E0203", grid_code="32050800200101")
    await produce(stack.kafka, stack.topic("reports"), [submitted(data)])
    [registered] = about(await _verdicts(stack, data.external_id), external_id=data.external_id)
    case = registered.data
    assert isinstance(case, CaseRegistered)
    assert (case.grid_code, case.area, case.lat, case.long) == (
        "32050800200101",
        "street-canglang",
        None,
        None,
    )


async def test_a_duplicate_of_a_recently_closed_case_is_merged_but_not_of_an_old_one(stack, ref):
    # E0403: radius 30 m, window 3 days. Close one master 1 day ago and one 5 days ago.
    now = datetime.now(UTC)
    masters = {}
    for code, days in (("32050800300201", 1), ("32050800400101", 5)):
        lat, long = cell(ref, code).centre
        reported_at = now - timedelta(days=days + 1)
        data = report(category_code="E0403", lat=lat, long=long, reported_at=reported_at)
        await produce(stack.kafka, stack.topic("reports"), [submitted(data, reported_at)])
        [reg] = about(await _verdicts(stack, data.external_id), external_id=data.external_id)
        closed_at = now - timedelta(days=days)
        closed = CaseClosed.model_validate(
            {
                "case_id": reg.data.case_id,
                "department": "sanitation",
                "area": reg.data.area,
                "on_time": True,
                "handled_at": closed_at - timedelta(hours=1),
                "verified_at": closed_at,
                "handle_deadline": closed_at,
                "durations": {
                    "to_dispatch": "PT1M",
                    "to_handle": "PT1H",
                    "to_verify": "PT1H",
                    "total": "PT3H",
                },
                "rework_count": 0,
                "dispatch_number": 1,
                "category_code": "E0403",
                "grid_code": code,
            }
        )
        await produce(
            stack.kafka,
            stack.topic("supervision"),
            [make_event(closed, source="supervision", time=closed_at)],
        )
        masters[code] = reg.data.case_id
    for case_id in masters.values():
        await eventually(
            lambda cid=case_id: stack.fetch(
                "SELECT status FROM case_progress WHERE case_id = $1", cid
            ),
            lambda rows: [r["status"] for r in rows] == ["closed"],
            what="the master closed in the read model",
        )
    recent = report(
        category_code="E0403",
        lat=cell(ref, "32050800300201").centre[0],
        long=cell(ref, "32050800300201").centre[1],
    )
    old = report(
        category_code="E0403",
        lat=cell(ref, "32050800400101").centre[0],
        long=cell(ref, "32050800400101").centre[1],
    )
    await produce(stack.kafka, stack.topic("reports"), [submitted(recent), submitted(old)])
    await _verdicts(stack, old.external_id)
    events = await _verdicts(stack, recent.external_id)
    [merged] = about(events, external_id=recent.external_id)
    assert merged.type == "case.merged"
    assert merged.data.master_case_id == masters["32050800300201"]
    [fresh] = about(events, external_id=old.external_id)
    assert fresh.type == "case.registered"


async def test_masters_past_every_window_are_pruned_from_the_duplicate_search(stack, ref):
    lat, long = cell(ref, "32050800300301").centre
    now = datetime.now(UTC)
    reported_at = now - timedelta(days=45)
    data = report(category_code="E0404", lat=lat, long=long, reported_at=reported_at)
    await produce(stack.kafka, stack.topic("reports"), [submitted(data, reported_at)])
    [reg] = about(await _verdicts(stack, data.external_id), external_id=data.external_id)
    case_id = reg.data.case_id
    masters = "SELECT closed_at FROM duplicate_masters WHERE case_id = $1"
    assert [r["closed_at"] for r in await stack.fetch(masters, case_id)] == [None]

    closed_at = now - timedelta(days=40)  # the longest window in the catalogue is 30 days
    closed = CaseClosed.model_validate(
        {
            "case_id": case_id,
            "department": "urban-enforcement",
            "area": reg.data.area,
            "on_time": False,
            "handled_at": closed_at - timedelta(hours=1),
            "verified_at": closed_at,
            "handle_deadline": closed_at - timedelta(hours=2),
            "durations": {
                "to_dispatch": "PT1M",
                "to_handle": "PT1H",
                "to_verify": "PT1H",
                "total": "PT3H",
            },
            "rework_count": 0,
            "dispatch_number": 1,
            "category_code": "E0404",
            "grid_code": reg.data.grid_code,
        }
    )
    await produce(
        stack.kafka,
        stack.topic("supervision"),
        [make_event(closed, source="supervision", time=closed_at)],
    )
    await eventually(
        lambda: stack.fetch(masters, case_id),
        lambda rows: [r["closed_at"] for r in rows] == [closed_at],
        what="the master's closing copied to the duplicate search",
    )
    assert await stack.runtime.intake.prune_masters() >= 1
    assert await stack.fetch(masters, case_id) == []
    # The case itself and its read model stay.
    view = (await stack.http.get(f"/v1/cases/{case_id}")).json()
    assert view["status"] == "closed"
