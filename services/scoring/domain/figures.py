"""The counts kept per unit and period, and the keys they are kept under.

A unit's figures for a period are one vector of counts. The cohort counts
(``due`` .. ``failed_verification_3x``) describe the cases first dispatched in
the period; ``rebounds`` counts bounce-backs raised in it; the activity
counts (``registered`` .. ``became_overdue``) say what happened on a day and
are kept on day rows only, for the daily report (日报备).

Figures are kept as sums of per-case contributions, so they can be moved
exactly: a change to a case subtracts its old contribution and adds its new
one (:func:`changes`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date
from functools import lru_cache
from operator import add
from typing import Literal, NamedTuple, get_args

from shared.periods import PeriodType, periods_of_day

UnitType = Literal["department", "area", "community", "grid", "district"]
UNIT_TYPES: tuple[UnitType, ...] = get_args(UnitType)
#: Unit types that get a composite score and a rank.
RANKED_UNIT_TYPES: tuple[UnitType, ...] = ("department", "area")
#: Unit types published on ``scores`` (the district is the totals row, kept for reports).
PUBLISHED_UNIT_TYPES: tuple[UnitType, ...] = ("department", "area", "community", "grid")

COHORT = (
    "due",
    "closed",
    "on_time",
    "overdue",
    "rework",
    "responded",
    "rated",
    "satisfied",
    "basically_satisfied",
    "failed_verification_3x",
)
ACTIVITY = ("registered", "merged", "rejected", "closures", "became_overdue")
#: Every count, in storage order.
FIGURES: tuple[str, ...] = (*COHORT, "rebounds", *ACTIVITY)
INDEX: dict[str, int] = {name: i for i, name in enumerate(FIGURES)}

Figures = tuple[int, ...]
ZERO: Figures = (0,) * len(FIGURES)


class UnitKey(NamedTuple):
    """Where a vector of figures is kept; fields in the order rows are locked and sorted."""

    period_type: PeriodType
    period: str
    unit_type: UnitType
    unit_id: str


UnitRef = tuple[UnitType, str]


class Share(NamedTuple):
    """The same counts added to each of some units, on a day's row or on every period's.

    Kept by day and unit rather than by row: the periods are filled in once
    per batch (:func:`rows`), not once per case.
    """

    day: date  # local (Asia/Shanghai) day
    every_period: bool  # the day and the week, month, quarter, year holding it; else the day
    units: tuple[UnitRef, ...]
    counts: tuple[tuple[int, int], ...]  # (index in FIGURES, count); zeros left out

    @property
    def where(self) -> tuple[date, bool, tuple[UnitRef, ...]]:
        return self.day, self.every_period, self.units


#: A case's whole contribution, in named parts (the cohort, the day's closures, ...), so that
#: a change to the case touches only the parts and rows that change.
Contribution = dict[str, Share]
#: Counts gathered by (day, every period?, unit) before they are spread over the periods.
Totals = dict[tuple[date, bool, UnitRef], list[int]]


def figures(**counts: int) -> Figures:
    """A vector with the named counts set and the others zero."""
    unknown = set(counts) - set(FIGURES)
    if unknown:
        raise ValueError(f"unknown figures: {', '.join(sorted(unknown))}")
    return tuple(counts.get(name, 0) for name in FIGURES)


def as_dict(vector: Figures) -> dict[str, int]:
    return dict(zip(FIGURES, vector, strict=True))


def share(
    day: date, every_period: bool, units: tuple[UnitRef, ...], counts: Mapping[str, int]
) -> Share:
    return Share(day, every_period, units, tuple((INDEX[k], n) for k, n in counts.items() if n))


def changes(before: Mapping[str, Share], after: Mapping[str, Share]) -> Iterator[Share]:
    """What to add to the figures so that ``before``'s counts become ``after``'s.

    A part that stays on the same rows changes by the difference of its
    counts; a part that moves (a redispatch to another department) leaves its
    old rows and arrives whole at the new ones.
    """
    for part in before.keys() | after.keys():
        old, new = before.get(part), after.get(part)
        # Field by field rather than through ``where``: two tuples fewer per part, and the units
        # of a case's before and after are mostly the very same tuple.
        if (
            old is not None
            and new is not None
            and old.day == new.day
            and old.every_period == new.every_period
            and old.units == new.units
        ):
            if old.counts == new.counts:
                continue
            diff = dict(new.counts)
            for index, n in old.counts:
                diff[index] = diff.get(index, 0) - n
            counts = tuple((i, n) for i, n in diff.items() if n)
            if counts:
                yield new._replace(counts=counts)
            continue
        if old is not None and old.counts:
            yield old._replace(counts=tuple((i, -n) for i, n in old.counts))
        if new is not None and new.counts:
            yield new


def accumulate(total: Totals, part: Share) -> None:
    """Add ``part``'s counts to ``total``, in place."""
    width = len(FIGURES)
    for unit in part.units:
        key = (part.day, part.every_period, unit)
        row = total.get(key)
        if row is None:
            row = total[key] = [0] * width
        for index, n in part.counts:
            row[index] += n


@lru_cache(maxsize=4096)
def _periods(day: date, every_period: bool) -> tuple[tuple[PeriodType, str], ...]:
    """(type, label) of the periods a day's counts go to: the day's own, or every one holding it."""
    periods = periods_of_day(day)
    return tuple((p.type, p.label) for p in (periods if every_period else periods[:1]))


def rows(total: Totals) -> dict[UnitKey, Figures]:
    """``total`` spread over its periods: the vector to add to each unit-period row."""
    out: dict[UnitKey, list[int]] = {}
    new = tuple.__new__  # a NamedTuple's own __new__ is one more Python call per key
    for (day, every_period, (unit_type, unit_id)), counts in total.items():
        if not any(counts):
            continue
        for period_type, label in _periods(day, every_period):
            key = new(UnitKey, (period_type, label, unit_type, unit_id))
            row = out.get(key)
            out[key] = counts if row is None else list(map(add, row, counts))
    return {key: tuple(row) for key, row in out.items() if any(row)}


def expand(contribution: Mapping[str, Share]) -> dict[UnitKey, Figures]:
    """A contribution as full vectors per row (for reading and testing)."""
    total: Totals = {}
    for part in contribution.values():
        accumulate(total, part)
    return rows(total)
