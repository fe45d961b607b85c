"""Supervision's store against Postgres: a saved case reads back whole, whichever fields changed,
and timers re-sync whether or not the case had rows in the table."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest

from services.supervision import store
from services.supervision.app import MIGRATIONS
from services.supervision.domain.case import CaseState, Dispatch, evolve
from services.supervision.domain.timers import Timer, overdue_status
from shared.migrations import migrate
from tests.unit.supervision.helpers import T0

HOUR = timedelta(hours=1)


@pytest.fixture
async def conn(prefix: str, database_url: str) -> AsyncIterator[asyncpg.Connection]:
    schema = f"{prefix}supervision"
    connection = await asyncpg.connect(database_url)
    try:
        await migrate(connection, schema, MIGRATIONS)
        await connection.execute(f"SET search_path TO {schema}, public")
        yield connection
    finally:
        await connection.execute("RESET ROLE")
        await connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await connection.close()


def _everything(case_id: str) -> CaseState:
    """A case with every field set (not at its default)."""
    return evolve(
        CaseState(case_id),
        category_code="E0102",
        grid_code="32050810200301",
        component_id="hydrant-7",
        lat=31.2989,
        long=120.5853,
        place_area="gusu",
        registered_at=T0,
        place_key="E0102@hydrant-7",
        rebound_of="older",
        dispatch=Dispatch(
            number=2,
            department="water-supply",
            area="gusu-east",
            dispatched_at=T0 + HOUR,
            verify_limit=timedelta(minutes=30),
            clock="working",
            category_code="E0102",
            grid_code="32050810200302",
        ),
        first_dispatched_at=T0 + HOUR / 2,
        escalated_at=T0 + HOUR / 4,
        sign_for_due=T0 + 2 * HOUR,
        warn_due=T0 + 3 * HOUR,
        handle_due=T0 + 4 * HOUR,
        accepted_at=T0 + HOUR / 3,
        handled_at=T0 + HOUR / 5,
        handle_deadline_at_handled=T0 + 5 * HOUR,
        verify_due=T0 + 6 * HOUR,
        verified_at=T0 + HOUR / 6,
        failed_at=T0 + HOUR / 7,
        failure_reason="still leaking",
        rework_pending=True,
        rework_count=1,
        sign_for_overdue_at=T0 + 2 * HOUR,
        warned_at=T0 + 3 * HOUR,
        handle_overdue_at=T0 + 4 * HOUR,
        verify_overdue_at=T0 + 7 * HOUR,
        notice_level=2,
        next_notice_due=T0 + 8 * HOUR,
        closed_at=T0 + 12 * HOUR,
        lookback_due=T0 + 9 * HOUR,
        lookback_done=True,
        parked_at=T0 + 10 * HOUR,
        parked_total=timedelta(minutes=5),
    )


async def _red(conn: asyncpg.Connection, case_id: str) -> tuple[object, object]:
    row = await conn.fetchrow(
        "SELECT overdue_timer, overdue_deadline FROM cases WHERE case_id = $1", case_id
    )
    assert row is not None
    return row["overdue_timer"], row["overdue_deadline"]


async def test_saved_cases_read_back_whole_whichever_fields_changed(
    conn: asyncpg.Connection,
) -> None:
    before = await store.lock_cases(conn, ["full", "placed"])
    assert before == {"full": CaseState("full"), "placed": CaseState("placed")}
    full = _everything("full")
    assert all(
        getattr(full, f) != getattr(CaseState("x"), f) for f in full.__dict__ if f != "case_id"
    )
    placed = evolve(CaseState("placed"), category_code="E0103", grid_code="g", registered_at=T0)
    await store.save_cases(conn, [full, placed], before)
    assert await store.find_case(conn, "full") == full
    assert await store.find_case(conn, "placed") == placed
    assert await _red(conn, "full") == (None, None)  # closed

    # Two fields of one case, which turns it red: the rest stays as saved.
    before = await store.lock_cases(conn, ["full", "placed"])
    reopened = evolve(full, accepted_at=T0 + 11 * HOUR, closed_at=None)
    await store.save_cases(conn, [reopened], before)
    assert await store.find_case(conn, "full") == reopened
    assert await store.find_case(conn, "placed") == placed
    red = overdue_status(reopened)
    assert red is not None
    assert await _red(conn, "full") == (red.timer, red.deadline)
    assert await _red(conn, "placed") == (None, None)
    cleared = evolve(CaseState("full"), category_code="E0102")
    await store.save_cases(conn, [cleared], await store.lock_cases(conn, ["full"]))
    assert await store.find_case(conn, "full") == cleared
    assert await _red(conn, "full") == (None, None)


async def test_timers_resync_with_or_without_rows_to_clear(conn: asyncpg.Connection) -> None:
    case = CaseState("c1")

    def timer(kind: str, hours: int) -> Timer:
        return Timer(kind, T0 + hours * HOUR, T0 + hours * HOUR, 1)  # type: ignore[arg-type]

    async def table() -> list[tuple[str, object]]:
        return [(r["kind"], r["due_at"]) for r in await store.case_timers(conn, "c1")]

    await store.sync_timers(conn, [(case, [timer("sign_for", 1), timer("handle", 3)])], clear=[])
    assert await table() == [("sign_for", T0 + HOUR), ("handle", T0 + 3 * HOUR)]
    # Said to have none, yet it has: the new ones overwrite what they share, nothing fails.
    await store.sync_timers(conn, [(case, [timer("handle", 4)])], clear=[])
    assert await table() == [("sign_for", T0 + HOUR), ("handle", T0 + 4 * HOUR)]
    await store.sync_timers(conn, [(case, [timer("verify", 5)])], clear=["c1"])
    assert await table() == [("verify", T0 + 5 * HOUR)]
    await store.sync_timers(conn, [(case, [])])
    assert await table() == []


async def test_a_case_another_transaction_is_creating_is_waited_for_and_read_as_it_committed(
    conn: asyncpg.Connection, database_url: str
) -> None:
    schema = await conn.fetchval("SELECT current_schema()")
    other = await asyncpg.connect(database_url, server_settings={"search_path": schema})
    try:
        creating = other.transaction()
        await creating.start()
        await other.execute("INSERT INTO cases (case_id, category_code) VALUES ('new', 'E0102')")
        async with conn.transaction():
            locking = asyncio.create_task(store.lock_cases(conn, ["new", "fresh"]))
            await asyncio.sleep(0.3)
            assert not locking.done()  # waits on the uncommitted row, does not skip it
            await creating.commit()
            states = await asyncio.wait_for(locking, timeout=5)
            assert states == {
                "new": CaseState("new", category_code="E0102"),
                "fresh": CaseState("fresh"),
            }
            # Both rows are now this transaction's: the other one cannot lock them.
            with pytest.raises(asyncpg.LockNotAvailableError):
                await other.execute("SET lock_timeout = '100ms'")
                await other.fetch("SELECT 1 FROM cases WHERE case_id = 'new' FOR UPDATE")
    finally:
        await other.close()
