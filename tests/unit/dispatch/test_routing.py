"""The rule table: owner-first and locality-first by kind, overrides by street and area class,
co-assignees, explicit candidate lists, and a case no rule can place."""

from __future__ import annotations

from dataclasses import replace

import pytest

from services.dispatch.domain.cases import Rulebook, register
from services.dispatch.domain.routing import CATALOGUE_RULE, Route, route
from shared.events import CaseDispatched, CaseEscalated
from shared.reference import AssignmentOrder, ReferenceData, RoutingRule, RuleMatch
from tests.unit.dispatch.cases import SAMPLE, at, registered

PINGJIANG, CANGLANG, JINCHANG, SHUANGTA = "320508001", "320508002", "320508003", "320508004"


def route_of(
    code: str, street: str = PINGJIANG, area_class: str = "B", ref: ReferenceData = SAMPLE
) -> Route:
    category = ref.category(code)
    assert category is not None
    return route(ref, category, street, area_class, fallback_area="unused")


def test_a_component_goes_to_its_owner_first_then_the_locality() -> None:
    found = route_of("C0101")  # water-supply manhole cover, 部件
    assert found.candidates == ("water-affairs", "street-pingjiang")
    assert found.area == "street-pingjiang"
    assert found.rule_id == CATALOGUE_RULE
    assert found.co_departments == ()
    assert "owner first (先属主后属地): water-affairs, then street-pingjiang" in found.rule


def test_an_event_goes_to_the_locality_first_then_the_owner() -> None:
    found = route_of("E0102", street=JINCHANG)  # exposed rubbish, 事件
    assert found.candidates == ("street-jinchang", "sanitation")
    assert found.area == "street-jinchang"
    assert "locality first (先属地后属主): street-jinchang, then sanitation" in found.rule


def test_the_catalogue_can_set_an_event_owner_first() -> None:
    # Cooking fumes: an event, but the catalogue says owner first.
    assert route_of("E0109").candidates == ("urban-enforcement", "street-pingjiang")


def test_a_street_overrides_the_order() -> None:
    # Canglang contracted its street cleaning to the district: owner first there only.
    there = route_of("E0102", street=CANGLANG)
    assert there.candidates == ("sanitation", "street-canglang")
    assert there.rule_id == "canglang-contracted-cleaning"
    assert "rule canglang-contracted-cleaning: 沧浪街道 has contracted" in there.rule
    elsewhere = route_of("E0102", street=SHUANGTA)
    assert elsewhere.candidates == ("street-shuangta", "sanitation")
    assert elsewhere.rule_id == CATALOGUE_RULE


def test_an_area_class_overrides_the_order() -> None:
    fringe = route_of("C0114", area_class="C")  # street lamp in a fringe area
    assert fringe.candidates == ("street-pingjiang", "street-lighting")
    assert fringe.rule_id == "fringe-lamps-street-office"
    general = route_of("C0114", area_class="B")
    assert general.candidates == ("street-lighting", "street-pingjiang")
    assert general.rule_id == CATALOGUE_RULE


def test_co_assigned_departments_by_area_class() -> None:
    core = route_of("C0101", area_class="A")
    assert core.candidates == ("water-affairs", "street-pingjiang")
    assert core.co_departments == ("traffic-police",)
    assert core.rule.endswith("; co-assigned: traffic-police")
    assert route_of("C0101", area_class="B").co_departments == ()


def test_a_rule_by_kind_and_street() -> None:
    assert route_of("C0302", street=SHUANGTA).co_departments == ("street-shuangta",)
    assert route_of("E0104", street=SHUANGTA).co_departments == ()  # an event: not matched


def test_the_first_matching_rule_wins() -> None:
    # A fringe street lamp in Shuangta matches both the lamp rule and the Shuangta rule.
    found = route_of("C0114", street=SHUANGTA, area_class="C")
    assert found.rule_id == "fringe-lamps-street-office"
    assert found.co_departments == ()


def test_an_explicit_candidate_list_with_a_third_department() -> None:
    found = route_of("E0101", street=JINCHANG, area_class="C")
    assert found.candidates == ("street-jinchang", "urban-enforcement", "planning")
    assert "candidates as the rule lists them" in found.rule


def test_owner_only_with_a_co_assignee() -> None:
    found = route_of("E0503")  # gas leak
    assert found.candidates == ("gas-company",)
    assert found.co_departments == ("fire-rescue",)


def test_no_candidate_leaves_the_decision_to_a_dispatcher() -> None:
    found = route_of("C0504")  # vacant lot
    assert found.candidates == ()
    assert found.lead is None
    assert "no candidate: a dispatcher assigns it" in found.rule


def test_a_rule_may_replace_the_owner() -> None:
    rule = RoutingRule(
        id="jinchang-lamps-by-power",
        description="金阊's lamps are on the power company's network",
        match=RuleMatch(categories=("C0114",), streets=(JINCHANG,)),
        owner="power-supply",
    )
    ref = replace(SAMPLE, routing=(rule, *SAMPLE.routing))
    assert route_of("C0114", street=JINCHANG, ref=ref).candidates == (
        "power-supply",
        "street-jinchang",
    )
    assert route_of("C0114", street=PINGJIANG, ref=ref).candidates == (
        "street-lighting",
        "street-pingjiang",
    )


def test_an_owner_that_is_the_street_office_is_asked_once() -> None:
    rule = RoutingRule(
        id="street-owns-benches",
        description="benches belong to the street offices",
        match=RuleMatch(categories=("C0408",)),
        owner="street-pingjiang",
        order=AssignmentOrder.OWNER_FIRST,
    )
    ref = replace(SAMPLE, routing=(rule,))
    assert route_of("C0408", ref=ref).candidates == ("street-pingjiang",)


def test_a_street_without_an_office_has_no_locality_and_keeps_the_given_area() -> None:
    category = SAMPLE.category("E0102")
    assert category is not None
    found = route(SAMPLE, category, "320508999", "B", fallback_area="320508999")
    assert found.candidates == ("sanitation",)
    assert found.area == "320508999"


# -- registration turns the route into the first dispatch or an escalation ---------------

BOOK = Rulebook.of(SAMPLE)


def test_registration_dispatches_to_the_first_candidate_with_area_rule_and_deadlines() -> None:
    case = registered("E0102", street=CANGLANG, area_class="A")
    outcome = register(case, at(3, 10, 10), BOOK)
    (event,) = outcome.events
    assert isinstance(event, CaseDispatched)
    assert (event.department, event.area) == ("sanitation", "street-canglang")
    assert event.rule_id == "canglang-contracted-cleaning"
    assert event.dispatch_number == 1 and not event.is_rework
    assert event.dispatched_at == at(3, 10, 10)
    assert event.deadlines.handle == at(3, 10, 12)  # 2 working hours in the core area
    assert outcome.state is not None and outcome.state.status == "dispatched"


@pytest.mark.parametrize("code", ["C0504"])
def test_registration_without_a_candidate_escalates(code: str) -> None:
    outcome = register(registered(code), at(3, 10, 10), BOOK)
    (event,) = outcome.events
    assert isinstance(event, CaseEscalated)
    assert event.reason == "no_candidate"
    assert event.returns == 0 and event.area == "street-pingjiang"
    assert "vacant-lot-by-dispatcher" in event.detail
    assert outcome.state is not None
    assert (outcome.state.status, outcome.state.dispatch_number) == ("escalated", 0)


def test_a_category_missing_from_the_catalogue_escalates() -> None:
    outcome = register(registered("E0999"), at(3, 10, 10), BOOK)
    (event,) = outcome.events
    assert isinstance(event, CaseEscalated)
    assert event.reason == "no_candidate"
    assert "not in the catalogue" in event.detail
