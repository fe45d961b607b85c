"""Rates, the null rule, composites, deductions, bands, ranks and flags, against hand-worked numbers.

The rules are the sample city's ``scoring.json``, which holds ISSUE 6's
defaults: department 30·closure + 30·on-time + 30·(1 − rework) +
10·satisfaction, −0.2 per rework order, −0.5 per case failing verification
three times; area 10·response + 50·closure + 40·satisfaction.
"""

from __future__ import annotations

import pytest

from services.scoring.domain.figures import figures
from services.scoring.domain.scores import (
    Rates,
    area_score,
    band,
    competition_ranks,
    department_score,
    last_units,
    rates,
    score_table,
    talk_due,
)
from shared.reference import load_reference

RULES = load_reference().scoring

# due 10, closed 8, on time 6, responded 9, 2 rework orders, 5 rated: 3 satisfied, 1 basically.
TYPICAL = figures(
    due=10,
    closed=8,
    on_time=6,
    responded=9,
    rework=2,
    rated=5,
    satisfied=3,
    basically_satisfied=1,
    failed_verification_3x=1,
    overdue=3,
)


def test_rates_by_hand():
    assert rates(TYPICAL, RULES) == Rates(
        on_time_rate=0.6,  # 6 / 10
        closure_rate=0.8,  # 8 / 10
        response_rate=0.9,  # 9 / 10
        rework_rate=0.25,  # 2 / 8 closed
        satisfaction_rate=pytest.approx(0.78),  # (3 + 0.9 × 1) / 5
    )


def test_a_zero_denominator_gives_null_not_zero():
    assert rates(figures(), RULES) == Rates(None, None, None, None, None)
    r = rates(figures(due=4, responded=4), RULES)
    assert (r.closure_rate, r.on_time_rate, r.response_rate) == (0.0, 0.0, 1.0)
    assert r.rework_rate is None  # nothing closed
    assert r.satisfaction_rate is None  # nothing rated


def test_department_score_by_hand():
    # 30×0.8 + 30×0.6 + 30×(1−0.25) + 10×0.78 = 24 + 18 + 22.5 + 7.8 = 72.3
    # − 0.2 × 2 rework orders − 0.5 × 1 case failing three times = 71.4
    assert department_score(TYPICAL, RULES) == pytest.approx(71.4)


def test_area_score_by_hand():
    # 10×0.9 + 50×0.8 + 40×0.78 = 9 + 40 + 31.2 = 80.2
    assert area_score(TYPICAL, RULES) == pytest.approx(80.2)


def test_null_terms_are_reweighted_over_the_others():
    unrated = figures(due=10, closed=8, on_time=6, responded=9, rework=2)
    # (24 + 18 + 22.5) over weights 90 → × 100/90 = 71.6667, then − 0.4 = 71.2667
    assert department_score(unrated, RULES) == pytest.approx(71.2667)
    # (9 + 40) over weights 60 → × 100/60 = 81.6667
    assert area_score(unrated, RULES) == pytest.approx(81.6667)
    nothing_closed = figures(due=4, responded=2)
    # closure 0 and on-time 0 over weights 60; rework and satisfaction are null: 0
    assert department_score(nothing_closed, RULES) == 0.0
    # 10 × 0.5 + 50 × 0 over weights 60 → 5 × 100/60 = 8.3333
    assert area_score(nothing_closed, RULES) == pytest.approx(8.3333)


def test_no_rate_at_all_gives_no_score():
    assert department_score(figures(), RULES) is None
    assert area_score(figures(rebounds=3), RULES) is None


def test_perfect_unit_scores_full_marks():
    perfect = figures(due=5, closed=5, on_time=5, responded=5, rated=5, satisfied=5)
    assert department_score(perfect, RULES) == 100.0
    assert area_score(perfect, RULES) == 100.0


def test_deductions_and_clamping():
    # On an otherwise perfect record − 0.5 × 2 on an otherwise perfect record, with 3 reworks on 5 closed:
    # 30 + 30 + 30 × (1 − 0.6) + 10 = 82, − 0.6 − 1.0 = 80.4
    reworked = figures(
        due=5, closed=5, on_time=5, rated=5, satisfied=5, rework=3, failed_verification_3x=2
    )
    assert department_score(reworked, RULES) == pytest.approx(80.4)
    # More rework orders than closed cases makes 1 − rework_rate negative; the score floors at 0.
    hopeless = figures(due=2, closed=1, rework=30, failed_verification_3x=2)
    assert department_score(hopeless, RULES) == 0.0


@pytest.mark.parametrize(
    ("score", "expected"),
    [
        (100, "A"),
        (90, "A"),
        (89.9999, "B"),
        (75, "B"),
        (74.99, "C"),
        (60, "C"),
        (59.9, "D"),
        (40, "D"),
        (39.99, "E"),
        (0, "E"),
        (None, None),
    ],
)
def test_bands(score, expected):
    assert band(score, RULES) == expected


def test_ties_share_a_rank_and_the_next_rank_skips():
    assert competition_ranks({"a": 90.0, "b": 80.0, "c": 80.0, "d": 70.0}) == {
        "a": 1,
        "b": 2,
        "c": 2,
        "d": 4,
    }
    assert competition_ranks({"a": 50.0, "b": 50.0, "c": 50.0}) == {"a": 1, "b": 1, "c": 1}


def _dept(closed: int, due: int = 10) -> tuple[int, ...]:
    """A department whose score is 30·c + 30·c + 30 + 10 with c = closed/due, all on time."""
    return figures(due=due, closed=closed, on_time=closed, rated=1, satisfied=1)


def test_table_ranks_skip_units_with_nothing_due_and_flag_the_bottom_three():
    # Ranked by score; "idle" has nothing due, so it is shown but not ranked.
    table = score_table(
        "department",
        {
            "a": _dept(10),  # 30 + 30 + 30 + 10 = 100
            "b": _dept(9),  # 27 + 27 + 30 + 10 = 94
            "c": _dept(8),  # 88
            "d": _dept(7),  # 82
            "e": _dept(6),  # 76
            "f": _dept(5),  # 70
            "idle": figures(rebounds=2),  # nothing due: shown, not ranked
        },
        RULES,
    )
    got = {row.unit_id: (row.score, row.rank, row.band, row.bottom) for row in table.rows}
    assert got == {
        "a": (100.0, 1, "A", False),
        "b": (94.0, 2, "A", False),
        "c": (88.0, 3, "B", False),  # three below it (d, e, f): not in the bottom three
        "d": (82.0, 4, "B", True),
        "e": (76.0, 5, "B", True),
        "f": (70.0, 6, "C", True),
        "idle": (None, None, None, False),
    }
    assert table.ranked_units == 6
    assert [row.unit_id for row in table.rows] == ["a", "b", "c", "d", "e", "f", "idle"]
    assert table.last == frozenset({"f"})


def test_ties_at_the_bottom_boundary_are_all_flagged():
    table = score_table(
        "department",
        {"a": _dept(10), "b": _dept(6), "c": _dept(6), "d": _dept(6), "e": _dept(2)},
        RULES,
    )
    assert {row.unit_id for row in table.rows if row.bottom} == {"b", "c", "d", "e"}


def test_all_tied_for_last_are_last():
    units = {"x": _dept(4), "y": _dept(4), "z": _dept(9), "idle": figures()}
    table = score_table("area", units, RULES)
    assert table.last == frozenset({"x", "y"})
    assert last_units("area", units, RULES) == table.last
    assert last_units("grid", units, RULES) == frozenset()  # cells are not ranked


def test_community_and_grid_tables_carry_rates_but_no_score_or_rank():
    table = score_table("grid", {"32050800100101": TYPICAL}, RULES)
    (row,) = table.rows
    assert (row.score, row.rank, row.band, row.bottom) == (None, None, None, False)
    assert row.rates.closure_rate == 0.8
    assert table.ranked_units == 0


def test_a_unit_last_in_two_months_of_a_quarter_is_called_in_for_a_talk():
    october = frozenset({"water-affairs"})
    november = frozenset({"water-affairs", "parks"})
    december = frozenset({"parks"})
    assert talk_due([october], RULES) == frozenset()
    assert talk_due([october, november], RULES) == frozenset({"water-affairs"})
    assert talk_due([october, november, december], RULES) == frozenset({"water-affairs", "parks"})
    table = score_table(
        "department",
        {"water-affairs": _dept(3), "parks": _dept(9)},
        RULES,
        talk=talk_due([october, november], RULES),
    )
    assert {row.unit_id: row.talk for row in table.rows} == {"water-affairs": True, "parks": False}


def test_weights_come_from_the_rules_not_from_code():
    from shared.reference.scoring import ScoringRules

    doc = RULES.model_dump(mode="json")
    doc["area"]["terms"] = [
        {"indicator": "closure_rate", "weight": 100},
    ]
    doc["bands"] = [{"band": "A", "min_score": 50}, {"band": "E", "min_score": 0}]
    rules = ScoringRules.model_validate(doc)
    assert area_score(TYPICAL, rules) == pytest.approx(80.0)
    assert band(area_score(TYPICAL, rules), rules) == "A"
