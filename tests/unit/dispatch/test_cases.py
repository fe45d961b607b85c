"""A case's life in dispatch's hands: returns walk the candidates, then a human decides;
rework and extensions redispatch; copies of the same fact count once."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from services.dispatch.domain.cases import (
    CaseState,
    ManualDispatchRefused,
    Outcome,
    Rulebook,
    answer_extension_request,
    apply,
    apply_extension_grant,
    apply_return,
    apply_rework,
    assign_manually,
    register,
)
from shared.events import (
    CaseDispatched,
    CaseEscalated,
    CaseExtensionRefused,
    CaseRedispatched,
)
from shared.reference import DispatchRules
from tests.unit.dispatch.cases import (
    SAMPLE,
    at,
    extension_granted,
    extension_requested,
    registered,
    returned,
    rework,
)

BOOK = Rulebook.of(SAMPLE)
T0 = at(3, 10, 10)  # a Tuesday morning without holidays around it


def dispatched(code: str = "C0101", book: Rulebook = BOOK, **where: str) -> CaseState:
    outcome = register(registered(code, **where), T0, book)
    assert outcome.state is not None and outcome.state.status == "dispatched"
    return outcome.state


def only(outcome: Outcome) -> object:
    assert outcome.state is not None, outcome.note
    (event,) = outcome.events
    return event


# -- returns ---------------------------------------------------------------------------


def test_a_return_goes_to_the_next_candidate_with_fresh_deadlines() -> None:
    state = dispatched("E0102", street="320508003")  # street-jinchang, then sanitation
    assert state.department == "street-jinchang"
    outcome = apply_return(
        state, returned("street-jinchang", reason="a sanitation job"), at(3, 10, 11), BOOK
    )
    event = only(outcome)
    assert isinstance(event, CaseRedispatched)
    assert (event.reason, event.department, event.previous_department) == (
        "return",
        "sanitation",
        "street-jinchang",
    )
    assert (event.returns, event.dispatch_number) == (1, 2)
    assert event.dispatched_at == at(3, 10, 11)
    # 4 working hours from 11:00: one before lunch, three after it.
    assert event.deadlines.handle == at(3, 10, 16, 30)
    assert event.area == "street-jinchang"
    assert "next candidate after a return by street-jinchang" in event.rule


def test_returned_twice_is_escalated_with_everyone_tried() -> None:
    state = dispatched("C0101")
    first = apply_return(state, returned("water-affairs"), at(3, 10, 11), BOOK)
    assert first.state is not None
    second = apply_return(
        first.state, returned("street-pingjiang", suggested="gas-company"), at(3, 10, 12), BOOK
    )
    event = only(second)
    assert isinstance(event, CaseEscalated)
    assert event.reason == "returns_exhausted"
    assert event.returns == 2
    assert event.tried_departments == ["water-affairs", "street-pingjiang"]
    assert event.last_department == "street-pingjiang"
    assert "suggests gas-company" in event.detail
    assert second.state is not None
    assert (second.state.status, second.state.department) == ("escalated", None)


def test_no_candidate_left_escalates_before_the_returns_run_out() -> None:
    state = dispatched("E0503")  # gas leak: the gas company alone
    event = only(apply_return(state, returned("gas-company"), at(3, 10, 11), BOOK))
    assert isinstance(event, CaseEscalated)
    assert (event.reason, event.returns) == ("no_candidate", 1)
    assert "no candidate left" in event.detail


def test_the_number_of_returns_is_configurable() -> None:
    book = Rulebook.of(replace(SAMPLE, dispatch=DispatchRules(max_returns=3)))
    state = dispatched("E0101", book=book, street="320508003", area_class="C")
    departments = []
    for department in ("street-jinchang", "urban-enforcement"):
        outcome = apply_return(state, returned(department), at(3, 10, 11), book)
        assert outcome.state is not None
        state = outcome.state
        departments.append(state.department)
    assert departments == ["urban-enforcement", "planning"]
    event = only(apply_return(state, returned("planning"), at(3, 10, 12), book))
    assert isinstance(event, CaseEscalated) and event.reason == "returns_exhausted"


def test_a_return_by_a_department_that_does_not_hold_the_case_is_ignored() -> None:
    state = dispatched("C0101")
    outcome = apply_return(state, returned("sanitation"), at(3, 10, 11), BOOK)
    assert outcome.state is None and outcome.events == ()
    assert "not with sanitation" in outcome.note


def test_a_second_copy_of_a_return_does_not_count_twice() -> None:
    state = dispatched("C0101")
    first = apply_return(state, returned("water-affairs"), at(3, 10, 11), BOOK)
    assert first.state is not None and first.state.returns == 1
    # The same return again (a new event id, the same fact): the case has moved on.
    again = apply_return(first.state, returned("water-affairs"), at(3, 10, 11), BOOK)
    assert again.state is None and again.events == ()


def test_a_copy_of_an_old_return_does_not_undo_a_dispatchers_assignment() -> None:
    state = dispatched("C0101")
    for department, hour in (("water-affairs", 11), ("street-pingjiang", 12)):
        outcome = apply_return(state, returned(department), at(3, 10, hour), BOOK)
        assert outcome.state is not None
        state = outcome.state
    manual = assign_manually(state, "water-affairs", "disp-7", at(3, 10, 14), BOOK)
    assert manual.state is not None
    late_copy = apply_return(manual.state, returned("water-affairs"), at(3, 10, 11), BOOK)
    assert late_copy.state is None
    # A new return after the assignment is a real one: back to the dispatcher.
    real = apply_return(manual.state, returned("water-affairs"), at(3, 10, 15), BOOK)
    event = only(real)
    assert isinstance(event, CaseEscalated) and event.returns == 3


def test_a_return_of_an_escalated_case_is_ignored() -> None:
    state = dispatched("E0503")
    escalated = apply_return(state, returned("gas-company"), at(3, 10, 11), BOOK).state
    assert escalated is not None
    assert apply_return(escalated, returned("gas-company"), at(3, 10, 12), BOOK).state is None


# -- a human dispatcher ------------------------------------------------------------------


def escalated_case() -> CaseState:
    state = dispatched("C0101")
    for department in ("water-affairs", "street-pingjiang"):
        outcome = apply_return(state, returned(department), at(3, 10, 11), BOOK)
        assert outcome.state is not None
        state = outcome.state
    assert state.status == "escalated"
    return state


def test_a_dispatcher_assigns_an_escalated_case() -> None:
    outcome = assign_manually(
        escalated_case(), "gas-company", "disp-7", at(3, 10, 14), BOOK, note="it is a gas cover"
    )
    event = only(outcome)
    assert isinstance(event, CaseRedispatched)
    assert (event.reason, event.department, event.dispatcher_id) == (
        "manual",
        "gas-company",
        "disp-7",
    )
    assert event.previous_department == "street-pingjiang"
    assert (event.rule_id, event.returns, event.dispatch_number) == ("manual", 2, 3)
    assert event.rule.startswith(
        "manual: dispatcher disp-7 assigned gas-company (it is a gas cover)"
    )
    # An urgent cover: 6 natural hours from the dispatcher's decision.
    assert event.deadlines.handle == at(3, 10, 20)
    assert outcome.state is not None and outcome.state.status == "dispatched"


def test_the_first_dispatch_of_a_case_no_rule_could_place_is_a_case_dispatched() -> None:
    state = register(registered("C0504"), T0, BOOK).state
    assert state is not None and state.status == "escalated"
    event = only(assign_manually(state, "planning", "disp-7", at(3, 10, 14), BOOK))
    assert isinstance(event, CaseDispatched)
    assert (event.department, event.rule_id, event.dispatch_number) == ("planning", "manual", 1)


@pytest.mark.parametrize(
    ("department", "co", "code", "field", "conflict"),
    [
        ("no-such-office", None, "unknown_department", "department", False),
        ("planning", ("parks", "nobody"), "unknown_department", "co_departments[1]", False),
    ],
)
def test_a_dispatcher_must_name_known_departments(department, co, code, field, conflict) -> None:
    with pytest.raises(ManualDispatchRefused) as refused:
        assign_manually(escalated_case(), department, "disp-7", T0, BOOK, co_departments=co)
    assert (refused.value.code, refused.value.field, refused.value.conflict) == (
        code,
        field,
        conflict,
    )


def test_a_dispatcher_cannot_assign_a_case_to_the_department_holding_it() -> None:
    with pytest.raises(ManualDispatchRefused) as refused:
        assign_manually(dispatched("C0101"), "water-affairs", "disp-7", T0, BOOK)
    assert (refused.value.code, refused.value.conflict) == ("already_assigned", True)


def test_a_dispatcher_may_redirect_a_dispatched_case_and_set_its_co_assignees() -> None:
    event = only(
        assign_manually(
            dispatched("C0101"), "gas-company", "disp-7", T0, BOOK, co_departments=("telecom",)
        )
    )
    assert isinstance(event, CaseRedispatched)
    assert event.co_departments == ["telecom"]
    assert event.previous_department == "water-affairs"


# -- rework ------------------------------------------------------------------------------


def test_rework_goes_back_to_the_same_department_with_a_fresh_handling_deadline() -> None:
    state = dispatched("E0102", street="320508003")
    outcome = apply_rework(state, rework("street-jinchang", 1), at(3, 11, 9), BOOK)
    event = only(outcome)
    assert isinstance(event, CaseRedispatched)
    assert (event.reason, event.department, event.is_rework, event.rework_count) == (
        "rework",
        "street-jinchang",
        True,
        1,
    )
    assert event.dispatched_at == at(3, 11, 9)
    # 4 working hours from 09:00: three before lunch, one after it.
    assert event.deadlines.handle == at(3, 11, 14, 30)
    assert event.dispatch_number == 2
    # The same rework order again changes nothing; the next one counts.
    assert outcome.state is not None
    assert (
        apply_rework(outcome.state, rework("street-jinchang", 1), at(3, 11, 9), BOOK).state is None
    )
    second = only(apply_rework(outcome.state, rework("street-jinchang", 2), at(3, 12, 9), BOOK))
    assert isinstance(second, CaseRedispatched) and second.rework_count == 2


def test_a_redispatch_after_rework_is_no_longer_marked_as_rework() -> None:
    state = apply_rework(dispatched("C0101"), rework("water-affairs", 1), T0, BOOK).state
    assert state is not None and state.is_rework
    moved = assign_manually(state, "gas-company", "disp-7", T0, BOOK).state
    assert moved is not None and not moved.is_rework


# -- extensions ----------------------------------------------------------------------------


def engineering_case() -> CaseState:
    # Pedestrian overpass, engineering tier, 10 working days: due Tuesday Mar 24 10:00.
    state = dispatched("C0205")
    assert state.deadlines is not None and state.deadlines.handle == at(3, 24, 10)
    return state


def test_an_engineering_case_gets_its_extension() -> None:
    outcome = answer_extension_request(
        engineering_case(),
        extension_requested("municipal-works", timedelta(days=2)),
        "REQ-1",
        at(3, 20, 9),
        BOOK,
    )
    event = only(outcome)
    assert isinstance(event, CaseRedispatched)
    assert (event.reason, event.extension, event.department) == (
        "extension",
        timedelta(days=2),
        "municipal-works",
    )
    # Two working days later; the clocks keep their start and the sign-for deadline.
    assert event.deadlines.handle == at(3, 26, 10)
    assert event.dispatched_at == T0
    assert event.deadlines.sign_for == at(3, 10, 11)
    assert event.dispatch_number == 2


def test_an_ordinary_case_is_refused_an_extension_with_the_reason() -> None:
    state = dispatched("E0102", street="320508003")
    outcome = answer_extension_request(
        state, extension_requested("street-jinchang", timedelta(days=1)), "REQ-1", T0, BOOK
    )
    event = only(outcome)
    assert isinstance(event, CaseExtensionRefused)
    assert (event.reason, event.department, event.requested) == (
        "tier_not_eligible",
        "street-jinchang",
        timedelta(days=1),
    )
    assert "this one is ordinary" in event.message


def test_extensions_stop_at_the_tiers_maximum() -> None:
    state = engineering_case()
    granted = answer_extension_request(
        state, extension_requested("municipal-works", timedelta(days=8)), "REQ-1", T0, BOOK
    ).state
    assert granted is not None
    too_much = only(
        answer_extension_request(
            granted,
            extension_requested("municipal-works", timedelta(days=3), reason="rain"),
            "REQ-2",
            T0,
            BOOK,
        )
    )
    assert isinstance(too_much, CaseExtensionRefused)
    assert too_much.reason == "exceeds_maximum"
    assert "60h granted so far, 15h left, 22h30m asked" in too_much.message
    exactly = only(
        answer_extension_request(
            granted,
            extension_requested("municipal-works", timedelta(days=2), reason="rain"),
            "REQ-3",
            T0,
            BOOK,
        )
    )
    assert isinstance(exactly, CaseRedispatched)


def test_a_second_copy_of_an_extension_request_is_answered_once() -> None:
    request = extension_requested("municipal-works", timedelta(days=2))
    first = answer_extension_request(engineering_case(), request, "REQ-1", T0, BOOK)
    assert first.state is not None
    again = answer_extension_request(first.state, request, "REQ-1-COPY", T0, BOOK)
    assert again.state is None and again.events == ()


def test_an_extension_request_from_a_department_without_the_case_is_refused() -> None:
    event = only(
        answer_extension_request(
            engineering_case(), extension_requested("parks", timedelta(days=1)), "REQ-1", T0, BOOK
        )
    )
    assert isinstance(event, CaseExtensionRefused) and event.reason == "case_not_open"


def test_the_command_centre_can_extend_an_ordinary_case() -> None:
    state = dispatched("E0102", street="320508003")  # 4 working hours: due Tuesday 15:30
    refused = answer_extension_request(
        state, extension_requested("street-jinchang", timedelta(hours=2)), "REQ-1", T0, BOOK
    ).state
    assert refused is not None
    grant = extension_granted("street-jinchang", timedelta(hours=2), request_event_id="REQ-1")
    outcome = apply_extension_grant(refused, grant, "GRANT-1", at(3, 10, 11), BOOK)
    event = only(outcome)
    assert isinstance(event, CaseRedispatched)
    assert event.reason == "extension" and event.extension == timedelta(hours=2)
    assert event.deadlines.handle == at(3, 10, 17, 30)
    assert outcome.state is not None
    assert apply_extension_grant(outcome.state, grant, "GRANT-1-COPY", T0, BOOK).state is None


def test_a_grant_for_a_request_already_granted_by_rule_changes_nothing() -> None:
    request = extension_requested("municipal-works", timedelta(days=2))
    state = answer_extension_request(engineering_case(), request, "REQ-1", T0, BOOK).state
    assert state is not None
    grant = extension_granted("municipal-works", timedelta(days=2), request_event_id="REQ-1")
    assert apply_extension_grant(state, grant, "GRANT-1", T0, BOOK).state is None


def test_apply_routes_each_follow_up_event() -> None:
    state = dispatched("C0101")
    event = only(apply(state, returned("water-affairs"), "E-1", at(3, 10, 11), BOOK))
    assert isinstance(event, CaseRedispatched) and event.reason == "return"
    ignored = apply(state, registered("C0101"), "E-2", T0, BOOK)
    assert ignored.state is None and "does not concern dispatch" in ignored.note
