"""Scoring's SQL: case facts, unit figures, periods, rebounds, rejections, publications.

Writes are one statement per batch and table (``unnest`` of arrays), rows
locked in one global order — case facts (by id), then periods, then unit
figures (by key) — so that concurrent consumers of the four topics queue on
hot rows instead of deadlocking.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import asyncpg
from pydantic_core import from_json, to_json

from services.scoring.domain.facts import CaseFact, Closure, Dispatch, Overdue, Rating
from services.scoring.domain.figures import FIGURES, Figures, UnitKey, UnitType
from shared.periods import Period

if TYPE_CHECKING:
    from shared.db import Connection

_FACT_COLUMNS = (
    "case_id, registered_at, merged_at, grid_code, area_hint, history, overdue_at, "
    "rework_orders, closed_at, handled_at, handle_deadline, rating, rated_at, rating_event_id"
)
_FIGURE_LIST = ", ".join(FIGURES)


# -- case facts -------------------------------------------------------------------


def _fact_from_row(row: asyncpg.Record) -> CaseFact:
    history = from_json(row["history"])
    instant = datetime.fromisoformat
    dispatches = tuple(
        Dispatch(instant(at), number, department, instant(sign_for), instant(handle))
        for at, number, department, sign_for, handle in history.get("dispatches", ())
    )
    closed_at = row["closed_at"]
    closure = (
        Closure(closed_at, row["handled_at"], row["handle_deadline"])
        if closed_at is not None
        else None
    )
    rated_at = row["rated_at"]
    rating = (
        Rating(rated_at, row["rating_event_id"], row["rating"]) if rated_at is not None else None
    )
    return CaseFact(
        case_id=row["case_id"],
        registered_at=row["registered_at"],
        merged_at=row["merged_at"],
        grid_code=row["grid_code"],
        area_hint=row["area_hint"],
        dispatches=dispatches,
        acceptances=tuple(map(instant, history.get("acceptances", ()))),
        handlings=tuple(map(instant, history.get("handlings", ()))),
        overdues=tuple(
            Overdue(instant(at), timer, instant(deadline), number)
            for at, timer, deadline, number in history.get("overdues", ())
        ),
        overdue_at=row["overdue_at"],
        rework_orders=row["rework_orders"],
        verification_failures=tuple(history.get("verification_failures", ())),
        closure=closure,
        rating=rating,
    )


async def lock_facts(conn: Connection, case_ids: Sequence[str]) -> dict[str, CaseFact]:
    """The facts of ``case_ids``, locked for this transaction; a new case starts empty.

    The empty row is inserted first so that two transactions meeting a new
    case queue on its lock rather than both starting from nothing.
    """
    ordered = sorted(set(case_ids))
    # NOT EXISTS first: most cases of a batch have a row already, and an index probe costs
    # Postgres less than the conflict check of an insert (measured: a third less CPU).
    await conn.execute(
        "INSERT INTO case_facts (case_id) SELECT id FROM unnest($1::text[]) AS u(id) "
        "WHERE NOT EXISTS (SELECT 1 FROM case_facts f WHERE f.case_id = u.id) "
        "ON CONFLICT DO NOTHING",
        ordered,
    )
    rows = await conn.fetch(
        f"SELECT {_FACT_COLUMNS} FROM case_facts WHERE case_id = ANY($1::text[]) "  # noqa: S608 (column lists are constants)
        "ORDER BY case_id FOR UPDATE",
        ordered,
    )
    return {row["case_id"]: _fact_from_row(row) for row in rows}


async def save_facts(
    conn: Connection,
    facts: Sequence[CaseFact],
    before: Mapping[str, CaseFact],
    areas: Mapping[str, str | None],
) -> None:
    """Write ``facts`` back; ``areas`` gives the area each case counts in, for the reports.

    ``before`` holds each fact as it was read, locked, in this transaction: only the groups of
    columns whose fields changed since are sent (``m`` says which), the others keep their
    value. An event changes one or two groups of a case, and encoding the unchanged ones —
    a dozen instants, mostly — was most of the cost. A field left unchanged is the very
    object it was read as (the fold replaces only what it changes), so ``is`` finds them.

    The batch travels as one JSON document (``json_to_recordset``): one
    parameter instead of an array per column, which costs less to encode;
    pydantic-core writes it, instants included (ISO 8601), in Rust. Read as
    ``json``, not ``jsonb``: each record's history is then parsed once, not
    parsed, printed and parsed again.
    """
    if facts:
        await conn.execute(_SAVE_FACTS, to_json(fact_records(facts, before, areas)).decode())


def fact_records(
    facts: Sequence[CaseFact], before: Mapping[str, CaseFact], areas: Mapping[str, str | None]
) -> list[dict[str, object]]:
    """The records :func:`save_facts` sends: the changed groups of columns of each fact."""
    records = []
    for fact in facts:
        was = before[fact.case_id]
        record: dict[str, object] = {"case_id": fact.case_id, "area": areas.get(fact.case_id)}
        mask = 0
        if (
            fact.registered_at is not was.registered_at
            or fact.merged_at is not was.merged_at
            or fact.grid_code is not was.grid_code
            or fact.area_hint is not was.area_hint
        ):
            mask |= _INTAKE
            record["registered_at"] = fact.registered_at
            record["merged_at"] = fact.merged_at
            record["grid_code"] = fact.grid_code
            record["area_hint"] = fact.area_hint
        if (
            fact.dispatches is not was.dispatches
            or fact.acceptances is not was.acceptances
            or fact.handlings is not was.handlings
            or fact.overdues is not was.overdues
            or fact.verification_failures is not was.verification_failures
        ):
            mask |= _HISTORY
            first, current = fact.first_dispatch, fact.current_dispatch
            record["history"] = {
                "dispatches": [
                    (d.at, d.number, d.department, d.sign_for, d.handle) for d in fact.dispatches
                ],
                "acceptances": fact.acceptances,
                "handlings": fact.handlings,
                "overdues": fact.overdues,
                "verification_failures": fact.verification_failures,
            }
            record["first_dispatched_at"] = first.at if first else None
            record["department"] = current.department if current else None
        if fact.overdue_at is not was.overdue_at:
            mask |= _OVERDUE
            record["overdue_at"] = fact.overdue_at
        if fact.rework_orders != was.rework_orders:
            mask |= _REWORK
            record["rework_orders"] = fact.rework_orders
        closure = fact.closure
        if closure is not was.closure:
            mask |= _CLOSURE
            record["closed_at"] = closure.closed_at if closure else None
            record["handled_at"] = closure.handled_at if closure else None
            record["handle_deadline"] = closure.handle_deadline if closure else None
        rating = fact.rating
        if rating is not was.rating:
            mask |= _RATING
            record["rating"] = rating.rating if rating else None
            record["rated_at"] = rating.rated_at if rating else None
            record["rating_event_id"] = rating.event_id if rating else None
        record["m"] = mask
        records.append(record)
    return records


#: Groups of case_facts columns, each written only when its fields changed (the ``m`` bits).
_INTAKE, _HISTORY, _OVERDUE, _REWORK, _CLOSURE, _RATING = 1, 2, 4, 8, 16, 32
_SAVE_COLUMNS = {
    # column: (type, group)
    "registered_at": ("timestamptz", _INTAKE),
    "merged_at": ("timestamptz", _INTAKE),
    "grid_code": ("text", _INTAKE),
    "area_hint": ("text", _INTAKE),
    "history": ("jsonb", _HISTORY),
    "overdue_at": ("timestamptz", _OVERDUE),
    "rework_orders": ("integer", _REWORK),
    "closed_at": ("timestamptz", _CLOSURE),
    "handled_at": ("timestamptz", _CLOSURE),
    "handle_deadline": ("timestamptz", _CLOSURE),
    "rating": ("text", _RATING),
    "rated_at": ("timestamptz", _RATING),
    "rating_event_id": ("text", _RATING),
    "first_dispatched_at": ("timestamptz", _HISTORY),
    "department": ("text", _HISTORY),
}
# The area is always written: it also follows the reference data, which a restart may change.
_SAVE_FACTS = (
    "UPDATE case_facts AS f SET "  # noqa: S608 (column lists are constants)
    + ", ".join(
        f"{c} = CASE WHEN u.m & {g} <> 0 THEN u.{c} ELSE f.{c} END"
        for c, (_, g) in _SAVE_COLUMNS.items()
    )
    + ", area = u.area FROM json_to_recordset($1::json) AS u(case_id text, m integer, area text, "
    + ", ".join(f"{c} {t}" for c, (t, _) in _SAVE_COLUMNS.items())
    + ") WHERE f.case_id = u.case_id"
)


# -- unit figures -------------------------------------------------------------------

# Each row travels as one text, "period_type|period|unit_type|unit_id|(n, n, ...)": encoding
# twenty arrays of a few thousand elements each cost more than the whole upsert. The counts are
# Python's own text of the tuple (in C, twice as fast as joining them), read as an array
# literal once its parentheses become braces. Ids cannot hold "|" or "," (contract
# identifiers), and rows keep the sorted order they are sent in.
_ADD_FIGURES = (
    f"INSERT INTO unit_figures (period_type, period, unit_type, unit_id, {_FIGURE_LIST}) "  # noqa: S608 (column lists are constants)
    "SELECT split_part(r, '|', 1), split_part(r, '|', 2), split_part(r, '|', 3), "
    "split_part(r, '|', 4), "
    + ", ".join(f"f[{i}]" for i in range(1, len(FIGURES) + 1))
    # OFFSET 0 keeps the subquery whole: inlined, each f[i] would parse the counts again.
    + " FROM (SELECT r, translate(split_part(r, '|', 5), '()', '{}')::integer[] AS f, n "
    "FROM unnest($1::text[]) WITH ORDINALITY AS u(r, n) OFFSET 0) AS rows ORDER BY n "
    "ON CONFLICT (period_type, period, unit_type, unit_id) DO UPDATE SET "
    + ", ".join(f"{f} = unit_figures.{f} + EXCLUDED.{f}" for f in FIGURES)
    + ", revision = unit_figures.revision + 1, dirty = true"
)


async def add_figures(conn: Connection, delta: Mapping[UnitKey, Figures]) -> int:
    """Add ``delta`` to the unit figures (creating rows as needed); returns rows touched."""
    if not delta:
        return 0
    # Sorted as (key, counts) pairs: keys are unique, so only keys are compared.
    rows = [f"{t}|{p}|{u}|{i}|{tuple(v)}" for (t, p, u, i), v in sorted(delta.items())]
    await conn.execute(_ADD_FIGURES, rows)
    return len(rows)


async def note_periods(conn: Connection, periods: Iterable[Period]) -> None:
    unique = sorted({(p.type, p.label): p for p in periods}.items())
    if not unique:
        return
    # NOT EXISTS first: a plain read never waits for the publisher closing a known period.
    await conn.execute(
        "INSERT INTO periods (period_type, period, ends_at) "
        "SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS u(t, p, e) "
        "WHERE NOT EXISTS (SELECT 1 FROM periods WHERE period_type = u.t AND period = u.p) "
        "ON CONFLICT DO NOTHING",
        [k[0] for k, _ in unique],
        [k[1] for k, _ in unique],
        [p.end for _, p in unique],
    )


def _figures_of(row: asyncpg.Record, skip: int = 0) -> Figures:
    """The counts of a row that selected ``skip`` key columns, then every figure in order."""
    return tuple(row)[skip:]


async def group_figures(
    conn: Connection, period_type: str, period: str, unit_type: str
) -> dict[str, Figures]:
    """Every unit's figures of one type for one period."""
    rows = await conn.fetch(
        f"SELECT unit_id, {_FIGURE_LIST} FROM unit_figures "  # noqa: S608 (column lists are constants)
        "WHERE period_type = $1 AND period = $2 AND unit_type = $3",
        period_type,
        period,
        unit_type,
    )
    return {row["unit_id"]: _figures_of(row, 1) for row in rows}


async def days_figures(
    conn: Connection, days: Sequence[str], unit_types: Sequence[str]
) -> dict[tuple[str, str], Figures]:
    """Day rows summed over ``days``, per (unit_type, unit_id)."""
    sums = ", ".join(f"sum({f})::integer AS {f}" for f in FIGURES)
    rows = await conn.fetch(
        f"SELECT unit_type, unit_id, {sums} FROM unit_figures "  # noqa: S608 (column lists are constants)
        "WHERE period_type = 'day' AND period = ANY($1::text[]) AND unit_type = ANY($2::text[]) "
        "GROUP BY unit_type, unit_id",
        list(days),
        list(unit_types),
    )
    return {(row["unit_type"], row["unit_id"]): _figures_of(row, 2) for row in rows}


async def unit_types_of(conn: Connection, unit_id: str, period_type: str, period: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT unit_type FROM unit_figures "
        "WHERE period_type = $1 AND period = $2 AND unit_id = $3 ORDER BY unit_type",
        period_type,
        period,
        unit_id,
    )
    return [row["unit_type"] for row in rows]


async def all_figures(conn: Connection) -> dict[UnitKey, Figures]:
    rows = await conn.fetch(
        f"SELECT period_type, period, unit_type, unit_id, {_FIGURE_LIST} FROM unit_figures"  # noqa: S608 (column lists are constants)
    )
    return {
        UnitKey(row["period_type"], row["period"], row["unit_type"], row["unit_id"]): _figures_of(
            row, 4
        )
        for row in rows
    }


# -- what the publisher needs ---------------------------------------------------------


@dataclass(frozen=True)
class DirtyGroup:
    period_type: str
    period: str
    unit_type: UnitType
    closed: bool  # the period's final scores are out


async def dirty_groups(conn: Connection, published_before: datetime) -> list[DirtyGroup]:
    """Tables with a changed row whose unit was not published since ``published_before``.

    A row changed again soon after its unit was published cannot be published
    before the interval is over, so its table is not worth a look until then.
    """
    rows = await conn.fetch(
        "SELECT DISTINCT d.period_type, d.period, d.unit_type, p.closed_at IS NOT NULL AS closed "
        "FROM unit_figures d "
        "LEFT JOIN periods p USING (period_type, period) "
        "LEFT JOIN published s USING (period_type, period, unit_type, unit_id) "
        "WHERE d.dirty AND (s.published_at IS NULL OR s.published_at <= $1 "
        "OR p.closed_at IS NOT NULL) ORDER BY 1, 2, 3",
        published_before,
    )
    return [
        DirtyGroup(row["period_type"], row["period"], row["unit_type"], row["closed"])
        for row in rows
    ]


async def dirty_revisions(
    conn: Connection, period_type: str, period: str, unit_type: str
) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT unit_id, revision FROM unit_figures "
        "WHERE dirty AND period_type = $1 AND period = $2 AND unit_type = $3",
        period_type,
        period,
        unit_type,
    )
    return {row["unit_id"]: row["revision"] for row in rows}


async def clear_dirty(
    conn: Connection, period_type: str, period: str, unit_type: str, seen: Mapping[str, int]
) -> None:
    """Clear the marks of rows not changed since they were read; rows a consumer holds stay marked."""
    if not seen:
        return
    ids = sorted(seen)
    await conn.execute(
        "UPDATE unit_figures SET dirty = false WHERE (period_type, period, unit_type, unit_id) IN ("
        "  SELECT period_type, period, unit_type, unit_id FROM unit_figures f"
        "  JOIN unnest($4::text[], $5::bigint[]) AS s(unit_id, revision) USING (unit_id, revision)"
        "  WHERE f.period_type = $1 AND f.period = $2 AND f.unit_type = $3"
        "  ORDER BY unit_id FOR UPDATE SKIP LOCKED)",
        period_type,
        period,
        unit_type,
        ids,
        [seen[i] for i in ids],
    )


async def mark_dirty(
    conn: Connection, period_type: str, period: str, unit_type: str, unit_ids: Iterable[str]
) -> None:
    ids = sorted(set(unit_ids))
    if not ids:
        return
    await conn.execute(
        "UPDATE unit_figures SET dirty = true WHERE (period_type, period, unit_type, unit_id) IN ("
        "  SELECT period_type, period, unit_type, unit_id FROM unit_figures"
        "  WHERE period_type = $1 AND period = $2 AND unit_type = $3"
        "  AND unit_id = ANY($4::text[]) AND NOT dirty"
        "  ORDER BY unit_id FOR UPDATE SKIP LOCKED)",
        period_type,
        period,
        unit_type,
        ids,
    )


@dataclass(frozen=True)
class Publication:
    digest: str
    published_at: datetime
    final: bool


async def publications(
    conn: Connection, period_type: str, period: str, unit_type: str
) -> dict[str, Publication]:
    rows = await conn.fetch(
        "SELECT unit_id, digest, published_at, final FROM published "
        "WHERE period_type = $1 AND period = $2 AND unit_type = $3",
        period_type,
        period,
        unit_type,
    )
    return {
        row["unit_id"]: Publication(row["digest"], row["published_at"], row["final"])
        for row in rows
    }


async def save_publications(
    conn: Connection,
    period_type: str,
    period: str,
    unit_type: str,
    digests: Mapping[str, str],
    at: datetime,
    final: bool,
) -> None:
    if not digests:
        return
    ids = sorted(digests)
    await conn.execute(
        "INSERT INTO published (period_type, period, unit_type, unit_id, digest, published_at, final) "
        "SELECT $1, $2, $3, u.unit_id, u.digest, $6, $7 "
        "FROM unnest($4::text[], $5::text[]) AS u(unit_id, digest) "
        "ON CONFLICT (period_type, period, unit_type, unit_id) DO UPDATE SET "
        "digest = EXCLUDED.digest, published_at = EXCLUDED.published_at, final = EXCLUDED.final",
        period_type,
        period,
        unit_type,
        ids,
        [digests[i] for i in ids],
        at,
        final,
    )


async def periods_to_close(conn: Connection, ended_by: datetime) -> list[tuple[str, str]]:
    rows = await conn.fetch(
        "SELECT period_type, period FROM periods "
        "WHERE closed_at IS NULL AND ends_at <= $1 ORDER BY ends_at, period_type, period",
        ended_by,
    )
    return [(row["period_type"], row["period"]) for row in rows]


async def close_period(conn: Connection, period_type: str, period: str, at: datetime) -> None:
    await conn.execute(
        "UPDATE periods SET closed_at = $3 WHERE period_type = $1 AND period = $2",
        period_type,
        period,
        at,
    )


async def period_closed(conn: Connection, period_type: str, period: str) -> bool:
    closed = await conn.fetchval(
        "SELECT closed_at IS NOT NULL FROM periods WHERE period_type = $1 AND period = $2",
        period_type,
        period,
    )
    return bool(closed)


# -- rebounds and rejections ------------------------------------------------------------


@dataclass(frozen=True)
class ReboundRow:
    case_id: str
    previous_case_id: str
    place_key: str
    count: int
    category_code: str
    grid_code: str
    department: str
    area: str
    bureau_notice: bool
    key_problem: bool
    raised_at: datetime


_REBOUND_FIELDS = (
    "case_id",
    "previous_case_id",
    "place_key",
    "count",
    "category_code",
    "grid_code",
    "department",
    "area",
    "bureau_notice",
    "key_problem",
    "raised_at",
)
_REBOUND_TYPES = (
    "text",
    "text",
    "text",
    "integer",
    "text",
    "text",
    "text",
    "text",
    "boolean",
    "boolean",
    "timestamptz",
)


async def record_rebounds(conn: Connection, rebounds: Sequence[ReboundRow]) -> set[str]:
    """Insert new rebounds; returns the case ids that were not already recorded."""
    if not rebounds:
        return set()
    ordered = sorted({r.case_id: r for r in rebounds}.values(), key=lambda r: r.case_id)
    arrays = [[getattr(r, f) for r in ordered] for f in _REBOUND_FIELDS]
    rows = await conn.fetch(
        f"INSERT INTO rebounds ({', '.join(_REBOUND_FIELDS)}) SELECT * FROM unnest("  # noqa: S608 (column lists are constants)
        + ", ".join(f"${i}::{t}[]" for i, t in enumerate(_REBOUND_TYPES, start=1))
        + ") ON CONFLICT DO NOTHING RETURNING case_id",
        *arrays,
    )
    return {row["case_id"] for row in rows}


async def rebounds_between(conn: Connection, start: datetime, end: datetime) -> list[ReboundRow]:
    rows = await conn.fetch(
        f"SELECT {', '.join(_REBOUND_FIELDS)} FROM rebounds "  # noqa: S608 (column lists are constants)
        "WHERE raised_at >= $1 AND raised_at < $2 ORDER BY raised_at, case_id",
        start,
        end,
    )
    return [ReboundRow(**dict(row)) for row in rows]


async def record_rejections(
    conn: Connection, rejections: Sequence[tuple[str, str, datetime]]
) -> dict[str, datetime]:
    """Insert rejected reports (id, channel, at); returns those not already recorded."""
    if not rejections:
        return {}
    ordered = sorted({r[0]: r for r in rejections}.values())
    rows = await conn.fetch(
        "INSERT INTO rejections (report_id, channel, rejected_at) "
        "SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[]) "
        "ON CONFLICT DO NOTHING RETURNING report_id, rejected_at",
        [r[0] for r in ordered],
        [r[1] for r in ordered],
        [r[2] for r in ordered],
    )
    return {row["report_id"]: row["rejected_at"] for row in rows}


# -- report lists ---------------------------------------------------------------------


@dataclass(frozen=True)
class OverdueCase:
    case_id: str
    department: str | None
    area: str | None
    grid_code: str | None
    first_dispatched_at: datetime | None
    overdue_at: datetime
    closed_at: datetime | None


async def overdue_between(conn: Connection, start: datetime, end: datetime) -> list[OverdueCase]:
    """Cases that first went overdue in [start, end), duplicates left out."""
    rows = await conn.fetch(
        "SELECT case_id, department, area, grid_code, first_dispatched_at, overdue_at, closed_at "
        "FROM case_facts WHERE overdue_at >= $1 AND overdue_at < $2 AND merged_at IS NULL "
        "ORDER BY overdue_at, case_id",
        start,
        end,
    )
    return [OverdueCase(**dict(row)) for row in rows]


async def open_overdue_by_department(conn: Connection, at: datetime) -> dict[str, int]:
    """Per department, cases overdue and not closed at ``at``."""
    rows = await conn.fetch(
        "SELECT department, count(*) AS n FROM case_facts "
        "WHERE overdue_at < $1 AND (closed_at IS NULL OR closed_at >= $1) "
        "AND merged_at IS NULL AND department IS NOT NULL GROUP BY department",
        at,
    )
    return {row["department"]: row["n"] for row in rows}
