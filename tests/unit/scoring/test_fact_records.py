"""What save_facts sends for a changed case: only the groups of columns its events changed."""

from __future__ import annotations

import dataclasses

from services.scoring.domain.facts import CaseFact, apply_event
from services.scoring.store import _SAVE_COLUMNS, fact_records
from tests.unit.scoring.story import Story, at


def _fold(fact: CaseFact, events) -> CaseFact:
    for event in events:
        fact = apply_event(fact, event)
    return fact


def _record(before: CaseFact, after: CaseFact) -> dict[str, object]:
    (record,) = fact_records([after], {before.case_id: before}, {before.case_id: "street-x"})
    return record


def _sent(record: dict[str, object]) -> set[str]:
    return set(record) - {"case_id", "m", "area"}


def test_a_new_case_sends_every_group_it_has_and_the_area_always() -> None:
    story = Story("C1")
    story.registered(at(3, 9))
    story.dispatched(at(3, 10))
    empty = CaseFact("C1")
    record = _record(empty, _fold(empty, story.events))
    assert record["area"] == "street-x"
    assert _sent(record) == {
        "registered_at",
        "merged_at",
        "grid_code",
        "area_hint",
        "history",
        "first_dispatched_at",
        "department",
    }
    assert record["m"] == 1 | 2  # intake, history (rework_orders stays 0)


def test_each_event_sends_only_the_groups_it_changed() -> None:
    story = Story("C1")
    story.registered(at(3, 9))
    story.dispatched(at(3, 10))
    fact = _fold(CaseFact("C1"), story.events)
    expected = {
        "accepted": {"history", "first_dispatched_at", "department"},
        # the light is kept in the history, to be judged again by later events
        "overdue": {"overdue_at", "history", "first_dispatched_at", "department"},
        "rated": {"rating", "rated_at", "rating_event_id"},
    }
    for kind, columns in expected.items():
        event = {
            "accepted": lambda: story.accepted(at(3, 10.5)),
            "overdue": lambda: story.overdue(at(3, 17)),
            "rated": lambda: story.rated(at(5, 10), "satisfied"),
        }[kind]()
        after = apply_event(fact, event)
        assert _sent(_record(fact, after)) == columns, kind
        fact = after


def test_a_sent_group_carries_its_values_and_unsent_ones_keep_the_stored_row() -> None:
    """The record's values are the fact's; a column absent from it is kept by the UPDATE."""
    story = Story("C1")
    story.registered(at(3, 9))
    story.dispatched(at(3, 10))
    before = _fold(CaseFact("C1"), story.events)
    closed = story.handled_verified_closed(at(3, 12))
    after = _fold(before, closed)
    record = _record(before, after)
    assert after.closure is not None
    assert record["closed_at"] == after.closure.closed_at
    assert record["handled_at"] == after.closure.handled_at
    assert record["handle_deadline"] == after.closure.handle_deadline
    # the handling is kept in the history too (it can withdraw a light)
    assert _sent(record) == {
        "closed_at",
        "handled_at",
        "handle_deadline",
        "history",
        "first_dispatched_at",
        "department",
    }
    assert record["m"] == 16 | 2  # closure, history


def test_every_column_the_update_writes_belongs_to_one_group() -> None:
    groups = {group for _, group in _SAVE_COLUMNS.values()}
    assert groups == {1, 2, 4, 8, 16, 32}
    assert set(_SAVE_COLUMNS) == {f.name for f in dataclasses.fields(CaseFact)} - {
        "case_id",
        "dispatches",
        "acceptances",
        "handlings",
        "overdues",
        "verification_failures",
        "closure",
        "rating",
    } | {
        "history",
        "closed_at",
        "handled_at",
        "handle_deadline",
        "rating",
        "rated_at",
        "rating_event_id",
        "first_dispatched_at",
        "department",
    }
