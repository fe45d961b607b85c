"""Case facts and what each case contributes to the unit figures, with hand-computed counts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.scoring.domain.facts import (
    CaseFact,
    Places,
    _replace,
    apply_event,
    contribution,
    rebound_contribution,
    rejection_contribution,
)
from services.scoring.domain.figures import (
    INDEX,
    ZERO,
    UnitKey,
    accumulate,
    as_dict,
    changes,
    expand,
    rows,
)
from shared.reference import load_reference
from tests.unit.scoring.story import (
    CELL_CANGLANG,
    CELL_PINGJIANG,
    Story,
    at,
    rejected,
)

REF = load_reference()
PLACES = Places.from_reference(REF)
DISTRICT = REF.district.code


def fold(events, case_id=None):
    fact = CaseFact(case_id or events[0].subject)
    for event in events:
        fact = apply_event(fact, event)
    return fact


def contrib(events):
    return expand(contribution(fold(events), PLACES, 3))


def month_row(events, unit_type="department", unit_id="sanitation", period="2026-11"):
    return as_dict(contrib(events).get(UnitKey("month", period, unit_type, unit_id), (0,) * 16))


def cohort(row):
    return {k: v for k, v in row.items() if v and k not in ("registered", "closures")}


def dispatched_story(case_id="C1", **kw):
    story = Story(case_id, **kw)
    story.registered(at(3, 9))
    story.dispatched(at(3, 10))  # sign-for 11:00, handling 16:00
    return story


def test_a_dispatched_case_is_due_in_every_unit_and_period_of_its_first_dispatch():
    story = dispatched_story()
    got = contrib(story.events)
    due_keys = {k for k, v in got.items() if v[INDEX["due"]]}
    units = {
        ("department", "sanitation"),
        ("area", "street-pingjiang"),
        ("community", CELL_PINGJIANG[:12]),
        ("grid", CELL_PINGJIANG),
        ("district", DISTRICT),
    }
    periods = {
        ("day", "2026-11-03"),
        ("week", "2026-W45"),
        ("month", "2026-11"),
        ("quarter", "2026-Q4"),
        ("year", "2026"),
    }
    assert due_keys == {UnitKey(p[0], p[1], u[0], u[1]) for p in periods for u in units}
    assert all(v[INDEX["due"]] == 1 for k, v in got.items() if k in due_keys)
    # The registration counts in the day's intake of the area and the district only.
    registered = {k for k, v in got.items() if v[INDEX["registered"]]}
    assert registered == {
        UnitKey("day", "2026-11-03", "area", "street-pingjiang"),
        UnitKey("day", "2026-11-03", "district", DISTRICT),
    }


def test_a_registered_case_not_yet_dispatched_is_not_due():
    story = Story("C1")
    story.registered(at(3, 9))
    assert all(v[INDEX["due"]] == 0 for v in contrib(story.events).values())


def test_a_case_first_dispatched_in_october_stays_in_october_after_a_november_redispatch():
    story = Story("C1")
    story.dispatched(at(31, 23.5, month=10))
    story.redispatched(at(1, 10), department="parks")
    got = contrib(story.events)
    assert got[UnitKey("month", "2026-10", "department", "parks")][INDEX["due"]] == 1
    assert UnitKey("month", "2026-11", "department", "parks") not in got
    assert UnitKey("month", "2026-10", "department", "sanitation") not in got


def test_a_redispatch_to_another_department_moves_the_case_between_cohorts():
    story = dispatched_story()
    before = contribution(fold(story.events), PLACES, 3)
    story.accepted(at(3, 10.5))
    story.redispatched(at(3, 12), department="parks", reason="manual")
    after = contribution(fold(story.events), PLACES, 3)
    total = {}
    for part in changes(before, after):
        accumulate(total, part)
    moved = rows(total)
    # Applying the changes to the old figures gives the new ones.
    old = expand(before)
    new = {
        k: tuple(a + b for a, b in zip(old.get(k, ZERO), v, strict=True)) for k, v in moved.items()
    }
    figures = {**old, **new}
    assert {k: v for k, v in figures.items() if any(v)} == expand(after)
    month_sanitation = UnitKey("month", "2026-11", "department", "sanitation")
    month_parks = UnitKey("month", "2026-11", "department", "parks")
    assert as_dict(moved[month_sanitation])["due"] == -1
    assert as_dict(moved[month_parks])["due"] == 1
    assert as_dict(moved[month_parks])["responded"] == 1  # signed for in time before the move
    # The area, community and grid stay where the cell is: no change there but the acceptance.
    assert as_dict(moved[UnitKey("month", "2026-11", "area", "street-pingjiang")]) == {
        **{k: 0 for k in as_dict(moved[month_parks])},
        "responded": 1,
    }


@pytest.mark.parametrize(
    ("accepted_hour", "responded"),
    [(10.5, 1), (10.99, 1), (11.0, 0), (12.0, 0)],
)
def test_responded_means_signed_for_strictly_before_the_sign_for_deadline(accepted_hour, responded):
    story = dispatched_story()  # sign-for deadline 11:00
    story.accepted(at(3, accepted_hour))
    assert month_row(story.events)["responded"] == responded


def test_responded_uses_the_sign_for_deadline_in_force_when_signed_for():
    story = dispatched_story()  # first sign-for deadline 11:00
    story.redispatched(at(3, 12), department="parks")  # new sign-for deadline 13:00
    story.accepted(at(3, 12.5))
    assert month_row(story.events, unit_id="parks")["responded"] == 1
    late = dispatched_story("C2")
    late.redispatched(at(3, 12), department="parks")
    late.accepted(at(3, 13.5))
    assert month_row(late.events, unit_id="parks")["responded"] == 0


@pytest.mark.parametrize(
    ("handled_hour", "on_time"),
    [(15.0, 1), (16.0, 1), (16.01, 0)],  # handling deadline 16:00: at or before is on time
)
def test_on_time_means_handling_at_or_before_the_deadline_in_force_then_verified(
    handled_hour, on_time
):
    story = dispatched_story()
    story.handled_verified_closed(at(3, handled_hour))
    row = month_row(story.events)
    assert (row["closed"], row["on_time"]) == (1, on_time)


def test_handled_but_not_verified_is_neither_closed_nor_on_time():
    story = dispatched_story()
    story.handled(at(3, 12))
    story.verified(at(3, 12.5))
    assert cohort(month_row(story.events)) == {"due": 1}


def test_on_time_after_rework_is_judged_against_the_fresh_deadline():
    story = dispatched_story()  # handling deadline 16:00
    story.handled(at(3, 12))
    story.failed_and_reworked(at(3, 13))  # redispatched 13:02, new deadline 19:02
    story.handled_verified_closed(at(3, 18))
    row = month_row(story.events)
    assert (row["closed"], row["on_time"], row["rework"]) == (1, 1, 1)


def test_ever_overdue_counts_once():
    story = dispatched_story()
    story.overdue(at(3, 11), timer="sign_for")
    story.overdue(at(3, 16), timer="handle")
    row = month_row(story.events)
    assert row["overdue"] == 1
    assert month_row(story.events, period="2026-11")["became_overdue"] == 0  # activity is daily
    day = as_dict(contrib(story.events)[UnitKey("day", "2026-11-03", "department", "sanitation")])
    assert day["became_overdue"] == 1


# Supervision fires a light a settle after the deadline; a step done just in time may
# arrive after it (a backlog, an outage). The light is judged by the step's event time.
SETTLE = timedelta(milliseconds=600)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_a_sign_for_done_by_its_deadline_withdraws_the_light_that_raced_it(data):
    story = dispatched_story()  # sign-for due 11:00
    story.accepted(at(3, 11) - timedelta(seconds=1))
    story.overdue(at(3, 11) + SETTLE, timer="sign_for", deadline=at(3, 11))
    events = data.draw(st.permutations(story.events))
    row = month_row(events)
    assert (row["overdue"], row["responded"]) == (0, 1)
    assert fold(events).overdue_at is None


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_a_handling_done_by_its_deadline_withdraws_the_light_that_raced_it(data):
    story = dispatched_story()  # sign-for due 11:00, handling 16:00
    story.accepted(at(3, 10.5))
    story.handled(at(3, 16))  # at the deadline is in time
    story.overdue(at(3, 16) + SETTLE, timer="handle", deadline=at(3, 16))
    events = data.draw(st.permutations(story.events))
    assert month_row(events)["overdue"] == 0


def test_a_handling_by_the_sign_for_deadline_also_counts_as_signed_for():
    story = dispatched_story()  # sign-for due 11:00
    story.overdue(at(3, 11) + SETTLE, timer="sign_for", deadline=at(3, 11))
    story.handled(at(3, 10.75))  # supervision disarms the sign-for timer on a handling too
    assert month_row(story.events)["overdue"] == 0
    late = dispatched_story("C2")
    late.overdue(at(3, 11) + SETTLE, timer="sign_for", deadline=at(3, 11))
    late.handled(at(3, 15))  # handled in time for its handling limit, but not signed for by 11
    assert month_row(late.events)["overdue"] == 1


def test_a_step_done_after_its_deadline_leaves_the_light_standing():
    story = dispatched_story()
    story.accepted(at(3, 10.5))
    light = story.overdue(at(3, 16) + SETTLE, timer="handle", deadline=at(3, 16))
    story.handled(at(3, 16) + timedelta(seconds=1))
    assert month_row(story.events)["overdue"] == 1
    assert fold(story.events).overdue_at == light.time


def test_a_step_done_under_another_dispatch_does_not_withdraw_a_light():
    story = dispatched_story()
    story.accepted(at(3, 10.5))  # signed for dispatch 1
    story.redispatched(at(3, 12), department="parks")  # dispatch 2: sign-for due 13:00
    story.overdue(at(3, 13) + SETTLE, timer="sign_for", deadline=at(3, 13))
    assert month_row(story.events, unit_id="parks")["overdue"] == 1


def test_a_late_verification_is_the_inspectors_not_the_departments():
    story = dispatched_story()
    story.handled(at(3, 12))
    story.overdue(at(3, 12.5) + SETTLE, timer="verify", deadline=at(3, 12.5))
    assert month_row(story.events)["overdue"] == 0


def test_a_fact_saved_before_lights_were_kept_keeps_its_overdue_at():
    story = dispatched_story()
    story.accepted(at(3, 10.5))
    legacy = fold(story.events)
    legacy = _replace(legacy, overdue_at=at(3, 16))
    assert apply_event(legacy, story.accepted(at(3, 10.75))).overdue_at == at(3, 16)
    # A later light is judged on its own; the light it had still stands.
    later = story.overdue(at(3, 17) + SETTLE, timer="verify", deadline=at(3, 17))
    assert apply_event(legacy, later).overdue_at == at(3, 16)


def test_rework_counts_orders_and_failures_count_cases_failing_three_times():
    story = dispatched_story()
    story.failed_and_reworked(at(3, 12))
    story.failed_and_reworked(at(3, 14))
    row = month_row(story.events)
    assert (row["rework"], row["failed_verification_3x"]) == (2, 0)
    story.failed_and_reworked(at(3, 16))
    row = month_row(story.events)
    assert (row["rework"], row["failed_verification_3x"]) == (3, 1)


def test_the_same_failure_twice_and_look_back_failures_do_not_count():
    story = dispatched_story()
    first = story.verification_failed(at(3, 12))
    story.verification_failed(at(3, 13))
    events = [*story.events, first]
    events.append(
        Story("C1")
        .verification_failed(at(5, 9))
        .model_copy(update={"data": first.data.model_copy(update={"lookback": True})})
    )
    assert len(fold(events).verification_failures) == 2
    assert month_row(events)["failed_verification_3x"] == 0


@pytest.mark.parametrize(
    ("rating", "expected"),
    [
        ("satisfied", {"rated": 1, "satisfied": 1}),
        ("basically_satisfied", {"rated": 1, "basically_satisfied": 1}),
        ("dissatisfied", {"rated": 1}),
    ],
)
def test_ratings(rating, expected):
    story = dispatched_story()
    story.rated(at(4, 10), rating)
    assert cohort(month_row(story.events)) == {"due": 1, **expected}


def test_the_latest_rating_wins_whatever_the_arrival_order():
    story = dispatched_story()
    early = story.rated(at(4, 10), "dissatisfied")
    late = story.rated(at(5, 10), "satisfied")
    base = story.events[:2]
    for order in ([early, late], [late, early]):
        assert cohort(month_row([*base, *order])) == {"due": 1, "rated": 1, "satisfied": 1}


def test_merged_duplicates_never_count():
    story = Story("D1")
    story.merged(at(3, 9), master="C1")
    # Even if a dispatch for it arrived, a duplicate stays out of every cohort.
    story.dispatched(at(3, 10))
    story.handled_verified_closed(at(3, 12))
    got = contrib(story.events)
    assert all(v[INDEX["due"]] == 0 and v[INDEX["closed"]] == 0 for v in got.values())
    assert {k for k, v in got.items() if v[INDEX["merged"]]} == {
        UnitKey("day", "2026-11-03", "area", "street-pingjiang"),
        UnitKey("day", "2026-11-03", "district", DISTRICT),
    }


def test_a_rebound_counts_against_the_places_area_and_the_bounced_departments():
    new_case = Story("C9", grid=CELL_CANGLANG)
    env = new_case.rebounded(at(10, 9), previous_case_id="C1", department="parks")
    got = expand(rebound_contribution(PLACES.of(env.data.grid_code), "parks", env.time))
    counted = {(k.unit_type, k.unit_id) for k, v in got.items() if v[INDEX["rebounds"]] == 1}
    assert counted == {
        ("department", "parks"),
        ("area", "street-canglang"),
        ("community", CELL_CANGLANG[:12]),
        ("grid", CELL_CANGLANG),
        ("district", DISTRICT),
    }
    assert {(k.period_type, k.period) for k in got} == {
        ("day", "2026-11-10"),
        ("week", "2026-W46"),
        ("month", "2026-11"),
        ("quarter", "2026-Q4"),
        ("year", "2026"),
    }


def test_a_rejected_report_counts_in_the_districts_day_only():
    env = rejected("R1", at(3, 9))
    got = expand(rejection_contribution(DISTRICT, env.time))
    assert got == {UnitKey("day", "2026-11-03", "district", DISTRICT): got[next(iter(got))]}
    assert as_dict(next(iter(got.values())))["rejected"] == 1


def test_a_cell_unknown_to_the_reference_data_keeps_the_area_its_events_named():
    place = PLACES.of("99999999999901", "street-elsewhere")
    assert (place.area, place.community, place.district) == (
        "street-elsewhere",
        "999999999999",
        "999999",
    )


def full_story():
    story = Story("C1")
    story.registered(at(3, 9))
    story.dispatched(at(3, 10))
    story.accepted(at(3, 10.5))
    story.overdue(at(3, 16))
    story.redispatched(at(3, 17), department="parks")
    story.accepted(at(3, 17.5))
    story.handled(at(3, 18))
    story.failed_and_reworked(at(3, 19))
    story.failed_and_reworked(at(4, 9))
    story.handled_verified_closed(at(4, 11))
    story.rated(at(5, 10), "basically_satisfied")
    story.rated(at(5, 11), "satisfied")
    story.warned(at(3, 15))
    return story.events


EVENTS = full_story()
EXPECTED = contrib(EVENTS)


def test_the_full_story_by_hand():
    assert cohort(month_row(EVENTS, unit_id="parks")) == {
        "due": 1,
        "closed": 1,
        "on_time": 1,  # handled 11:00 on the 4th, rework deadline 15:02 that day
        "overdue": 1,
        "rework": 2,
        "responded": 1,
        "rated": 1,
        "satisfied": 1,
    }
    # Redispatched to parks: nothing of it is left with sanitation.
    assert not any(k.unit_id == "sanitation" for k in EXPECTED)


@settings(max_examples=150, deadline=None)
@given(st.permutations(EVENTS), st.lists(st.integers(0, len(EVENTS) - 1), max_size=6))
def test_any_order_and_any_repetition_gives_the_same_fact(order, repeats):
    events = list(order) + [EVENTS[i] for i in repeats]
    assert contrib(events) == EXPECTED


def test_contributions_add_up_across_cases():
    a = dispatched_story("C1")
    b = dispatched_story("C2", grid=CELL_CANGLANG, department="parks")
    b.accepted(at(3, 10.5))
    total = {}
    for events in (a.events, b.events):
        for key, vector in contrib(events).items():
            total[key] = tuple(
                x + y for x, y in zip(total.get(key, (0,) * 16), vector, strict=True)
            )
    district = as_dict(total[UnitKey("month", "2026-11", "district", DISTRICT)])
    assert (district["due"], district["responded"]) == (2, 1)


@settings(max_examples=100, deadline=None)
@given(st.permutations(EVENTS))
def test_adding_each_events_changes_in_turn_builds_the_final_figures(order):
    """What the handler does: figures += changes(before, after) per event, in any order."""
    fact = CaseFact("C1")
    figures: dict = {}
    for event in order:
        after = apply_event(fact, event)
        for part in changes(contribution(fact, PLACES, 3), contribution(after, PLACES, 3)):
            accumulate(figures, part)
        fact = after
    assert rows(figures) == EXPECTED


def test_the_fold_s_replace_carries_every_field() -> None:
    """``_replace`` lists the fields by hand (for speed): each must come through, changed or not."""
    import dataclasses

    from services.scoring.domain.facts import _replace

    base = CaseFact(case_id="C1")
    for field in dataclasses.fields(CaseFact):
        marker = object()
        changed = _replace(base, **{field.name: marker})
        assert getattr(changed, field.name) is marker, field.name
        assert changed == dataclasses.replace(base, **{field.name: marker})
    assert _replace(base) == base
    assert _replace(base) is not base


def test_the_unit_tuples_of_a_place_are_the_ones_its_place_gives_and_stay_bounded(
    monkeypatch,
) -> None:
    """``intake_units`` and ``holder_units`` remember tuples; they must equal what ``of`` gives."""
    import services.scoring.domain.facts as facts_module

    places = Places.from_reference(REF)
    for grid, hint in ((CELL_PINGJIANG, None), ("99999999999901", "street-elsewhere")):
        place = places.of(grid, hint)
        intake = (("area", place.area), ("district", place.district))
        holders = (("department", "parks"), *intake)
        cohort_units = (*holders, ("community", place.community), ("grid", place.grid))
        for _ in range(2):  # built, then remembered
            assert places.intake_units(grid, hint) == intake
            assert places.holder_units(grid, hint, "parks") == (holders, cohort_units)
    monkeypatch.setattr(facts_module, "_UNITS_MEMO", 3)
    for n in range(10):
        places.holder_units(f"999999999999{n:02d}", None, "parks")
    assert len(places._holders) <= 3


def test_an_event_of_a_subclass_is_applied_as_its_base_class_would_be() -> None:
    """apply_event finds each data class's step once, by subclass, as isinstance did."""
    from shared.events import CaseOverdue

    class LateOverdue(CaseOverdue):
        pass

    story = dispatched_story()
    story.overdue(at(3, 17))
    event = story.events[-1]
    sub = event.model_copy(update={"data": LateOverdue(**event.data.model_dump())})
    fact = fold(story.events[:-1])
    assert apply_event(fact, sub) == apply_event(fact, event)
    assert apply_event(fact, sub).overdue_at == event.time
