"""Registration decisions: every rejection reason, location, duplicates, idempotency, privacy."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.intake.domain import (
    Accepted,
    Candidate,
    Merged,
    Registered,
    Rejected,
    Repeated,
    Submission,
    assess,
    assess_batch,
    case_id_for,
    duplicate_search,
    locate,
    nearest_master,
    register_batch,
)
from services.intake.domain.registration import (
    duplicate_horizon,
    filing_problems,
    rejection_message,
    reporter_ref,
)
from shared.events import ReportSubmitted
from shared.events.reports import Reporter
from shared.events.types import ReportLocation
from shared.geo import distance_m
from shared.reference import Category, ReferenceData, ReportField, load_reference

NOW = datetime(2026, 11, 17, 9, 0, tzinfo=UTC)
CELL = "32050800100101"
M_PER_DEG_LAT = 111_195.0


@pytest.fixture(scope="module")
def ref() -> ReferenceData:
    return load_reference()


def centre(ref: ReferenceData, code: str = CELL) -> tuple[float, float]:
    cell = ref.cell(code)
    assert cell is not None
    return cell.centre


def make_report(ref: ReferenceData, **overrides: Any) -> ReportSubmitted:
    lat, long = centre(ref)
    doc: dict[str, Any] = {
        "report_id": "R1",
        "channel": "hotline_12345",
        "external_id": "12345-0001",
        "category_code": "C0101",
        "description": "井盖缺失",
        "location": {"lat": lat, "long": long},
        "attributes": {"cover_damage": "missing"},
        "media_urls": ["https://media.example.org/1.jpg"],
        "reported_at": NOW - timedelta(minutes=3),
    }
    doc.update(overrides)
    return ReportSubmitted.model_validate(doc)


def sub(report: ReportSubmitted, at: datetime = NOW) -> Submission:
    return Submission(report=report, submitted_at=at)


def reasons_of(ref: ReferenceData, **overrides: Any) -> set[tuple[str, str | None]]:
    outcome = assess(sub(make_report(ref, **overrides)), ref)
    assert isinstance(outcome, list), "expected a rejection"
    return {(r.code, r.field) for r in outcome}


# -- every rejection reason ---------------------------------------------------------


def test_a_complete_report_is_accepted_at_its_cell(ref):
    outcome = assess(sub(make_report(ref)), ref)
    assert isinstance(outcome, Accepted)
    assert outcome.category.code == "C0101"
    assert outcome.site.cell.code == CELL and outcome.site.precise


def test_unknown_channel(ref):
    assert reasons_of(ref, channel="carrier_pigeon") == {("unknown_channel", "channel")}


def test_unknown_category(ref):
    assert reasons_of(ref, category_code="X9999") == {("unknown_category", "category_code")}


def test_missing_photo(ref):
    assert reasons_of(ref, media_urls=[]) == {("missing_field", "media_urls")}


def test_missing_description(ref):
    # E0108 requires a description and no photo.
    assert reasons_of(ref, category_code="E0108", description="  ", attributes={}) == {
        ("missing_field", "description")
    }


def _requiring(ref: ReferenceData, *fields: ReportField) -> Category:
    base = ref.category("E0104")
    assert base is not None
    filing = base.filing.model_copy(update={"required_fields": (ReportField.LOCATION, *fields)})
    return base.model_copy(update={"filing": filing})


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        (ReportField.ADDRESS, "location.address"),
        (ReportField.ASSET_ID, "component_id"),
        (ReportField.CONTACT, "reporter.phone"),
    ],
)
def test_missing_address_asset_and_contact_when_a_category_requires_them(ref, field, expected):
    category = _requiring(ref, field)
    report = make_report(ref, category_code="E0104", attributes={})
    problems = filing_problems(report, category, ref, NOW)
    assert [(p.code, p.field) for p in problems] == [("missing_field", expected)]
    complete = make_report(
        ref,
        category_code="E0104",
        attributes={},
        location={**report.location.model_dump(), "address": "人民路 1 号"},
        component_id="3205080101000001",
        reporter={"phone": "13800000000"},
    )
    assert filing_problems(complete, category, ref, NOW) == []


def test_component_id_of_another_category_or_district_is_invalid(ref):
    assert reasons_of(ref, component_id="3205080202000001") == {("invalid_field", "component_id")}
    assert reasons_of(ref, component_id="3101010101000001") == {("invalid_field", "component_id")}
    assert isinstance(assess(sub(make_report(ref, component_id="3205080101000001")), ref), Accepted)


def test_reported_after_it_was_submitted_is_invalid(ref):
    late = NOW + timedelta(hours=1)
    assert reasons_of(ref, reported_at=late) == {("invalid_field", "reported_at")}
    ancient = datetime(1, 1, 1, tzinfo=UTC)
    assert reasons_of(ref, reported_at=ancient) == {("invalid_field", "reported_at")}
    skew = NOW + timedelta(minutes=4)
    assert isinstance(assess(sub(make_report(ref, reported_at=skew)), ref), Accepted)


def test_text_that_cannot_be_stored_is_invalid(ref):
    assert reasons_of(ref, description="bad\x00byte") == {("invalid_field", "description")}
    assert reasons_of(ref, attributes={"cover_damage": "missing", "note": "\ud800"}) == {
        ("invalid_attribute", "attributes.note")
    }
    assert reasons_of(ref, attributes={"cover_damage": "missing", "depth": float("nan")}) == {
        ("invalid_attribute", "attributes.depth")
    }


def test_missing_attribute(ref):
    assert reasons_of(ref, attributes={}) == {("missing_attribute", "attributes.cover_damage")}
    assert reasons_of(ref, attributes={"cover_damage": " "}) == {
        ("missing_attribute", "attributes.cover_damage")
    }


@pytest.mark.parametrize(
    ("category", "attributes"),
    [
        ("C0101", {"cover_damage": "gone_fishing"}),  # not a listed value
        ("C0101", {"cover_damage": ["missing", "broken"]}),  # a single-value list
        ("C0101", {"cover_damage": 3}),
        ("E0505", {"water_depth_cm": "deep"}),  # a number
        ("E0505", {"water_depth_cm": True}),
        ("E0301", {"observed_at": "yesterday evening"}),  # a date-time
        ("C0114", {"lamp_problem": "out", "pole_number": ["a"]}),  # a string
    ],
)
def test_invalid_attribute(ref, category, attributes):
    description = "工地夜间施工噪音" if category == "E0301" else "x"
    found = reasons_of(ref, category_code=category, attributes=attributes, description=description)
    assert {code for code, _ in found} == {"invalid_attribute"}


def test_valid_attribute_answers(ref):
    for category, attributes in [
        ("E0505", {"water_depth_cm": "12.5"}),
        ("E0505", {"water_depth_cm": 30}),
        ("E0301", {"observed_at": "2026-11-16T22:30:00+08:00"}),
        ("C0114", {"lamp_problem": ["flickering"]}),
    ]:
        report = make_report(
            ref, category_code=category, attributes=attributes, description="工地噪音"
        )
        assert isinstance(assess(sub(report), ref), Accepted), (category, attributes)


def test_missing_location(ref):
    assert reasons_of(ref, location={}) == {("missing_location", "location")}


def test_outside_city(ref):
    assert reasons_of(ref, location={"lat": 39.9, "long": 116.4}) == {("outside_city", "location")}


def test_unknown_grid_code(ref):
    assert reasons_of(ref, location={"grid_code": "32050899999999"}) == {
        ("unknown_grid_code", "location.grid_code")
    }


def test_an_address_alone_cannot_be_placed(ref):
    assert reasons_of(ref, location={"address": "人民路 1208 号"}) == {
        ("unknown_address", "location.address")
    }


def test_every_reason_is_given_at_once_and_read_as_one_sentence(ref):
    outcome = assess(
        sub(make_report(ref, media_urls=[], attributes={}, location={"lat": 0.0, "long": 0.0})),
        ref,
    )
    assert isinstance(outcome, list)
    assert {r.code for r in outcome} == {"outside_city", "missing_field", "missing_attribute"}
    message = rejection_message(outcome)
    assert message.startswith("Report not filed: ") and message.endswith(".")
    assert all(r.message in message for r in outcome)
    assert len(rejection_message(outcome * 50)) <= 500


# -- location -----------------------------------------------------------------------


def test_lat_long_win_over_a_grid_code_and_a_grid_code_alone_gives_the_cell_centre(ref):
    lat, long = centre(ref, "32050800200101")
    both = locate(ReportLocation(lat=lat, long=long, grid_code=CELL), ref)
    assert not isinstance(both, list) and both.cell.code == "32050800200101" and both.precise
    coded = locate(ReportLocation(grid_code=CELL), ref)
    assert not isinstance(coded, list)
    assert coded.cell.code == CELL and not coded.precise
    assert (coded.lat, coded.long) == centre(ref)


def test_a_point_and_an_unknown_grid_code_is_still_rejected(ref):
    lat, long = centre(ref)
    outcome = locate(ReportLocation(lat=lat, long=long, grid_code="32050899999999"), ref)
    assert isinstance(outcome, list) and [r.code for r in outcome] == ["unknown_grid_code"]


# -- duplicates ---------------------------------------------------------------------


def _candidate(ref, case_id: str, metres_north: float, **kw: Any) -> Candidate:
    lat, long = centre(ref)
    return Candidate(
        case_id=case_id,
        category_code=kw.pop("category_code", "E0104"),
        lat=lat + metres_north / M_PER_DEG_LAT,
        long=long,
        registered_at=kw.pop("registered_at", NOW - timedelta(hours=1)),
        **kw,
    )


def _accepted(ref, code: str = "E0104") -> Accepted:
    outcome = assess(sub(make_report(ref, category_code=code, attributes={})), ref)
    assert isinstance(outcome, Accepted)
    return outcome


def test_nearest_master_within_radius_wins(ref):
    accepted = _accepted(ref)  # E0104: radius 100 m, window 1 day
    far, near = _candidate(ref, "A", 90), _candidate(ref, "B", 40)
    match = nearest_master(accepted.category, accepted.site, NOW, [far, near])
    assert match is not None and match.master.case_id == "B"
    assert match.distance_m == pytest.approx(40, abs=0.5)
    outside = _candidate(ref, "C", 101)
    assert nearest_master(accepted.category, accepted.site, NOW, [outside]) is None


def test_other_categories_and_cases_closed_before_the_window_are_no_masters(ref):
    accepted = _accepted(ref)
    other = _candidate(ref, "A", 5, category_code="E0105")
    old = _candidate(ref, "B", 5, closed_at=NOW - timedelta(days=2))
    recent = _candidate(ref, "C", 50, closed_at=NOW - timedelta(hours=20))
    match = nearest_master(accepted.category, accepted.site, NOW, [other, old, recent])
    assert match is not None and match.master.case_id == "C"


def test_equal_distance_goes_to_the_earlier_case(ref):
    accepted = _accepted(ref)
    later = _candidate(ref, "A", 10, registered_at=NOW - timedelta(minutes=5))
    earlier = _candidate(ref, "B", -10, registered_at=NOW - timedelta(hours=5))
    match = nearest_master(accepted.category, accepted.site, NOW, [later, earlier])
    assert match is not None and match.master.case_id == "B"


def test_radius_zero_turns_duplicates_off(ref):
    accepted = _accepted(ref, "E0204")  # radius 0
    assert accepted.category.duplicates.radius_m == 0
    assert nearest_master(accepted.category, accepted.site, NOW, [_candidate(ref, "A", 0)]) is None
    assert duplicate_search(accepted, NOW) is None


def test_duplicate_search_box_encloses_the_radius(ref):
    accepted = _accepted(ref)
    search = duplicate_search(accepted, NOW)
    assert search is not None
    assert search.category_code == "E0104"
    assert search.closed_after == NOW - timedelta(days=1)
    lat, long = accepted.site.lat, accepted.site.long
    assert distance_m(lat, long, search.max_lat, long) == pytest.approx(100, rel=0.01)
    assert distance_m(lat, long, lat, search.max_long) == pytest.approx(100, rel=0.01)


# -- batches --------------------------------------------------------------------------


def _batch(ref, reports, known=None, candidates=None):
    subs = [sub(r) for r in reports]
    known = known or {}
    return register_batch(subs, assess_batch(subs, ref), known, candidates or {}, ref)


def test_two_reports_of_one_place_in_one_batch_give_a_case_and_a_duplicate(ref):
    first = make_report(ref, external_id="a", report_id="R1")
    second = make_report(ref, external_id="b", report_id="R2")
    verdicts = _batch(ref, [first, second])
    assert [type(v) for v in verdicts] == [Registered, Merged]
    assert isinstance(verdicts[0], Registered) and isinstance(verdicts[1], Merged)
    assert verdicts[1].event.master_case_id == verdicts[0].event.case_id
    assert verdicts[1].event.distance_m == 0


def test_the_same_report_twice_in_a_batch_or_after_gives_one_case(ref):
    report = make_report(ref)
    retry = report.model_copy(update={"report_id": "R1-again"})
    verdicts = _batch(ref, [report, retry])
    assert isinstance(verdicts[0], Registered) and isinstance(verdicts[1], Repeated)
    assert verdicts[1].case_id == verdicts[0].event.case_id
    later = _batch(ref, [retry], known={("hotline_12345", "12345-0001"): "CASE-1"})
    assert isinstance(later[0], Repeated) and later[0].case_id == "CASE-1"


def test_a_rejected_report_can_be_sent_again_fixed(ref):
    broken = make_report(ref, media_urls=[])
    fixed = make_report(ref)
    verdicts = _batch(ref, [broken, fixed])
    assert [type(v) for v in verdicts] == [Rejected, Registered]


def test_stored_candidates_make_a_duplicate(ref):
    report = make_report(ref, category_code="E0104", attributes={})
    verdicts = _batch(ref, [report], candidates={0: [_candidate(ref, "MASTER", 20)]})
    assert isinstance(verdicts[0], Merged) and verdicts[0].event.master_case_id == "MASTER"
    assert verdicts[0].event.area == "street-pingjiang"


def test_a_registered_case_carries_place_category_and_no_contact(ref):
    report = make_report(
        ref,
        reporter={"name": "王女士", "phone": "138 0000 0000"},
        inspector_id="insp-7",
        location={**make_report(ref).location.model_dump(), "address": "人民路口"},
    )
    submission = Submission(report, NOW, reporter_ref(b"secret", report.reporter))
    [verdict] = register_batch([submission], assess_batch([submission], ref), {}, {}, ref)
    assert isinstance(verdict, Registered)
    case = verdict.event
    cell = ref.cell(CELL)
    assert cell is not None
    assert (case.grid_code, case.community, case.street, case.district, case.area) == (
        CELL,
        cell.community,
        cell.street,
        cell.district,
        "street-pingjiang",  # the street office of the cell's street: the 块 that answers for it
    )
    assert (case.kind, case.major, case.minor) == ("component", "01", "01")
    assert (case.urgency, case.tier, case.area_class) == ("urgent", "ordinary", cell.area_class)
    assert case.registered_at == NOW and case.reported_at == report.reported_at
    assert case.address == "人民路口" and case.inspector_id == "insp-7"
    assert case.callback_possible and case.reporter_ref == submission.reporter_ref
    dumped = case.model_dump_json()
    assert "王女士" not in dumped and "0000" not in dumped


def test_case_ids_are_stable_sortable_and_distinct(ref):
    a = case_id_for("hotline_12345", "x", NOW)
    assert a == case_id_for("hotline_12345", "x", NOW)
    assert a != case_id_for("hotline_12345", "y", NOW)
    assert a != case_id_for("inspector", "x", NOW)
    assert a < case_id_for("hotline_12345", "x", NOW + timedelta(seconds=1))
    assert len(a) == 26


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _ulid_by_hand(millis: int, rest: int) -> str:
    """ULID layout spelled out: 10 characters of 48-bit time, 16 of 80 bits, 5 bits each."""
    chars = [_CROCKFORD[(millis >> s) & 31] for s in range(45, -1, -5)]
    return "".join(chars + [_CROCKFORD[(rest >> s) & 31] for s in range(75, -1, -5)])


@settings(max_examples=300, deadline=None)
@given(
    st.text(min_size=1, max_size=20),
    st.text(min_size=1, max_size=40),
    st.datetimes(
        min_value=datetime(1970, 1, 2), max_value=datetime(9999, 1, 1), timezones=st.just(UTC)
    ),
)
def test_case_ids_are_the_ulid_of_report_time_and_hash(channel, external_id, reported_at):
    millis = int(reported_at.timestamp() * 1000) & ((1 << 48) - 1)
    digest = hashlib.sha256(f"{channel}\x1f{external_id}".encode())
    rest = int.from_bytes(digest.digest()[:10], "big")
    assert case_id_for(channel, external_id, reported_at) == _ulid_by_hand(millis, rest)


def test_reporter_ref_is_a_keyed_pseudonym(ref):
    one = reporter_ref(b"k1", Reporter(phone="138-0000-0000"))
    assert one == reporter_ref(b"k1", Reporter(name="anyone", phone="13800000000"))
    assert one != reporter_ref(b"k2", Reporter(phone="13800000000"))
    assert one is not None and one.startswith("rr_") and "13800000000" not in one
    assert reporter_ref(b"k1", Reporter(name="王女士")) != reporter_ref(b"k1", Reporter(name="李"))
    assert reporter_ref(b"k1", None) is None
    assert reporter_ref(b"k1", Reporter()) is None


def test_the_duplicate_horizon_is_the_longest_window(ref):
    longest = max(c.duplicates.window_days for c in ref.categories)
    assert duplicate_horizon(ref) == timedelta(days=longest) == timedelta(days=30)
