"""Dispatch's tables in Postgres: cases, the escalated queue, and parked events.

Every function works on the connection of the caller's open transaction, and
works a batch at a time: the consumer loads, locks and saves a whole batch of
cases in a handful of statements, whatever its size.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncpg

from services.dispatch.domain.cases import CaseState
from shared.events import CaseEscalated, Deadlines, Envelope, decode, encode

if TYPE_CHECKING:
    from shared.db import Connection

_CASE_COLUMNS = (
    "case_id",
    "category_code",
    "kind",
    "grid_code",
    "street",
    "area",
    "area_class",
    "urgency",
    "tier",
    "registered_at",
    "status",
    "candidates",
    "co_departments",
    "rule_id",
    "rule",
    "department",
    "last_department",
    "returned_by",
    "returns",
    "dispatch_number",
    "rework_count",
    "is_rework",
    "extension_total",
    "dispatched_at",
    "sign_for_deadline",
    "handle_deadline",
    "verify_limit",
    "clock",
    "handle_clock",
    "answered",
)
# What a later event can change; the case's identity and place never change.
_MUTABLE_COLUMNS = _CASE_COLUMNS[10:]
# Column names are this module's constants; only values are bound.
_UPDATE_CASE = (
    "UPDATE cases SET "  # noqa: S608
    + ", ".join(f"{name} = ${index}" for index, name in enumerate(_MUTABLE_COLUMNS, start=2))
    + ", updated_at = clock_timestamp() WHERE case_id = $1"
)


async def lock_cases(conn: Connection, case_ids: Iterable[str]) -> None:
    """Serialise work on these cases across consumers and HTTP until the transaction ends.

    A return parked by the feedback consumer while the cases consumer registers
    the same case would otherwise be missed by both. Taken in one sorted order,
    so two batches cannot deadlock on each other.
    """
    keys = sorted(set(case_ids))
    if keys:
        await conn.execute(
            "SELECT pg_advisory_xact_lock(k) FROM "
            "(SELECT hashtextextended(id, 7) AS k FROM unnest($1::text[]) AS id ORDER BY 1) AS s",
            keys,
        )


async def load_cases(conn: Connection, case_ids: Sequence[str]) -> dict[str, CaseState]:
    rows = await conn.fetch(
        "SELECT " + ", ".join(_CASE_COLUMNS) + " FROM cases WHERE case_id = ANY($1::text[])",  # noqa: S608
        list(case_ids),
    )
    return {row["case_id"]: _state(row) for row in rows}


async def insert_cases(conn: Connection, states: Sequence[CaseState]) -> None:
    """New cases, in one COPY: the caller holds their locks and knows none of them exists."""
    if states:
        await conn.copy_records_to_table(
            "cases", columns=_CASE_COLUMNS, records=[_row(state) for state in states]
        )


async def update_cases(conn: Connection, states: Sequence[CaseState]) -> None:
    if states:
        await conn.executemany(
            _UPDATE_CASE, [(state.case_id, *_row(state)[10:]) for state in states]
        )


def _row(state: CaseState) -> tuple[Any, ...]:
    deadlines = state.deadlines
    return (
        state.case_id,
        state.category_code,
        state.kind,
        state.grid_code,
        state.street,
        state.area,
        state.area_class,
        state.urgency,
        state.tier,
        state.registered_at,
        state.status,
        list(state.candidates),
        list(state.co_departments),
        state.rule_id,
        state.rule,
        state.department,
        state.last_department,
        list(state.returned_by),
        state.returns,
        state.dispatch_number,
        state.rework_count,
        state.is_rework,
        state.extension_total,
        state.dispatched_at,
        deadlines.sign_for if deadlines else None,
        deadlines.handle if deadlines else None,
        deadlines.verify_limit if deadlines else None,
        deadlines.clock if deadlines else None,
        state.handle_clock,
        sorted(state.answered),
    )


def _state(row: asyncpg.Record) -> CaseState:
    deadlines = None
    if row["handle_deadline"] is not None:
        deadlines = Deadlines(
            sign_for=row["sign_for_deadline"],
            handle=row["handle_deadline"],
            verify_limit=row["verify_limit"],
            clock=row["clock"],
        )
    return CaseState(
        case_id=row["case_id"],
        category_code=row["category_code"],
        kind=row["kind"],
        grid_code=row["grid_code"],
        street=row["street"],
        area=row["area"],
        area_class=row["area_class"],
        urgency=row["urgency"],
        tier=row["tier"],
        registered_at=row["registered_at"],
        status=row["status"],
        candidates=tuple(row["candidates"]),
        co_departments=tuple(row["co_departments"]),
        rule_id=row["rule_id"],
        rule=row["rule"],
        department=row["department"],
        last_department=row["last_department"],
        returned_by=tuple(row["returned_by"]),
        returns=row["returns"],
        dispatch_number=row["dispatch_number"],
        rework_count=row["rework_count"],
        is_rework=row["is_rework"],
        extension_total=row["extension_total"],
        dispatched_at=row["dispatched_at"],
        deadlines=deadlines,
        handle_clock=row["handle_clock"],
        answered=frozenset(row["answered"]),
    )


# -- parked events ----------------------------------------------------------------------


async def park(conn: Connection, envelopes: Sequence[Envelope]) -> None:
    if envelopes:
        await conn.executemany(
            "INSERT INTO pending (event_id, case_id, event_type, event_time, envelope) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING",
            [(env.id, env.subject, env.type, env.time, encode(env)) for env in envelopes],
        )


async def take_pending(conn: Connection, case_ids: Sequence[str]) -> dict[str, list[Envelope]]:
    """Remove and return the events parked for these cases, each case's in event-time order."""
    if not case_ids:
        return {}
    rows = await conn.fetch(
        "DELETE FROM pending WHERE case_id = ANY($1::text[]) RETURNING case_id, envelope",
        list(case_ids),
    )
    out: dict[str, list[Envelope]] = {}
    for row in rows:
        out.setdefault(row["case_id"], []).append(decode(bytes(row["envelope"])))
    for envelopes in out.values():
        envelopes.sort(key=lambda env: (env.time, env.id))
    return out


async def pending_count(conn: Connection, case_id: str) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM pending WHERE case_id = $1", case_id))


# -- the human dispatcher's queue ---------------------------------------------------------


async def enqueue(conn: Connection, escalations: Sequence[tuple[CaseEscalated, datetime]]) -> None:
    if escalations:
        await conn.executemany(
            "INSERT INTO escalated (case_id, reason, detail, returns, last_department,"
            " tried_departments, area, category_code, grid_code, urgency, escalated_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            " ON CONFLICT (case_id) DO UPDATE SET reason = EXCLUDED.reason,"
            " detail = EXCLUDED.detail, returns = EXCLUDED.returns,"
            " last_department = EXCLUDED.last_department,"
            " tried_departments = EXCLUDED.tried_departments,"
            " escalated_at = EXCLUDED.escalated_at",
            [
                (
                    e.case_id,
                    e.reason,
                    e.detail,
                    e.returns,
                    e.last_department,
                    e.tried_departments,
                    e.area,
                    e.category_code,
                    e.grid_code,
                    e.urgency,
                    at,
                )
                for e, at in escalations
            ],
        )


async def dequeue(conn: Connection, case_ids: Sequence[str]) -> None:
    if case_ids:
        await conn.execute("DELETE FROM escalated WHERE case_id = ANY($1::text[])", list(case_ids))


async def queue_length(conn: Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM escalated"))


@dataclass(frozen=True)
class QueuePage:
    total: int
    rows: list[asyncpg.Record]


async def queue_page(
    conn: Connection, *, area: str | None, urgency: str | None, limit: int, offset: int
) -> QueuePage:
    """The queue as a dispatcher works it: urgent cases first, then the longest waiting."""
    where = "($1::text IS NULL OR area = $1) AND ($2::text IS NULL OR urgency = $2)"
    total = await conn.fetchval(f"SELECT count(*) FROM escalated WHERE {where}", area, urgency)  # noqa: S608
    rows = await conn.fetch(
        f"SELECT * FROM escalated WHERE {where}"  # noqa: S608
        " ORDER BY (urgency = 'urgent') DESC, escalated_at, case_id LIMIT $3 OFFSET $4",
        area,
        urgency,
        limit,
        offset,
    )
    return QueuePage(int(total), list(rows))


async def escalation_of(conn: Connection, case_id: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT * FROM escalated WHERE case_id = $1", case_id
    )
    return row
