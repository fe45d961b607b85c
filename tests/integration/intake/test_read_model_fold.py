"""The read model in Postgres: stepped on from the saved fold in order, folded whole otherwise.

Whatever path a batch takes, the saved state and key must be what a fold of
the whole stored timeline gives.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from services.intake import store
from services.intake.domain.progress import fold_onto
from shared.events.envelope import Envelope, make_event
from shared.events.examples import example_data
from tests.integration.intake.conftest import cell, report

# An offset other than UTC: the incremental path must save what the stored timeline gives back.
CST = timezone(timedelta(hours=8))
#: The whole timeline as stored, read by the checks (the tests count the service's reads).
TIMELINES = store.timelines


async def register(stack, ref, grid_code: str):
    """A new case at the centre of a cell (one cell a test: no duplicates among them)."""
    lat, long = cell(ref, grid_code).centre
    data = report(lat=lat, long=long)
    verdict, _ = await stack.runtime.intake.register_one(data, datetime.now(UTC), "http")
    return data, verdict.event.case_id


def event(case_id: str, event_type: str, at: datetime, **overrides: Any) -> Envelope:
    data = example_data(event_type, case_id=case_id, **overrides)
    return make_event(data, source="test", time=at.astimezone(CST))


async def saved_and_whole(stack, case_id: str) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    async with stack.runtime.transaction() as tx:
        row = await tx.conn.fetchrow(
            "SELECT state::jsonb::text AS state, updated_at, last_step, last_event_id "
            "FROM case_progress WHERE case_id = $1",
            case_id,
        )
        timeline = (await TIMELINES(tx.conn, {case_id}))[case_id]
    whole = fold_onto(None, timeline)
    assert row is not None and whole is not None
    saved = (row["state"], (row["updated_at"], row["last_step"], row["last_event_id"]))
    async with stack.runtime.transaction() as tx:
        # Compared as jsonb's text: one spelling of each document.
        expected = await tx.conn.fetchval("SELECT $1::jsonb::text", whole.state.model_dump_json())
    return saved, (expected, whole.last)


async def test_events_fold_incrementally_in_order_and_whole_when_late(stack, ref, monkeypatch):
    intake = stack.runtime.intake
    data, case_id = await register(stack, ref, "32050800100101")
    t0 = data.reported_at

    whole_folds: list[set[str]] = []

    async def counting(conn, case_ids):
        whole_folds.append(set(case_ids))
        return await TIMELINES(conn, case_ids)

    monkeypatch.setattr(store, "timelines", counting)

    async def deliver(*events: Envelope) -> None:
        async with stack.runtime.transaction() as tx:
            await intake.on_case_events(tx, list(events))

    dispatched = event(case_id, "case.dispatched", t0 + timedelta(minutes=2))
    handled = event(case_id, "case.handled", t0 + timedelta(minutes=30))
    accepted = event(case_id, "case.accepted", t0 + timedelta(minutes=20))

    await deliver(dispatched)  # the first event: on from the registration row
    saved, whole = await saved_and_whole(stack, case_id)
    assert saved == whole and whole_folds == []

    await deliver(handled)  # in order: on from the saved fold
    saved, whole = await saved_and_whole(stack, case_id)
    assert saved == whole and whole_folds == []
    assert '"status": "handled"' in saved[0]

    await deliver(accepted)  # late: before the handled already folded
    saved, whole = await saved_and_whole(stack, case_id)
    assert saved == whole and whole_folds == [{case_id}]
    assert '"status": "handled"' in saved[0]

    await deliver(handled, accepted)  # redelivered: nothing new, nothing folded
    assert await saved_and_whole(stack, case_id) == (saved, whole)
    assert whole_folds == [{case_id}]


@pytest.mark.parametrize("legacy", [True, False])
async def test_a_fold_saved_without_its_key_is_folded_whole(stack, ref, monkeypatch, legacy):
    intake = stack.runtime.intake
    data, case_id = await register(stack, ref, "32050800200101" if legacy else "32050800300201")
    t0 = data.reported_at
    async with stack.runtime.transaction() as tx:
        await intake.on_case_events(
            tx, [event(case_id, "case.dispatched", t0 + timedelta(minutes=2))]
        )
        if legacy:  # as saved before folds kept their key
            await tx.conn.execute(
                "UPDATE case_progress SET last_step = NULL, last_event_id = NULL "
                "WHERE case_id = $1",
                case_id,
            )

    whole_folds: list[set[str]] = []

    async def counting(conn, case_ids):
        whole_folds.append(set(case_ids))
        return await TIMELINES(conn, case_ids)

    monkeypatch.setattr(store, "timelines", counting)
    async with stack.runtime.transaction() as tx:
        await intake.on_case_events(
            tx, [event(case_id, "case.accepted", t0 + timedelta(minutes=20))]
        )
    saved, whole = await saved_and_whole(stack, case_id)
    assert saved == whole and saved[1][1] is not None
    assert whole_folds == ([{case_id}] if legacy else [])


async def test_events_before_the_registration_are_folded_whole_at_registration(stack, ref):
    intake = stack.runtime.intake
    data, case_id = await register(stack, ref, "32050800400101")
    # A replay into an empty store: the dispatch comes first, then the registration.
    async with stack.runtime.transaction() as tx:
        await tx.conn.execute("DELETE FROM cases WHERE case_id = $1", case_id)
        await tx.conn.execute("DELETE FROM duplicate_masters WHERE case_id = $1", case_id)
        await tx.conn.execute("DELETE FROM case_contacts WHERE case_id = $1", case_id)
        await intake.on_case_events(
            tx, [event(case_id, "case.dispatched", data.reported_at + timedelta(minutes=2))]
        )
    await intake.register_one(data, datetime.now(UTC), "http")
    saved, whole = await saved_and_whole(stack, case_id)
    assert saved == whole
    assert '"status": "dispatched"' in saved[0]


async def test_the_timeline_endpoint_answers_in_the_key_order_jsonb_gave(stack, ref):
    """The documents are stored as json now; the endpoint's answer is the one jsonb gave."""
    data, case_id = await register(stack, ref, "32050800100201")
    async with stack.runtime.transaction() as tx:
        await stack.runtime.intake.on_case_events(
            tx, [event(case_id, "case.dispatched", data.reported_at + timedelta(minutes=2))]
        )
    view = (await stack.http.get(f"/v1/cases/{case_id}")).json()
    rows = await stack.fetch(
        "SELECT detail::jsonb::text AS doc FROM cases WHERE case_id = $1 "
        "UNION ALL SELECT data::jsonb::text FROM case_timeline WHERE case_id = $1",
        case_id,
    )
    as_jsonb = [json.loads(r["doc"]) for r in rows]
    answered = [item["data"] for item in view["timeline"]]
    assert [item["type"] for item in view["timeline"]] == ["case.registered", "case.dispatched"]
    assert answered == as_jsonb
    # json.dumps keeps the order of the keys, nested objects (deadlines) included
    assert [json.dumps(d) for d in answered] == [json.dumps(d) for d in as_jsonb]
