"""Intake's SQL: filed reports, the duplicate search, the case read model, contacts, API keys.

Every function takes the connection of the caller's transaction. Batch work is
one statement per batch (``unnest`` of parallel arrays), not one per report:
registration runs hundreds of reports a batch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncpg

from services.intake.domain import Candidate, DuplicateSearch, Progress, TimelineEntry
from services.intake.domain.progress import Folded, registration_folded
from services.intake.domain.registration import ReportKey
from shared.events.envelope import EVENT_TYPES
from shared.events.reports import ReportSubmitted

if TYPE_CHECKING:
    from shared.db import Connection

# Advisory-lock classes (the first key of pg_advisory_xact_lock(int, int)).
_LOCK_CATEGORY = 7_311_401  # duplicate search and registration of one category
_LOCK_CASE = 7_311_402  # the read model of one case


def _lock_key(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big", signed=True)


def _lock_keys(names: Iterable[str]) -> list[int]:
    # Sorted, so two transactions taking several locks never wait on each other in a cycle.
    return sorted({_lock_key(n) for n in names})


async def _lock(conn: Connection, lock_class: int, names: Iterable[str]) -> None:
    keys = _lock_keys(names)
    if keys:
        await conn.execute(
            "SELECT pg_advisory_xact_lock($1, k) FROM (SELECT unnest($2::int[]) AS k ORDER BY 1) s",
            lock_class,
            keys,
        )


async def lock_categories(conn: Connection, category_codes: Iterable[str]) -> None:
    """Serialise registration per category, so two instances never both miss each other's duplicate."""
    await _lock(conn, _LOCK_CATEGORY, category_codes)


async def lock_cases(conn: Connection, case_ids: Iterable[str]) -> None:
    """Serialise read-model updates per case (the HTTP API and the consumers both append)."""
    await _lock(conn, _LOCK_CASE, case_ids)


# -- registration -----------------------------------------------------------------


async def known_reports(conn: Connection, keys: Sequence[ReportKey]) -> dict[ReportKey, str]:
    """The case of each (channel, external id) already filed."""
    if not keys:
        return {}
    rows = await conn.fetch(
        "SELECT c.channel, c.external_id, c.case_id FROM cases c "
        "JOIN unnest($1::text[], $2::text[]) AS k(channel, external_id) "
        "USING (channel, external_id)",
        [k[0] for k in keys],
        [k[1] for k in keys],
    )
    return {(r["channel"], r["external_id"]): r["case_id"] for r in rows}


async def duplicate_candidates(
    conn: Connection, searches: Sequence[tuple[int, DuplicateSearch]]
) -> dict[int, list[Candidate]]:
    """Masters of each search's category inside its box, open or closed since its cutoff."""
    if not searches:
        return {}
    rows = await conn.fetch(
        """
        SELECT q.i, c.case_id, c.category_code, c.site_lat, c.site_long, c.registered_at,
               c.closed_at
        FROM unnest($1::int[], $2::text[], $3::float8[], $4::float8[], $5::float8[],
                    $6::float8[], $7::timestamptz[])
             AS q(i, category_code, min_lat, min_long, max_lat, max_long, closed_after)
        JOIN duplicate_masters c
          ON c.category_code = q.category_code
         AND c.site_lat BETWEEN q.min_lat AND q.max_lat
         AND c.site_long BETWEEN q.min_long AND q.max_long
        WHERE c.closed_at IS NULL OR c.closed_at >= q.closed_after
        """,
        [i for i, _ in searches],
        [s.category_code for _, s in searches],
        [s.min_lat for _, s in searches],
        [s.min_long for _, s in searches],
        [s.max_lat for _, s in searches],
        [s.max_long for _, s in searches],
        [s.closed_after for _, s in searches],
    )
    found: dict[int, list[Candidate]] = {}
    for r in rows:
        found.setdefault(r["i"], []).append(
            Candidate(
                case_id=r["case_id"],
                category_code=r["category_code"],
                lat=r["site_lat"],
                long=r["site_long"],
                registered_at=r["registered_at"],
                closed_at=r["closed_at"],
            )
        )
    return found


@dataclass(frozen=True)
class Contact:
    """How to call a reporter back: kept here, never published."""

    reporter_ref: str | None
    name: str | None
    phone: str | None


@dataclass(slots=True)
class FiledCase:
    """A row of ``cases``: a registered case or a merged duplicate."""

    case_id: str
    event_id: str
    report_id: str
    channel: str
    external_id: str
    outcome: str
    master_case_id: str | None
    category_code: str
    grid_code: str
    area: str
    site_lat: float
    site_long: float
    reported_at: datetime
    registered_at: datetime
    report: ReportSubmitted
    detail: str  # the published event's data, as JSON
    contact: Contact | None


@dataclass(frozen=True)
class Filing:
    inserted: set[str]
    #: cases whose read model already had events (a replay brought them before the registration)
    followed_early: set[str]


async def file_cases(conn: Connection, cases: Sequence[FiledCase]) -> Filing:
    """Insert filed reports and their contacts in one statement.

    A concurrent twin (the same channel and external id filed by another
    transaction first) is not inserted and not in ``inserted``.
    """
    if not cases:
        return Filing(set(), set())
    contacts = [c.contact or Contact(None, None, None) for c in cases]
    rows = await conn.fetch(
        """
        WITH filed AS (
            INSERT INTO cases (case_id, event_id, report_id, channel, external_id, outcome,
                               master_case_id, category_code, grid_code, area, site_lat,
                               site_long, reported_at, registered_at, report, detail)
            SELECT case_id, event_id, report_id, channel, external_id, outcome, master_case_id,
                   category_code, grid_code, area, site_lat, site_long, reported_at,
                   registered_at, report::json, detail::json
            FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                        $7::text[], $8::text[], $9::text[], $10::text[], $11::float8[],
                        $12::float8[], $13::timestamptz[], $14::timestamptz[], $15::text[],
                        $16::text[])
                 AS t(case_id, event_id, report_id, channel, external_id, outcome,
                      master_case_id, category_code, grid_code, area, site_lat, site_long,
                      reported_at, registered_at, report, detail)
            ON CONFLICT DO NOTHING
            RETURNING case_id
        ), masters AS (
            INSERT INTO duplicate_masters (case_id, category_code, site_lat, site_long,
                                           registered_at)
            SELECT m.case_id, m.category_code, m.site_lat, m.site_long, m.registered_at
            FROM unnest($1::text[], $6::text[], $8::text[], $11::float8[], $12::float8[],
                        $14::timestamptz[])
                 AS m(case_id, outcome, category_code, site_lat, site_long, registered_at)
            JOIN filed USING (case_id)
            WHERE m.outcome = 'registered'
        ), contacts AS (
            INSERT INTO case_contacts (case_id, reporter_ref, name, phone)
            SELECT k.case_id, k.reporter_ref, k.name, k.phone
            FROM unnest($1::text[], $17::text[], $18::text[], $19::text[])
                 AS k(case_id, reporter_ref, name, phone)
            JOIN filed USING (case_id)
            WHERE k.name IS NOT NULL OR k.phone IS NOT NULL
            ON CONFLICT DO NOTHING
        )
        SELECT f.case_id, p.case_id IS NOT NULL AS followed_early
        FROM filed f LEFT JOIN case_progress p USING (case_id)
        """,
        [c.case_id for c in cases],
        [c.event_id for c in cases],
        [c.report_id for c in cases],
        [c.channel for c in cases],
        [c.external_id for c in cases],
        [c.outcome for c in cases],
        [c.master_case_id for c in cases],
        [c.category_code for c in cases],
        [c.grid_code for c in cases],
        [c.area for c in cases],
        [c.site_lat for c in cases],
        [c.site_long for c in cases],
        [c.reported_at for c in cases],
        [c.registered_at for c in cases],
        [
            c.report.model_dump_json(exclude={"reporter"}) if c.outcome == "merged" else None
            for c in cases
        ],
        [c.detail for c in cases],
        [k.reporter_ref for k in contacts],
        [k.name for k in contacts],
        [k.phone for k in contacts],
    )
    return Filing(
        inserted={r["case_id"] for r in rows},
        followed_early={r["case_id"] for r in rows if r["followed_early"]},
    )


# -- the read model ---------------------------------------------------------------


@dataclass(frozen=True)
class Appended:
    """What an append brought: the entries new to their timelines, and where their cases stood."""

    #: the new entries by case (a redelivered event is already in its timeline, and folded)
    entries: dict[str, list[TimelineEntry]]
    #: the fold to go on from, by case of a new entry; None: no fold saved to go on from
    folded: dict[str, Folded | None]


def _fold_start(row: asyncpg.Record) -> Folded | None:
    if row["state"] is not None:
        if row["last_step"] is None:
            return None  # saved before folds kept their key
        return Folded(
            Progress.model_validate_json(row["state"]),
            (row["updated_at"], row["last_step"], row["last_event_id"]),
        )
    if row["outcome"] is not None:
        # Nothing folded yet but the registration: its row says all the fold takes from it.
        return registration_folded(
            merged=row["outcome"] == "merged",
            area=row["area"],
            master_case_id=row["master_case_id"],
            registered_at=row["registered_at"],
            event_id=row["event_id"],
        )
    return None  # not registered yet (a replay): the timeline is all there is


async def append_timeline(conn: Connection, entries: Sequence[TimelineEntry]) -> Appended:
    """Record events in their cases' timelines, and read where their cases stood, in one statement.

    The caller holds the cases' locks, so what is read is still true when the
    new state is saved.
    """
    if not entries:
        return Appended({}, {})
    rows = await conn.fetch(
        """
        WITH new AS (
            INSERT INTO case_timeline (event_id, case_id, event_type, occurred_at, source, data)
            SELECT event_id, case_id, event_type, occurred_at, source, data::json
            FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[],
                        $6::text[])
                 AS t(event_id, case_id, event_type, occurred_at, source, data)
            ON CONFLICT DO NOTHING
            RETURNING event_id, case_id
        ), touched AS (
            SELECT case_id, array_agg(event_id) AS event_ids FROM new GROUP BY case_id
        )
        SELECT t.case_id, t.event_ids, p.state, p.updated_at, p.last_step, p.last_event_id,
               c.outcome, c.area, c.master_case_id, c.registered_at, c.event_id
        FROM touched t
        LEFT JOIN case_progress p USING (case_id)
        -- the registration is only needed while nothing else has been folded
        LEFT JOIN cases c ON c.case_id = t.case_id AND p.case_id IS NULL
        """,
        [e.event_id for e in entries],
        [e.data.subject() for e in entries],
        [e.event_type for e in entries],
        [e.occurred_at for e in entries],
        [e.source for e in entries],
        [e.data.model_dump_json() for e in entries],
    )
    by_id = {e.event_id: e for e in entries}
    return Appended(
        entries={r["case_id"]: [by_id[i] for i in r["event_ids"]] for r in rows},
        folded={r["case_id"]: _fold_start(r) for r in rows},
    )


def _entry(row: asyncpg.Record) -> TimelineEntry:
    model = EVENT_TYPES[row["event_type"]]
    return TimelineEntry(
        event_id=row["event_id"],
        occurred_at=row["occurred_at"],
        source=row["source"],
        data=model.model_validate_json(row["data"]),
    )


# A case's registration is its ``cases`` row; the rest of its life is ``case_timeline``.
_TIMELINE = """
    SELECT event_id, case_id, event_type, occurred_at, source, data FROM case_timeline
    WHERE case_id = ANY($1::text[])
    UNION ALL
    SELECT event_id, case_id,
           CASE outcome WHEN 'merged' THEN 'case.merged' ELSE 'case.registered' END,
           registered_at, 'intake', detail
    FROM cases WHERE case_id = ANY($1::text[])
"""


# Both parts are constants of this module; nothing from outside is spliced in.
_CASE_TIMELINE = "SELECT * FROM (" + _TIMELINE + ") t ORDER BY occurred_at, event_id"  # noqa: S608


async def timelines(conn: Connection, case_ids: Iterable[str]) -> dict[str, list[TimelineEntry]]:
    ids = sorted(set(case_ids))
    if not ids:
        return {}
    out: dict[str, list[TimelineEntry]] = {}
    for r in await conn.fetch(_TIMELINE, ids):
        out.setdefault(r["case_id"], []).append(_entry(r))
    return out


async def save_progress(conn: Connection, folds: Mapping[str, Folded]) -> None:
    if not folds:
        return
    ids = list(folds)
    states = [folds[i].state for i in ids]
    await conn.execute(
        """
        WITH saved AS (
            INSERT INTO case_progress (case_id, status, is_open, department, closed_at,
                                       updated_at, state, last_step, last_event_id)
            SELECT case_id, status, is_open, department, closed_at, updated_at, state::json,
                   last_step, last_event_id
            FROM unnest($1::text[], $2::text[], $3::bool[], $4::text[], $5::timestamptz[],
                        $6::timestamptz[], $7::text[], $8::int2[], $9::text[])
                 AS t(case_id, status, is_open, department, closed_at, updated_at, state,
                      last_step, last_event_id)
            ON CONFLICT (case_id) DO UPDATE SET
                status = EXCLUDED.status, is_open = EXCLUDED.is_open,
                department = EXCLUDED.department, closed_at = EXCLUDED.closed_at,
                updated_at = EXCLUDED.updated_at, state = EXCLUDED.state,
                last_step = EXCLUDED.last_step, last_event_id = EXCLUDED.last_event_id
        )
        -- A closed master attracts duplicates for its window only; a reopened one again.
        UPDATE duplicate_masters d SET closed_at = t.closed_at
        FROM unnest($1::text[], $5::timestamptz[]) AS t(case_id, closed_at)
        WHERE d.case_id = t.case_id AND d.closed_at IS DISTINCT FROM t.closed_at
        """,
        ids,
        [p.status for p in states],
        [p.is_open for p in states],
        [p.department for p in states],
        [p.closed_at for p in states],
        [p.updated_at for p in states],
        [p.model_dump_json() for p in states],
        [folds[i].last[1] for i in ids],
        [folds[i].last[2] for i in ids],
    )


async def prune_duplicate_masters(conn: Connection, closed_before: datetime) -> int:
    """Forget masters closed before ``closed_before``: no window reaches back that far."""
    status = await conn.execute("DELETE FROM duplicate_masters WHERE closed_at < $1", closed_before)
    return int(status.split()[-1])


# -- reading cases ----------------------------------------------------------------


@dataclass(frozen=True)
class CaseRecord:
    """A filed case as the HTTP APIs show it."""

    case_id: str
    outcome: str
    master_case_id: str | None
    category_code: str
    reported_at: datetime
    registered_at: datetime
    site_lat: float
    site_long: float
    report: dict[str, Any]
    detail: dict[str, Any]
    progress: Progress


_REPORT_FIELDS = (
    "description",
    "component_id",
    "attributes",
    "media_urls",
    "reported_at",
    "inspector_id",
)


def _reported(report: str | None, detail: dict[str, Any]) -> dict[str, Any]:
    """What the channel reported: stored for a duplicate, read off the event for a new case."""
    if report is not None:
        doc: dict[str, Any] = json.loads(report)
        return doc
    out = {name: detail.get(name) for name in _REPORT_FIELDS}
    out["location"] = {
        "lat": detail.get("lat"),
        "long": detail.get("long"),
        "grid_code": detail.get("grid_code"),
        "address": detail.get("address"),
    }
    return out


def _record(row: asyncpg.Record) -> CaseRecord:
    detail: dict[str, Any] = json.loads(row["detail"])
    state = row["state"]
    if state is not None:
        progress = Progress.model_validate_json(state)
    elif row["outcome"] == "merged":
        progress = Progress(status="merged", master_case_id=row["master_case_id"])
    else:
        progress = Progress(area=row["area"], updated_at=row["registered_at"])
    return CaseRecord(
        case_id=row["case_id"],
        outcome=row["outcome"],
        master_case_id=row["master_case_id"],
        category_code=row["category_code"],
        reported_at=row["reported_at"],
        registered_at=row["registered_at"],
        site_lat=row["site_lat"],
        site_long=row["site_long"],
        report=_reported(row["report"], detail),
        detail=detail,
        progress=progress,
    )


_CASE_COLUMNS = (
    "c.case_id, c.outcome, c.master_case_id, c.category_code, c.area, c.reported_at, "
    "c.registered_at, c.site_lat, c.site_long, c.report, c.detail, p.state"
)


async def case_record(conn: Connection, case_id: str) -> CaseRecord | None:
    row = await conn.fetchrow(
        f"SELECT {_CASE_COLUMNS} FROM cases c LEFT JOIN case_progress p USING (case_id) "  # noqa: S608
        "WHERE c.case_id = $1",
        case_id,
    )
    return None if row is None else _record(row)


async def case_by_report(conn: Connection, channel: str, external_id: str) -> CaseRecord | None:
    row = await conn.fetchrow(
        f"SELECT {_CASE_COLUMNS} FROM cases c LEFT JOIN case_progress p USING (case_id) "  # noqa: S608
        "WHERE c.channel = $1 AND c.external_id = $2",
        channel,
        external_id,
    )
    return None if row is None else _record(row)


@dataclass(frozen=True)
class TimelineRow:
    event_id: str
    event_type: str
    occurred_at: datetime
    source: str
    data: dict[str, Any]


def _jsonb_order(value: Any) -> Any:
    """``value`` with every object's keys in jsonb's order: shorter first, then bytewise.

    The timeline was stored as jsonb, which answered in that order; the
    endpoint keeps answering so now that it is stored as written.
    """
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (len(k.encode()), k.encode()))
        return {k: _jsonb_order(value[k]) for k in keys}
    if isinstance(value, list):
        return [_jsonb_order(v) for v in value]
    return value


async def case_timeline(conn: Connection, case_id: str) -> list[TimelineRow]:
    rows = await conn.fetch(_CASE_TIMELINE, [case_id])
    return [
        TimelineRow(
            r["event_id"],
            r["event_type"],
            r["occurred_at"],
            r["source"],
            _jsonb_order(json.loads(r["data"])),
        )
        for r in rows
    ]


async def duplicates_of(conn: Connection, case_id: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT case_id FROM cases WHERE master_case_id = $1 ORDER BY registered_at, case_id",
        case_id,
    )
    return [r["case_id"] for r in rows]


@dataclass(frozen=True)
class RequestQuery:
    """Open311 ``GET requests`` filters; None means "any"."""

    case_ids: list[str] | None = None
    category_codes: list[str] | None = None
    start: datetime | None = None
    end: datetime | None = None
    is_open: bool | None = None
    limit: int = 1000


async def find_cases(conn: Connection, query: RequestQuery) -> list[CaseRecord]:
    rows = await conn.fetch(
        f"""
        SELECT {_CASE_COLUMNS}
        FROM cases c LEFT JOIN case_progress p USING (case_id)
        WHERE ($1::text[] IS NULL OR c.case_id = ANY($1::text[]))
          AND ($2::text[] IS NULL OR c.category_code = ANY($2::text[]))
          AND ($3::timestamptz IS NULL OR c.reported_at >= $3)
          AND ($4::timestamptz IS NULL OR c.reported_at <= $4)
          AND ($5::bool IS NULL OR COALESCE(p.is_open, c.outcome = 'registered') = $5)
        ORDER BY c.reported_at DESC, c.case_id
        LIMIT $6
        """,  # noqa: S608
        query.case_ids,
        query.category_codes,
        query.start,
        query.end,
        query.is_open,
        query.limit,
    )
    return [_record(r) for r in rows]
