"""The case read model and HTTP feedback decisions: order-tolerant folds, checked feedback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.intake.domain import (
    FeedbackRefused,
    FeedbackRequest,
    Progress,
    TimelineEntry,
    feedback_event,
    fold,
)
from shared.events import CaseAccepted, CaseRated, CaseReturned
from shared.events.examples import example_data
from shared.reference import ReferenceData, load_reference

T0 = datetime(2026, 11, 17, 9, 0, tzinfo=UTC)
CASE = "01M7KGZ4R0AAAAAAAAAAAAAAC1"


@pytest.fixture(scope="module")
def ref() -> ReferenceData:
    return load_reference()


def entry(event_type: str, minutes: float, **overrides: Any) -> TimelineEntry:
    data = example_data(event_type, **{"case_id": CASE, **overrides})
    return TimelineEntry(
        event_id=f"{event_type}-{minutes}",
        occurred_at=T0 + timedelta(minutes=minutes),
        source="test",
        data=data,
    )


def dispatched(minutes: float, number: int = 1, department: str = "sanitation", **kw: Any):
    kind = "case.dispatched" if number == 1 else "case.redispatched"
    deadlines = {
        "sign_for": (T0 + timedelta(minutes=minutes + 60)).isoformat(),
        "handle": (T0 + timedelta(minutes=minutes + 240 * number)).isoformat(),
        "verify_limit": "PT30M",
        "clock": "working",
    }
    return entry(
        kind,
        minutes,
        dispatch_number=number,
        department=department,
        deadlines=deadlines,
        dispatched_at=(T0 + timedelta(minutes=minutes)).isoformat(),
        **kw,
    )


LIFE = [
    entry("case.registered", 0),
    dispatched(2),
    entry("case.accepted", 20),
    entry("case.warned", 50),
    entry("case.handled", 200),
    entry("case.verified", 222),
    entry("case.closed", 223),
    entry("case.rated", 1560),
]


def test_a_whole_life_folds_to_closed_with_department_deadlines_and_rating():
    state = fold(LIFE)
    assert state.status == "closed" and not state.is_open
    assert state.department == "sanitation" and state.dispatch_number == 1
    assert state.deadlines is not None
    assert state.deadlines.handle == T0 + timedelta(minutes=242)
    assert state.warned and not state.overdue
    assert state.closed_at == T0 + timedelta(minutes=223) and state.on_time is True
    assert state.rating == "basically_satisfied"
    assert state.updated_at == T0 + timedelta(minutes=1560)


@settings(max_examples=60, deadline=None)
@given(st.permutations(LIFE))
def test_arrival_order_does_not_change_the_state(order):
    assert fold(order) == fold(LIFE)


def test_a_registration_stamped_late_never_sets_the_status_back():
    late = entry("case.registered", 500)
    assert fold([*LIFE[1:], late]).status == "closed"


def test_a_merged_duplicate_stays_closed():
    state = fold([entry("case.merged", 0), entry("case.accepted", 5)])
    assert state.status == "merged" and not state.is_open
    assert state.master_case_id == "01M7KGZ4R0AAAAAAAAAAAAAAC1"
    assert state.note == "Duplicate request."


def test_a_redispatch_replaces_department_and_deadlines_and_resets_the_lights():
    state = fold(
        [
            entry("case.registered", 0),
            dispatched(2),
            entry("case.overdue", 70, dispatch_number=1),
            entry("case.notice_issued", 130, dispatch_number=1, level=2),
            dispatched(140, number=2, department="parks", reason="return"),
            # A timer of the replaced dispatch, arriving late, is ignored.
            entry("case.warned", 150, dispatch_number=1),
        ]
    )
    assert state.department == "parks" and state.dispatch_number == 2
    assert not state.overdue and not state.warned and state.notice_level == 0
    assert state.status == "dispatched"
    older_late = fold([*[entry("case.registered", 0)], dispatched(140, 2), dispatched(2)])
    assert older_late.dispatch_number == 2


def test_rework_reopens_a_closed_case_and_counts():
    state = fold(
        [
            *LIFE[:7],
            entry("case.verification_failed", 300, lookback=True),
            entry("case.rework_ordered", 301, rework_count=1),
        ]
    )
    assert state.status == "rework_ordered" and state.is_open
    assert state.rework_count == 1 and state.closed_at is None


def test_parking_and_unparking_return_to_the_previous_status():
    state = fold([entry("case.registered", 0), dispatched(2), entry("case.accepted", 10)])
    parked = fold(
        [
            entry("case.registered", 0),
            dispatched(2),
            entry("case.accepted", 10),
            entry("case.parked", 20),
        ]
    )
    assert parked.status == "parked"
    back = fold(
        [
            entry("case.registered", 0),
            dispatched(2),
            entry("case.accepted", 10),
            entry("case.parked", 20),
            entry("case.unparked", 30),
        ]
    )
    assert back.status == state.status == "accepted"


def test_returns_and_escalation():
    state = fold(
        [
            entry("case.registered", 0),
            dispatched(2),
            entry("case.returned", 15),
            entry("case.escalated", 16),
        ]
    )
    assert state.status == "escalated" and state.returns == 2  # the escalation's count


# -- feedback over HTTP ---------------------------------------------------------------


def request(kind: str, **kw: Any) -> FeedbackRequest:
    return FeedbackRequest(kind=kind, actor_id="ws-0112", **kw)  # type: ignore[arg-type]


DISPATCHED = Progress(status="dispatched", department="sanitation", area="street-pingjiang")


def test_accepted_goes_to_the_department_holding_the_case(ref):
    event = feedback_event(CASE, request("accepted", note="on our way"), DISPATCHED, ref)
    assert isinstance(event, CaseAccepted)
    assert (event.department, event.area, event.actor_role) == (
        "sanitation",
        "street-pingjiang",
        "department",
    )


def test_returned_needs_a_reason_and_rating_needs_a_rating(ref):
    refused = feedback_event(CASE, request("returned"), DISPATCHED, ref)
    assert isinstance(refused, FeedbackRefused) and refused.field == "reason"
    event = feedback_event(
        CASE,
        request("returned", reason="not ours", suggested_department="parks"),
        DISPATCHED,
        ref,
    )
    assert isinstance(event, CaseReturned) and event.suggested_department == "parks"
    refused = feedback_event(CASE, request("rated"), DISPATCHED, ref)
    assert isinstance(refused, FeedbackRefused) and refused.field == "rating"
    rated = feedback_event(CASE, request("rated", rating="satisfied"), DISPATCHED, ref)
    assert isinstance(rated, CaseRated) and rated.actor_role == "callback_centre"


def test_fields_of_another_kind_are_named(ref):
    refused = feedback_event(CASE, request("accepted", rating="satisfied"), DISPATCHED, ref)
    assert isinstance(refused, FeedbackRefused) and refused.kind == "invalid"
    assert refused.field == "rating"


def test_unknown_departments_are_invalid(ref):
    refused = feedback_event(CASE, request("accepted", department="nobody"), DISPATCHED, ref)
    assert isinstance(refused, FeedbackRefused) and refused.field == "department"
    refused = feedback_event(
        CASE, request("returned", reason="x", suggested_department="nobody"), DISPATCHED, ref
    )
    assert isinstance(refused, FeedbackRefused) and refused.field == "suggested_department"


def test_conflicts_with_the_case_state(ref):
    registered = Progress(area="street-pingjiang")
    refused = feedback_event(CASE, request("accepted"), registered, ref)
    assert isinstance(refused, FeedbackRefused) and refused.kind == "conflict"
    named = feedback_event(CASE, request("accepted", department="sanitation"), registered, ref)
    assert isinstance(named, CaseAccepted)

    merged = Progress(status="merged", master_case_id="M1")
    refused = feedback_event(CASE, request("accepted", department="sanitation"), merged, ref)
    assert isinstance(refused, FeedbackRefused) and "M1" in refused.message

    closed = DISPATCHED.model_copy(update={"status": "closed"})
    for kind in ("accepted", "handled"):
        refused = feedback_event(CASE, request(kind), closed, ref)
        assert isinstance(refused, FeedbackRefused) and refused.kind == "conflict"
    refused = feedback_event(CASE, request("verified"), closed, ref)
    assert isinstance(refused, FeedbackRefused) and refused.field == "lookback"
    lookback = feedback_event(CASE, request("verified", lookback=True), closed, ref)
    assert not isinstance(lookback, FeedbackRefused)
    rated = feedback_event(CASE, request("rated", rating="dissatisfied"), closed, ref)
    assert isinstance(rated, CaseRated)
