"""The read model folds incrementally: stepping on from a saved fold gives the whole fold's state.

Intake saves a case's state with the sort key of the last timeline entry in
it and steps over new entries from there when they all sort after that key;
otherwise it folds the whole timeline again. These properties hold that to
the whole fold, over random timelines (ties in event time included) and any
split of them into arrivals.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services.intake.domain.progress import (
    STEP_ORDER,
    Folded,
    TimelineEntry,
    fold,
    fold_onto,
    registration_folded,
)
from shared.events.examples import example_data

T0 = datetime(2026, 11, 17, 9, 0, tzinfo=UTC)
CASE = "01M7KGZ4R0AAAAAAAAAAAAAAC1"
MASTER = "01M7KGZ4R0AAAAAAAAAAAAAAM1"
REGISTRATIONS = ("case.registered", "case.merged")
FOLLOWED = tuple(t for t in STEP_ORDER if t not in REGISTRATIONS)
_NUMBERED = {
    "case.dispatched",
    "case.redispatched",
    "case.warned",
    "case.overdue",
    "case.notice_issued",
    "case.closed",
}
_REWORK = {"case.dispatched", "case.redispatched", "case.rework_ordered", "case.closed"}


@st.composite
def followed_entries(draw: st.DrawFn, max_size: int = 14) -> list[TimelineEntry]:
    """Events of one case after its registration: any types, few distinct instants (so ties)."""
    entries = []
    for i in range(draw(st.integers(0, max_size))):
        event_type = draw(st.sampled_from(FOLLOWED))
        overrides: dict[str, Any] = {"case_id": CASE}
        if event_type in _NUMBERED:
            overrides["dispatch_number"] = draw(st.integers(1, 3))
        if event_type == "case.notice_issued":
            overrides["level"] = draw(st.integers(1, 3))
        if event_type in ("case.verified", "case.verification_failed"):
            overrides["lookback"] = draw(st.booleans())
        if event_type in _REWORK:
            overrides["rework_count"] = draw(st.integers(event_type == "case.rework_ordered", 2))
        minutes = draw(st.integers(0, 12))
        entries.append(
            TimelineEntry(
                # A random prefix, so ids order entries of one instant and step differently
                # from the order they were drawn in; the index keeps them unique.
                event_id=f"{draw(st.integers(0, 99)):02d}-{i:02d}",
                occurred_at=T0 + timedelta(minutes=minutes),
                source="test",
                data=example_data(event_type, **overrides),
            )
        )
    return entries


def registration(merged: bool, minutes: int, area: str) -> TimelineEntry:
    overrides: dict[str, Any] = {"case_id": CASE, "area": area}
    if merged:
        overrides["master_case_id"] = MASTER
    event_type = "case.merged" if merged else "case.registered"
    return TimelineEntry(
        event_id=f"00-{event_type}",
        occurred_at=T0 + timedelta(minutes=minutes),
        source="intake",
        data=example_data(event_type, **overrides),
    )


def same(a: Folded | None, b: Folded | None) -> bool:
    """Equal, and saved as the same JSON (offsets of times included)."""
    if a is None or b is None:
        return a is b
    return a.last == b.last and a.state.model_dump_json() == b.state.model_dump_json()


def in_batches(entries: list[TimelineEntry], cuts: list[int]) -> list[list[TimelineEntry]]:
    bounds = [0, *sorted(c % (len(entries) + 1) for c in cuts), len(entries)]
    return [entries[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


@settings(max_examples=300, deadline=None)
@given(followed_entries(), st.lists(st.integers(0, 100), max_size=4), st.randoms())
def test_in_order_arrivals_fold_incrementally_to_the_whole_fold(entries, cuts, rnd):
    """Any split of the timeline into batches that arrive in event-time order, each batch shuffled."""
    whole = fold_onto(None, entries)
    ordered = sorted(entries, key=TimelineEntry.sort_key)
    folded: Folded | None = None
    for batch in in_batches(ordered, cuts):
        rnd.shuffle(batch)
        stepped = fold_onto(folded, batch)
        assert stepped is not None or folded is None and not batch
        folded = stepped
    assert same(folded, whole)
    assert (folded.state if folded else fold([])) == fold(entries)


@settings(max_examples=300, deadline=None)
@given(followed_entries(), st.lists(st.booleans(), max_size=14))
def test_an_arrival_sorting_before_the_fold_takes_the_whole_fold(entries, early):
    """Any split into what was folded first and what came next: stepped on only when in order."""
    first = [e for e, f in zip(entries, early + [False] * len(entries), strict=False) if f]
    then = [e for e in entries if e not in first]
    folded = fold_onto(None, first)
    stepped = fold_onto(folded, then)
    late = (
        folded is not None
        and bool(then)
        and min(e.sort_key() for e in then) < max(e.sort_key() for e in first)
    )
    if late:
        assert stepped is None  # the caller folds the whole timeline again
    else:
        assert same(stepped, fold_onto(None, entries))


@settings(max_examples=200, deadline=None)
@given(
    st.booleans(),
    st.integers(0, 12),
    st.sampled_from(["street-pingjiang", "street-canglang"]),
    followed_entries(max_size=8),
)
def test_a_fold_started_from_the_registration_row_is_the_whole_fold(merged, at, area, entries):
    reg = registration(merged, at, area)
    start = registration_folded(
        merged=merged,
        area=area,
        master_case_id=MASTER if merged else None,
        registered_at=reg.occurred_at,
        event_id=reg.event_id,
    )
    assert same(start, fold_onto(None, [reg]))
    stepped = fold_onto(start, entries)
    if any(e.sort_key() < reg.sort_key() for e in entries):
        assert stepped is None
    else:
        assert same(stepped, fold_onto(None, [reg, *entries]))


def test_a_late_dispatch_is_not_stepped_over():
    """A concrete case: the accepted came first, the dispatch before it arrives after."""
    dispatched, accepted = (
        TimelineEntry(
            event_id=f"e-{t}",
            occurred_at=T0 + timedelta(minutes=m),
            source="test",
            data=example_data(t, case_id=CASE),
        )
        for t, m in (("case.dispatched", 2), ("case.accepted", 20))
    )
    folded = fold_onto(None, [accepted])
    assert folded is not None
    assert fold_onto(folded, [dispatched]) is None
    whole = fold_onto(None, [accepted, dispatched])
    assert whole is not None and whole.state.status == "accepted"
    assert whole.state.department is not None
