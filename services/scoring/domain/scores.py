"""Rates, composite scores, bands, ranks and flags: the assessment (综合评价 / 考核).

Pure functions of a unit's figures and ``scoring.json`` (``ScoringRules``):

- rates are fractions; a zero denominator gives ``None``, never 0;
- a composite is the weighted sum of its terms' rates (``1 - rate`` for a
  ``complement`` term), with ``None`` terms dropped and the remaining weights
  scaled back up to the full range; a department then loses points for rework
  orders and for cases that failed verification repeatedly, and the result is
  clamped to the score range;
- units with nothing due are not ranked; ties share a rank (1, 2, 2, 4);
- the bottom units are flagged, and a unit last in enough months of one
  quarter is called in for a talk (约谈).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property

from services.scoring.domain.figures import INDEX, Figures, UnitType
from shared.reference import ScoreTerm, ScoringRules

#: Scores are kept to this many decimals, so that equal results compare equal
#: whatever the order of the floating-point sums behind them.
SCORE_DECIMALS = 4


@dataclass(frozen=True)
class Rates:
    on_time_rate: float | None
    closure_rate: float | None
    response_rate: float | None
    rework_rate: float | None
    satisfaction_rate: float | None

    def get(self, name: str) -> float | None:
        value: float | None = getattr(self, name)
        return value


def _ratio(numerator: float, denominator: int) -> float | None:
    return None if denominator == 0 else numerator / denominator


_DUE, _CLOSED, _ON_TIME, _RESPONDED, _REWORK, _RATED, _SATISFIED, _BASICALLY = (
    INDEX[name]
    for name in (
        "due",
        "closed",
        "on_time",
        "responded",
        "rework",
        "rated",
        "satisfied",
        "basically_satisfied",
    )
)


def rates(figures: Figures, rules: ScoringRules) -> Rates:
    f = figures
    due, closed, rated = f[_DUE], f[_CLOSED], f[_RATED]
    satisfied = f[_SATISFIED] + rules.satisfaction.basically_satisfied_factor * f[_BASICALLY]
    return Rates(
        on_time_rate=_ratio(f[_ON_TIME], due),
        closure_rate=_ratio(closed, due),
        response_rate=_ratio(f[_RESPONDED], due),
        rework_rate=_ratio(f[_REWORK], closed),
        satisfaction_rate=_ratio(satisfied, rated),
    )


def composite(terms: Iterable[ScoreTerm], unit_rates: Rates, full_marks: float) -> float | None:
    """Weighted sum of the terms that have a rate, re-weighted to ``full_marks``; None if none has."""
    points = 0.0
    weights = 0.0
    for term in terms:
        rate: float | None = getattr(unit_rates, term.indicator)  # a StrEnum: the field name
        if rate is None:
            continue
        points += term.weight * ((1 - rate) if term.complement else rate)
        weights += term.weight
    if weights == 0:
        return None
    return points * (full_marks / weights)


def _clamp(score: float, rules: ScoringRules) -> float:
    low, high = rules.score_range.min, rules.score_range.max
    return round(min(high, max(low, score)), SCORE_DECIMALS)


def department_score(
    figures: Figures, rules: ScoringRules, unit_rates: Rates | None = None
) -> float | None:
    """30·closure + 30·on-time + 30·(1 − rework) + 10·satisfaction, less deductions (defaults)."""
    unit_rates = unit_rates or rates(figures, rules)
    base = composite(rules.department.terms, unit_rates, rules.score_range.max)
    if base is None:
        return None
    deductions = rules.department.deductions
    base -= deductions.per_rework_order * figures[INDEX["rework"]]
    base -= deductions.per_repeated_verification_failure * figures[INDEX["failed_verification_3x"]]
    return _clamp(base, rules)


def area_score(
    figures: Figures, rules: ScoringRules, unit_rates: Rates | None = None
) -> float | None:
    """The 12345 three rates: 10·response + 50·closure + 40·satisfaction (defaults)."""
    unit_rates = unit_rates or rates(figures, rules)
    base = composite(rules.area.terms, unit_rates, rules.score_range.max)
    return None if base is None else _clamp(base, rules)


def score(
    unit_type: UnitType, figures: Figures, rules: ScoringRules, unit_rates: Rates | None = None
) -> float | None:
    """The composite of a ranked unit type; None for the others and for nothing to score."""
    if unit_type == "department":
        return department_score(figures, rules, unit_rates)
    if unit_type == "area":
        return area_score(figures, rules, unit_rates)
    return None


def band(value: float | None, rules: ScoringRules) -> str | None:
    return None if value is None else rules.band_for(value)


def competition_ranks(scores: Mapping[str, float]) -> dict[str, int]:
    """Rank by score, highest first; ties share a rank and the next rank skips (1, 2, 2, 4)."""
    ordered = sorted(scores.values(), reverse=True)
    first_position: dict[float, int] = {}
    for position, value in enumerate(ordered, start=1):
        first_position.setdefault(value, position)
    return {unit: first_position[value] for unit, value in scores.items()}


@dataclass(frozen=True)
class ScoreRow:
    """One unit's line in a period's table."""

    unit_id: str
    figures: Figures
    rates: Rates
    score: float | None
    band: str | None
    rank: int | None
    bottom: bool
    talk: bool


@dataclass(frozen=True)
class ScoreTable:
    unit_type: UnitType
    rows: tuple[ScoreRow, ...]  # ranked first, by rank then id; unranked after, by id

    @cached_property
    def ranked_units(self) -> int:
        return sum(1 for row in self.rows if row.rank is not None)

    @cached_property
    def last(self) -> frozenset[str]:
        """The units ranked last (all of them when tied for last)."""
        ranks = [row.rank for row in self.rows if row.rank is not None]
        if not ranks:
            return frozenset()
        worst = max(ranks)
        return frozenset(row.unit_id for row in self.rows if row.rank == worst)

    def row(self, unit_id: str) -> ScoreRow | None:
        for row in self.rows:
            if row.unit_id == unit_id:
                return row
        return None


def talk_due(last_by_month: Sequence[frozenset[str]], rules: ScoringRules) -> frozenset[str]:
    """Units last in at least the configured number of the given months (of one quarter)."""
    counts: dict[str, int] = {}
    for last in last_by_month:
        for unit in last:
            counts[unit] = counts.get(unit, 0) + 1
    needed = rules.ranking.talk_after_last_months_in_quarter
    return frozenset(unit for unit, n in counts.items() if n >= needed)


def score_table(
    unit_type: UnitType,
    figures_by_unit: Mapping[str, Figures],
    rules: ScoringRules,
    talk: frozenset[str] = frozenset(),
) -> ScoreTable:
    """Every unit's rates, score, band and rank for one period.

    Only department and area tables are ranked. A unit is in the bottom group
    when fewer than ``ranking.bottom_flagged`` ranked units are strictly below
    it, so units tied at the boundary are all flagged. ``talk`` is the set
    :func:`talk_due` found for the quarter so far.
    """
    ranked = unit_type in ("department", "area")
    scored: dict[str, float] = {}
    partial: dict[str, tuple[Rates, float | None]] = {}
    for unit, figures in figures_by_unit.items():
        unit_rates = rates(figures, rules)
        value = score(unit_type, figures, rules, unit_rates)
        partial[unit] = (unit_rates, value)
        if ranked and value is not None and figures[INDEX["due"]] > 0:
            scored[unit] = value
    ranks = competition_ranks(scored)
    ascending = sorted(scored.values())
    below = {unit: bisect_left(ascending, value) for unit, value in scored.items()}
    rows = [
        ScoreRow(
            unit_id=unit,
            figures=figures_by_unit[unit],
            rates=partial[unit][0],
            score=partial[unit][1],
            band=band(partial[unit][1], rules),
            rank=ranks.get(unit),
            bottom=unit in below and below[unit] < rules.ranking.bottom_flagged,
            talk=unit in talk,
        )
        for unit in figures_by_unit
    ]
    rows.sort(key=lambda r: (r.rank is None, r.rank or 0, r.unit_id))
    return ScoreTable(unit_type=unit_type, rows=tuple(rows))


def with_talk(table: ScoreTable, talk: frozenset[str]) -> ScoreTable:
    """The same table with the talk flags of ``talk`` (found once the quarter's lasts are known)."""
    return ScoreTable(
        unit_type=table.unit_type,
        rows=tuple(replace(row, talk=True) if row.unit_id in talk else row for row in table.rows),
    )


def last_units(
    unit_type: UnitType, figures_by_unit: Mapping[str, Figures], rules: ScoringRules
) -> frozenset[str]:
    """The units ranked last in a table, without building the table (for talk flags)."""
    scored = {
        unit: value
        for unit, figures in figures_by_unit.items()
        if figures[_DUE] > 0 and (value := score(unit_type, figures, rules)) is not None
    }
    if unit_type not in ("department", "area") or not scored:
        return frozenset()
    worst = min(scored.values())
    return frozenset(unit for unit, value in scored.items() if value == worst)
