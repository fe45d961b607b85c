"""The reports people read: score tables, the daily report (日报备) and the weekly dispatch (周调度).

Each builder returns plain JSON-ready data, plus the named tables a CSV
export can choose from. Figures come from the unit-period rows; the lists
(overdue cases, bounce-backs) from the case facts and the rebound records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from services.scoring import store
from services.scoring.context import ScoringContext
from services.scoring.domain.figures import INDEX, ZERO, Figures, UnitType
from services.scoring.domain.scores import ScoreRow, ScoreTable, rates
from services.scoring.tables import INDICATORS, RATES, load_table
from shared.periods import Period

if TYPE_CHECKING:
    from shared.db import Connection

Table = list[dict[str, Any]]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def indicators_of(figures: Figures) -> dict[str, int]:
    return {name: figures[INDEX[name]] for name in INDICATORS}


def rates_of(figures: Figures, context: ScoringContext) -> dict[str, float | None]:
    unit_rates = rates(figures, context.rules)
    return {name: unit_rates.get(name) for name in RATES}


def score_row(context: ScoringContext, unit_type: str, row: ScoreRow) -> dict[str, Any]:
    return {
        "rank": row.rank,
        "unit_id": row.unit_id,
        "name": context.unit_name(unit_type, row.unit_id),
        "score": row.score,
        "band": row.band,
        "flags": {"bottom_three": row.bottom, "talk": row.talk},
        "indicators": indicators_of(row.figures),
        "rates": {name: row.rates.get(name) for name in RATES},
    }


def flat_score_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """One line of a score table's CSV: every indicator and rate in its own column."""
    out = {k: row[k] for k in ("rank", "unit_id", "name", "score", "band")}
    out.update(row["flags"])
    out.update(row["indicators"])
    out.update(row["rates"])
    for extra in ("previous_rank", "movement"):
        if extra in row:
            out[extra] = row[extra]
    return out


async def _totals(conn: Connection, context: ScoringContext, period: Period) -> dict[str, Any]:
    district = context.reference.district.code
    figures = (await store.group_figures(conn, period.type, period.label, "district")).get(
        district, ZERO
    )
    return {"indicators": indicators_of(figures), "rates": rates_of(figures, context)}


async def score_table_report(
    conn: Connection, context: ScoringContext, unit_type: UnitType, period: Period
) -> dict[str, Any]:
    table = await load_table(conn, context, unit_type, period)
    return {
        "unit_type": unit_type,
        "period_type": period.type,
        "period": period.label,
        "starts_at": period.start.isoformat(),
        "ends_at": period.end.isoformat(),
        "final": await store.period_closed(conn, period.type, period.label),
        "ranked_units": table.ranked_units,
        "units": [score_row(context, unit_type, row) for row in table.rows],
        "totals": await _totals(conn, context, period),
    }


async def unit_report(
    conn: Connection, context: ScoringContext, unit_type: UnitType, unit_id: str, period: Period
) -> dict[str, Any]:
    table = await load_table(conn, context, unit_type, period)
    row = table.row(unit_id)
    if row is None:
        # A known unit with nothing in the period: zeros, no score, no rank.
        row = ScoreRow(unit_id, ZERO, rates(ZERO, context.rules), None, None, None, False, False)
    return {
        "unit_type": unit_type,
        "period_type": period.type,
        "period": period.label,
        "final": await store.period_closed(conn, period.type, period.label),
        "ranked_units": table.ranked_units,
        **score_row(context, unit_type, row),
    }


def _rebound(row: store.ReboundRow) -> dict[str, Any]:
    out = asdict(row)
    out["raised_at"] = row.raised_at.isoformat()
    return out


def _overdue(case: store.OverdueCase) -> dict[str, Any]:
    return {
        "case_id": case.case_id,
        "department": case.department,
        "area": case.area,
        "grid_code": case.grid_code,
        "first_dispatched_at": _iso(case.first_dispatched_at),
        "overdue_at": case.overdue_at.isoformat(),
        "closed_at": _iso(case.closed_at),
    }


async def daily_report(
    conn: Connection, context: ScoringContext, day: Period
) -> tuple[dict[str, Any], dict[str, Table]]:
    """日报备: the day's intake, first dispatches, closures, overdue by department, rebounds."""
    figures = await store.days_figures(conn, [day.label], ["department", "area", "district"])
    open_overdue = await store.open_overdue_by_department(conn, day.end)
    rebounds = await store.rebounds_between(conn, day.start, day.end)
    total = figures.get(("district", context.reference.district.code), ZERO)

    def count(f: Figures, name: str) -> int:
        return f[INDEX[name]]

    departments: Table = []
    names = sorted({u for t, u in figures if t == "department"} | set(open_overdue))
    for unit in names:
        f = figures.get(("department", unit), ZERO)
        departments.append(
            {
                "department": unit,
                "name": context.unit_name("department", unit),
                "dispatched": count(f, "due"),
                "closures": count(f, "closures"),
                "became_overdue": count(f, "became_overdue"),
                "open_overdue": open_overdue.get(unit, 0),
                "rebounds": count(f, "rebounds"),
            }
        )
    areas: Table = [
        {
            "area": unit,
            "name": context.unit_name("area", unit),
            "registered": count(f, "registered"),
            "merged": count(f, "merged"),
            "dispatched": count(f, "due"),
            "closures": count(f, "closures"),
            "became_overdue": count(f, "became_overdue"),
            "rebounds": count(f, "rebounds"),
        }
        for (unit_type, unit), f in sorted(figures.items())
        if unit_type == "area"
    ]
    rebound_list = [_rebound(r) for r in rebounds]
    report = {
        "date": day.label,
        "intake": {
            "registered": count(total, "registered"),
            "merged": count(total, "merged"),
            "rejected": count(total, "rejected"),
        },
        "totals": {
            "dispatched": count(total, "due"),
            "closures": count(total, "closures"),
            "became_overdue": count(total, "became_overdue"),
            "open_overdue": sum(open_overdue.values()),
            "rebounds": count(total, "rebounds"),
        },
        "departments": departments,
        "areas": areas,
        "rebounds": rebound_list,
    }
    return report, {"departments": departments, "areas": areas, "rebounds": rebound_list}


def movers(
    context: ScoringContext, unit_type: str, now: ScoreTable, before: ScoreTable
) -> list[dict[str, Any]]:
    """Ranked units whose rank changed since the previous week; ``change`` > 0 is a climb."""
    previous = {row.unit_id: row.rank for row in before.rows if row.rank is not None}
    out: list[dict[str, Any]] = []
    for row in now.rows:
        if row.rank is None:
            continue
        was = previous.get(row.unit_id)
        if was == row.rank:
            continue
        out.append(
            {
                "unit_type": unit_type,
                "unit_id": row.unit_id,
                "name": context.unit_name(unit_type, row.unit_id),
                "rank": row.rank,
                "previous_rank": was,
                "change": None if was is None else was - row.rank,
            }
        )
    out.sort(key=lambda m: (-abs(m["change"] or 0), str(m["unit_id"])))
    return out


def _with_movement(rows: Sequence[dict[str, Any]], before: ScoreTable) -> Table:
    previous = {row.unit_id: row.rank for row in before.rows}
    out = []
    for row in rows:
        was = previous.get(row["unit_id"])
        change = None if was is None or row["rank"] is None else was - row["rank"]
        out.append({**row, "previous_rank": was, "movement": change})
    return out


async def weekly_report(
    conn: Connection, context: ScoringContext, week: Period
) -> tuple[dict[str, Any], dict[str, Table]]:
    """周调度: the week's ranking, movers against the previous week, overdue and rebound lists."""
    previous_week = week.previous()
    ranking: dict[str, Table] = {}
    moved: Table = []
    unit_types: tuple[UnitType, ...] = ("department", "area")
    for unit_type in unit_types:
        table = await load_table(conn, context, unit_type, week)
        before = await load_table(conn, context, unit_type, previous_week)
        rows = [score_row(context, unit_type, row) for row in table.rows]
        ranking[unit_type] = _with_movement(rows, before)
        moved += movers(context, unit_type, table, before)
    overdue = [_overdue(c) for c in await store.overdue_between(conn, week.start, week.end)]
    rebound_list = [_rebound(r) for r in await store.rebounds_between(conn, week.start, week.end)]
    report = {
        "week": week.label,
        "starts_at": week.start.isoformat(),
        "ends_at": week.end.isoformat(),
        "previous_week": previous_week.label,
        "ranking": ranking,
        "movers": moved,
        "overdue": overdue,
        "rebounds": rebound_list,
    }
    tables = {
        "ranking": [flat_score_row(r) for r in ranking["department"]],
        "areas": [flat_score_row(r) for r in ranking["area"]],
        "movers": moved,
        "overdue": overdue,
        "rebounds": rebound_list,
    }
    return report, tables
