"""Supervision's SQL: case rows, the timers table, bounce-backs and the key-problem list.

Batch-shaped on purpose: a consumed batch or a timer firing loads, locks and
saves all its cases in a handful of statements (arrays through ``unnest``),
whatever the batch size.

Locking, so consumers and any number of schedulers never deadlock: a
consumer locks its case rows (waiting, in case-id order) before touching
their timers; a scheduler claims due timers and then the case rows with
``SKIP LOCKED`` — it never waits on a row, so a consumer waiting on a timer
the scheduler holds is released at the scheduler's commit.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import TYPE_CHECKING, Any, cast

import asyncpg

from services.supervision.domain.case import CaseState, Dispatch, restore
from services.supervision.domain.rebound import ClosedCase, Place, Search
from services.supervision.domain.rules import ClockKind
from services.supervision.domain.timers import Timer, TimerName, overdue_status

if TYPE_CHECKING:
    from shared.db import Connection

# (column, SQL type) of the cases table, in the order rows are written.
_CASE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("case_id", "text"),
    ("category_code", "text"),
    ("grid_code", "text"),
    ("component_id", "text"),
    ("lat", "float8"),
    ("long", "float8"),
    ("place_area", "text"),
    ("registered_at", "timestamptz"),
    ("place_key", "text"),
    ("rebound_of", "text"),
    ("dispatch_number", "int4"),
    ("department", "text"),
    ("area", "text"),
    ("dispatched_at", "timestamptz"),
    ("verify_limit", "interval"),
    ("clock", "text"),
    ("dispatch_category", "text"),
    ("dispatch_grid", "text"),
    ("first_dispatched_at", "timestamptz"),
    ("escalated_at", "timestamptz"),
    ("sign_for_due", "timestamptz"),
    ("warn_due", "timestamptz"),
    ("handle_due", "timestamptz"),
    ("accepted_at", "timestamptz"),
    ("handled_at", "timestamptz"),
    ("handle_deadline_at_handled", "timestamptz"),
    ("verify_due", "timestamptz"),
    ("verified_at", "timestamptz"),
    ("failed_at", "timestamptz"),
    ("failure_reason", "text"),
    ("rework_pending", "bool"),
    ("rework_count", "int4"),
    ("sign_for_overdue_at", "timestamptz"),
    ("warned_at", "timestamptz"),
    ("handle_overdue_at", "timestamptz"),
    ("verify_overdue_at", "timestamptz"),
    ("notice_level", "int4"),
    ("next_notice_due", "timestamptz"),
    ("closed_at", "timestamptz"),
    ("lookback_due", "timestamptz"),
    ("lookback_done", "bool"),
    ("parked_at", "timestamptz"),
    ("parked_total", "interval"),
    ("overdue_timer", "text"),
    ("overdue_deadline", "timestamptz"),
)
_NAMES = [name for name, _ in _CASE_COLUMNS]
# What firing a timer changes (domain.timers.LIGHT_FIELDS) and the derived red light.
_LIGHT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("case_id", "text"),
    ("sign_for_overdue_at", "timestamptz"),
    ("warned_at", "timestamptz"),
    ("handle_overdue_at", "timestamptz"),
    ("verify_overdue_at", "timestamptz"),
    ("notice_level", "int4"),
    ("next_notice_due", "timestamptz"),
    ("lookback_done", "bool"),
    ("overdue_timer", "text"),
    ("overdue_deadline", "timestamptz"),
)
_UPDATE_LIGHTS = (
    "UPDATE cases c SET "  # noqa: S608 (fixed column names)
    + ", ".join(f"{name} = u.{name}" for name, _ in _LIGHT_COLUMNS[1:])
    + ", updated_at = now() FROM unnest("
    + ", ".join(f"${i}::{sql_type}[]" for i, (_, sql_type) in enumerate(_LIGHT_COLUMNS, 1))
    + ") AS u("
    + ", ".join(name for name, _ in _LIGHT_COLUMNS)
    + ") WHERE c.case_id = u.case_id"
)
# Every column but the key, each from its own array: a NULL array (a column no case of
# the batch changed) keeps the column's value.
_UPDATE_CASES = (
    "UPDATE cases c SET "  # noqa: S608 (fixed column names)
    + ", ".join(
        f"{name} = CASE WHEN ${i}::{sql_type}[] IS NULL THEN c.{name} ELSE u.{name} END"
        for i, (name, sql_type) in enumerate(_CASE_COLUMNS[1:], 2)
    )
    + ", updated_at = now() FROM unnest("
    + ", ".join(f"${i}::{sql_type}[]" for i, (_, sql_type) in enumerate(_CASE_COLUMNS, 1))
    + ") AS u("
    + ", ".join(_NAMES)
    + ") WHERE c.case_id = u.case_id"
)
_SELECT_CASES = f"SELECT {', '.join(_NAMES)} FROM cases"  # noqa: S608 (fixed column names)


@dataclass(frozen=True)
class DueTimer:
    """A timer row the scheduler claimed."""

    case_id: str
    kind: str
    level: int
    due_at: datetime


_DISPATCH_COLUMNS = (
    "dispatch_number",
    "department",
    "area",
    "dispatched_at",
    "verify_limit",
    "clock",
    "dispatch_category",
    "dispatch_grid",
)
_DERIVED_COLUMNS = ("overdue_timer", "overdue_deadline")


def _state(row: asyncpg.Record) -> CaseState:
    values: dict[str, Any] = dict(row)
    number, department, area, dispatched_at, verify_limit, clock, category, grid = (
        values.pop(name) for name in _DISPATCH_COLUMNS
    )
    for name in _DERIVED_COLUMNS:
        del values[name]
    values["dispatch"] = (
        None
        if number is None
        else Dispatch(
            number=number,
            department=department,
            area=area,
            dispatched_at=dispatched_at,
            verify_limit=verify_limit,
            clock=cast(ClockKind, clock),
            category_code=category,
            grid_code=grid,
        )
    )
    return restore(values)


def _dispatch_value(attribute: str) -> Callable[[CaseState], Any]:
    def value(state: CaseState) -> Any:
        dispatch = state.dispatch
        return getattr(dispatch, attribute) if dispatch is not None else None

    return value


def _red_value(attribute: str) -> Callable[[CaseState], Any]:
    def value(state: CaseState) -> Any:
        red = overdue_status(state)
        return getattr(red, attribute) if red is not None else None

    return value


# The case field each column comes from, where the names differ: a dispatch's columns.
_FIELD_OF = {name: "dispatch" for name in _DISPATCH_COLUMNS}
# The attribute of the dispatch in force each dispatch column comes from.
_DISPATCH_ATTRIBUTES = {
    "dispatch_number": "number",
    "department": "department",
    "area": "area",
    "dispatched_at": "dispatched_at",
    "verify_limit": "verify_limit",
    "clock": "clock",
    "dispatch_category": "category_code",
    "dispatch_grid": "grid_code",
}


def _reader(column: str) -> Callable[[CaseState], Any]:
    """How the value of ``column`` is read from a case."""
    if column in _DISPATCH_ATTRIBUTES:
        return _dispatch_value(_DISPATCH_ATTRIBUTES[column])
    if column in _DERIVED_COLUMNS:
        return _red_value("timer" if column == "overdue_timer" else "deadline")
    return attrgetter(column)


_COLUMN_READERS = [(name, _reader(name)) for name in _NAMES[1:]]


# -- cases ---------------------------------------------------------------------------


async def lock_cases(conn: Connection, case_ids: Iterable[str]) -> dict[str, CaseState]:
    """Lock (creating if new) the rows of ``case_ids``, waiting for them, in id order.

    The rows there are locked first, then the missing ones are inserted (a
    row this transaction inserted is its own until it commits): one statement
    when all exist, as for the dispatches of registered cases, two when some
    are new, and a third only for rows another transaction inserted meanwhile.
    Both steps go in id order, so two consumers never wait on each other in a
    circle.
    """
    ids = sorted(set(case_ids))
    rows = await conn.fetch(
        f"{_SELECT_CASES} WHERE case_id = ANY($1::text[]) ORDER BY case_id FOR UPDATE", ids
    )
    states = {row["case_id"]: _state(row) for row in rows}
    missing = [case_id for case_id in ids if case_id not in states]
    if not missing:
        return states
    created: list[str] = await conn.fetchval(
        "WITH new AS (INSERT INTO cases (case_id) SELECT unnest($1::text[]) "
        "ON CONFLICT DO NOTHING RETURNING case_id) SELECT coalesce(array_agg(case_id), '{}') "
        "FROM new",
        missing,
    )
    for case_id in created:
        states[case_id] = CaseState(case_id)  # the columns' defaults are the state's
    raced = sorted(set(missing).difference(created))
    if raced:
        rows = await conn.fetch(
            f"{_SELECT_CASES} WHERE case_id = ANY($1::text[]) ORDER BY case_id FOR UPDATE", raced
        )
        states.update((row["case_id"], _state(row)) for row in rows)
    return states


async def lock_cases_nowait(conn: Connection, case_ids: Iterable[str]) -> dict[str, CaseState]:
    """Lock the rows of ``case_ids`` that nobody else holds; the others are left out."""
    rows = await conn.fetch(
        f"{_SELECT_CASES} WHERE case_id = ANY($1::text[]) FOR UPDATE SKIP LOCKED",
        list(set(case_ids)),
    )
    return {row["case_id"]: _state(row) for row in rows}


async def missing_cases(conn: Connection, case_ids: Iterable[str]) -> set[str]:
    """Those of ``case_ids`` that have no row at all."""
    ids = list(set(case_ids))
    rows = await conn.fetch("SELECT case_id FROM cases WHERE case_id = ANY($1::text[])", ids)
    return set(ids) - {row["case_id"] for row in rows}


async def save_cases(
    conn: Connection, states: Sequence[CaseState], before: Mapping[str, CaseState]
) -> None:
    """Write the fields of ``states`` that differ from ``before`` (their rows, locked).

    Only the columns some case of the batch changed go to Postgres (the
    others as NULL arrays, which leave the column as it is): a registration
    changes its place, a dispatch a dozen instants, and sending all
    forty-five columns for each costs the service encoding and Postgres
    decoding of arrays that say nothing new.
    """
    if not states:
        return
    changed: set[str] = set()
    derived = False
    for state in states:
        old = before[state.case_id]
        new_fields, old_fields = state.__dict__, old.__dict__
        for name, value in new_fields.items():
            # Mostly the very same object (evolve copies what it does not change).
            was = old_fields[name]
            if was is not value and name not in changed and was != value:
                changed.add(name)
        if not derived and overdue_status(state) != overdue_status(old):
            derived = True
    ids = [state.case_id for state in states]
    values: list[list[Any] | None] = [
        [read(state) for state in states]
        if _FIELD_OF.get(name, name) in changed or (derived and name in _DERIVED_COLUMNS)
        else None
        for name, read in _COLUMN_READERS
    ]
    if any(column is not None for column in values):
        await conn.execute(_UPDATE_CASES, ids, *values)


async def save_lights(conn: Connection, states: Sequence[CaseState]) -> None:
    """Save what firing timers changed: the lights shown, the ladder, the look-back mark.

    Narrower than :func:`save_cases` on purpose: the scheduler writes a
    thousand cases per transaction, and firing changes only these fields.
    """
    if not states:
        return
    rows = []
    for state in states:
        red = overdue_status(state)
        rows.append(
            (
                state.case_id,
                state.sign_for_overdue_at,
                state.warned_at,
                state.handle_overdue_at,
                state.verify_overdue_at,
                state.notice_level,
                state.next_notice_due,
                state.lookback_done,
                red.timer if red else None,
                red.deadline if red else None,
            )
        )
    await conn.execute(_UPDATE_LIGHTS, *[list(column) for column in zip(*rows, strict=True)])


async def all_cases(conn: Connection) -> list[CaseState]:
    """Every case supervision follows: for audits (ops.faults), never on the hot path."""
    return [_state(row) for row in await conn.fetch(_SELECT_CASES)]


async def find_case(conn: Connection, case_id: str) -> CaseState | None:
    row = await conn.fetchrow(f"{_SELECT_CASES} WHERE case_id = $1", case_id)
    return _state(row) if row is not None else None


# -- timers --------------------------------------------------------------------------


_INSERT_TIMERS = (
    "INSERT INTO timers (case_id, kind, level, due_at, deadline, dispatch_number, paused) "
    "SELECT * FROM unnest($1::text[], $2::text[], $3::int2[], $4::timestamptz[], "
    "$5::timestamptz[], $6::int4[], $7::bool[])"
)
_UPSERT_TIMERS = (
    _INSERT_TIMERS + " ON CONFLICT (case_id, kind, level) DO UPDATE SET due_at = EXCLUDED.due_at, "
    "deadline = EXCLUDED.deadline, dispatch_number = EXCLUDED.dispatch_number, "
    "paused = EXCLUDED.paused, armed_at = EXCLUDED.armed_at"
)


async def sync_timers(
    conn: Connection,
    cases: Sequence[tuple[CaseState, Sequence[Timer]]],
    *,
    clear: Collection[str] | None = None,
) -> None:
    """Make the timers table say what the cases say: exactly their armed timers.

    ``cases`` pairs each case with ``domain.timers.armed_timers`` of it.
    ``clear`` names the cases whose rows may be there (all of them if None):
    a case that had no timer armed (a first dispatch) has no rows to delete,
    and skipping the delete saves a statement. Its timers are upserted all
    the same, so a row left behind the state's back is overwritten, never a
    unique violation.
    """
    if not cases:
        return
    gone = [s.case_id for s, _ in cases] if clear is None else list(clear)
    if gone:
        await conn.execute("DELETE FROM timers WHERE case_id = ANY($1::text[])", gone)
    rows = [
        (s.case_id, t.kind, t.level, t.due_at, t.deadline, t.dispatch_number, s.is_parked)
        for s, timers in cases
        for t in timers
    ]
    if rows:
        await conn.execute(
            _INSERT_TIMERS if len(gone) == len(cases) else _UPSERT_TIMERS,
            *[list(column) for column in zip(*rows, strict=True)],
        )


async def claim_due(conn: Connection, now: datetime, limit: int) -> list[DueTimer]:
    """Claim up to ``limit`` timers due at ``now`` that no other instance holds, earliest first."""
    rows = await conn.fetch(
        "SELECT case_id, kind, level, due_at FROM timers "
        "WHERE NOT paused AND due_at <= $1 ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED",
        now,
        limit,
    )
    return [DueTimer(r["case_id"], r["kind"], r["level"], r["due_at"]) for r in rows]


async def drop_timers(conn: Connection, timers: Sequence[DueTimer]) -> None:
    """Delete claimed timer rows that belong to no case (nothing to fire)."""
    if timers:
        await conn.execute(
            "DELETE FROM timers t USING unnest($1::text[], $2::text[], $3::int2[]) "
            "AS gone(case_id, kind, level) "
            "WHERE t.case_id = gone.case_id AND t.kind = gone.kind AND t.level = gone.level",
            [t.case_id for t in timers],
            [t.kind for t in timers],
            [t.level for t in timers],
        )


async def save_read_marks(
    conn: Connection, partitions: Sequence[tuple[str, int]], as_of: datetime
) -> None:
    """Everything ``partitions`` held at ``as_of`` is applied (a mark never moves back)."""
    if partitions:
        await conn.execute(
            "INSERT INTO read_marks (topic, partition, as_of) "
            "SELECT t, p, $3 FROM unnest($1::text[], $2::int[]) AS m(t, p) "
            "ON CONFLICT (topic, partition) DO UPDATE "
            "SET as_of = greatest(read_marks.as_of, EXCLUDED.as_of)",
            [t for t, _ in partitions],
            [p for _, p in partitions],
            as_of,
        )


async def read_marks(conn: Connection) -> dict[tuple[str, int], datetime]:
    """Each partition's read mark, whoever holds it."""
    rows = await conn.fetch("SELECT topic, partition, as_of FROM read_marks")
    return {(r["topic"], r["partition"]): r["as_of"] for r in rows}


async def next_due(conn: Connection) -> datetime | None:
    """The earliest due instant of any running timer (parked cases' timers wait)."""
    due: datetime | None = await conn.fetchval("SELECT min(due_at) FROM timers WHERE NOT paused")
    return due


async def case_timers(conn: Connection, case_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT kind, level, due_at, deadline, dispatch_number, paused, armed_at "
        "FROM timers WHERE case_id = $1 ORDER BY due_at, kind, level",
        case_id,
    )


async def timers_by_kind(conn: Connection) -> dict[TimerName, int]:
    rows = await conn.fetch("SELECT kind, count(*) AS n FROM timers GROUP BY kind")
    return {cast(TimerName, r["kind"]): r["n"] for r in rows}


# -- the overdue list ------------------------------------------------------------------


async def overdue_cases(
    conn: Connection,
    *,
    department: str | None,
    area: str | None,
    timer: str | None,
    limit: int,
    offset: int,
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT case_id, department, area, overdue_timer, overdue_deadline, notice_level, "
        "dispatch_number, category_code, grid_code, parked_at IS NOT NULL AS parked "
        "FROM cases WHERE overdue_timer IS NOT NULL "
        "AND ($1::text IS NULL OR department = $1) AND ($2::text IS NULL OR area = $2) "
        "AND ($3::text IS NULL OR overdue_timer = $3) "
        "ORDER BY overdue_deadline, case_id LIMIT $4 OFFSET $5",
        department,
        area,
        timer,
        limit,
        offset,
    )


async def overdue_by_department(conn: Connection) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT department, count(*) AS n FROM cases "
        "WHERE overdue_timer IS NOT NULL GROUP BY department"
    )
    return {r["department"]: r["n"] for r in rows}


# -- bounce-backs ----------------------------------------------------------------------


async def closed_candidates(
    conn: Connection, searches: Sequence[Search]
) -> dict[str, list[ClosedCase]]:
    """Closed cases of each search's category closed in its window near it, by new case id.

    One statement for a whole batch of registrations: a lookup per case was a
    round trip per case, and almost every one of them finds nothing. Each
    search probes the closed-cases index by category and closing instant.
    """
    if not searches:
        return {}
    columns: list[list[Any]] = [[] for _ in range(10)]
    for search in searches:
        place = search.place
        min_lat, min_lon, max_lat, max_lon = search.box if search.box else (None,) * 4
        for column, value in zip(
            columns,
            (
                place.case_id,
                place.category_code,
                place.grid_code,
                place.component_id,
                search.since,
                search.until,
                min_lat,
                max_lat,
                min_lon,
                max_lon,
            ),
            strict=True,
        ):
            column.append(value)
    rows = await conn.fetch(
        "SELECT q.case_id AS new_case_id, c.* "
        "FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], "
        "$6::timestamptz[], $7::float8[], $8::float8[], $9::float8[], $10::float8[]) "
        "AS q(case_id, category_code, grid_code, component_id, since, until, "
        "min_lat, max_lat, min_lon, max_lon) "
        # Lateral, so each search probes the index as a lookup of its own would; a join
        # may hash every closed case instead.
        "CROSS JOIN LATERAL (SELECT case_id, category_code, grid_code, lat, long, "
        "component_id, coalesce(place_key, category_code || '@' || grid_code) AS place_key, "
        "closed_at, department FROM cases "
        "WHERE category_code = q.category_code AND closed_at >= q.since "
        "AND closed_at <= q.until AND case_id <> q.case_id "
        "AND (grid_code = q.grid_code OR component_id = q.component_id "
        "     OR (lat BETWEEN q.min_lat AND q.max_lat AND long BETWEEN q.min_lon AND q.max_lon)) "
        "OFFSET 0) AS c",
        *columns,
    )
    found: dict[str, list[ClosedCase]] = {}
    for r in rows:
        found.setdefault(r["new_case_id"], []).append(
            ClosedCase(
                place=Place(
                    case_id=r["case_id"],
                    category_code=r["category_code"],
                    grid_code=r["grid_code"],
                    lat=r["lat"],
                    long=r["long"],
                    component_id=r["component_id"],
                ),
                place_key=r["place_key"],
                closed_at=r["closed_at"],
                department=r["department"],
            )
        )
    return found


async def earlier_rebounds(
    conn: Connection, place_key: str, since: datetime, quarter: str
) -> tuple[int, int]:
    """Bounce-backs already recorded at the place: since ``since``, and in ``quarter``."""
    row = await conn.fetchrow(
        "SELECT count(*) FILTER (WHERE rebounded_at >= $2) AS in_window, "
        "count(*) FILTER (WHERE quarter = $3) AS in_quarter "
        "FROM rebounds WHERE place_key = $1",
        place_key,
        since,
        quarter,
    )
    assert row is not None
    return int(row["in_window"]), int(row["in_quarter"])


async def record_rebound(
    conn: Connection,
    *,
    case_id: str,
    place_key: str,
    previous_case_id: str,
    category_code: str,
    grid_code: str,
    area: str,
    department: str,
    count: int,
    bureau_notice: bool,
    key_problem: bool,
    quarter: str,
    rebounded_at: datetime,
    in_quarter: int,
) -> None:
    await conn.execute(
        "INSERT INTO rebounds (case_id, place_key, previous_case_id, category_code, grid_code, "
        "area, department, count, bureau_notice, key_problem, quarter, rebounded_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING",
        case_id,
        place_key,
        previous_case_id,
        category_code,
        grid_code,
        area,
        department,
        count,
        bureau_notice,
        key_problem,
        quarter,
        rebounded_at,
    )
    if key_problem:
        await conn.execute(
            "INSERT INTO key_problems (place_key, quarter, category_code, grid_code, area, "
            "rebounds, listed_at, last_rebound_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) "
            "ON CONFLICT (place_key, quarter) DO UPDATE SET "
            "rebounds = GREATEST(key_problems.rebounds, EXCLUDED.rebounds), "
            "last_rebound_at = GREATEST(key_problems.last_rebound_at, EXCLUDED.last_rebound_at)",
            place_key,
            quarter,
            category_code,
            grid_code,
            area,
            in_quarter,
            rebounded_at,
        )


async def key_problems(
    conn: Connection, quarter: str | None, area: str | None, limit: int
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT place_key, quarter, category_code, grid_code, area, rebounds, listed_at, "
        "last_rebound_at FROM key_problems "
        "WHERE ($1::text IS NULL OR quarter = $1) AND ($2::text IS NULL OR area = $2) "
        "ORDER BY rebounds DESC, last_rebound_at DESC, place_key LIMIT $3",
        quarter,
        area,
        limit,
    )


async def rebound_places(
    conn: Connection, quarter: str | None, area: str | None, limit: int
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT place_key, min(category_code) AS category_code, min(grid_code) AS grid_code, "
        "min(area) AS area, count(*) AS rebounds, max(count) AS highest_count, "
        "count(*) FILTER (WHERE bureau_notice) AS bureau_notices, "
        "max(rebounded_at) AS last_rebound_at, "
        "(array_agg(case_id ORDER BY rebounded_at DESC))[1] AS last_case_id "
        "FROM rebounds WHERE ($1::text IS NULL OR quarter = $1) "
        "AND ($2::text IS NULL OR area = $2) "
        "GROUP BY place_key ORDER BY count(*) DESC, max(rebounded_at) DESC, place_key LIMIT $3",
        quarter,
        area,
        limit,
    )
