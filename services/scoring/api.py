"""Scoring's HTTP API: score tables, one unit's scores, the daily and weekly reports, in JSON or CSV.

Every route reads; nothing here changes state. A bad query parameter is a
422 naming the parameter, an unknown unit a 404, never a 500.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Header, HTTPException, Path, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from services.scoring import reports, store
from services.scoring.context import ScoringContext
from services.scoring.domain.figures import UnitType
from shared.periods import Period, PeriodType, parse_period, period_of
from shared.runtime import ServiceRuntime

Format = Literal["json", "csv"]
FormatQuery = Annotated[
    Format | None, Query(description="json (default) or csv; Accept: text/csv also works")
]
AcceptHeader = Annotated[str | None, Header(include_in_schema=False)]
_UNIT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")


class NotFound(BaseModel):
    detail: str


#: Every route answers JSON, or CSV when asked (``format=csv`` or ``Accept: text/csv``).
_TABLE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "JSON, or CSV when asked",
        "content": {"application/json": {}, "text/csv": {"schema": {"type": "string"}}},
    }
}


def _invalid(field: str, message: str) -> HTTPException:
    return HTTPException(
        status_code=422,
        detail=[{"loc": ["query", field], "msg": message, "type": "value_error"}],
    )


def _period(label: str, field: str, period_type: PeriodType | None = None) -> Period:
    try:
        return parse_period(label, period_type)
    except ValueError as exc:
        raise _invalid(field, str(exc)) from None


def _wants_csv(format: Format | None, accept: str | None) -> bool:
    if format is not None:
        return format == "csv"
    return accept is not None and "text/csv" in accept and "application/json" not in accept


def _csv(rows: Sequence[dict[str, Any]], filename: str) -> Response:
    buffer = io.StringIO()
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    writer = csv.DictWriter(buffer, fieldnames=columns or ["empty"], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def add_routes(app: FastAPI, runtime: ServiceRuntime, context: ScoringContext) -> None:
    def now_period(period_type: PeriodType) -> Period:
        assert runtime.clock is not None
        return period_of(period_type, runtime.clock.now())

    @app.get(
        "/v1/scores",
        summary="A period's ranked table of one unit type, every indicator",
        responses=_TABLE,
    )
    async def scores_table(
        unit_type: Annotated[
            UnitType, Query(description="department, area, community, grid or district")
        ] = "department",
        period: Annotated[
            str | None,
            Query(description="2026-11-17, 2026-W47, 2026-11, 2026-Q4 or 2026; default this month"),
        ] = None,
        format: FormatQuery = None,
        accept: AcceptHeader = None,
    ) -> Response:
        chosen = _period(period, "period") if period is not None else now_period("month")
        async with runtime.db.acquire() as conn:
            report = await reports.score_table_report(conn, context, unit_type, chosen)
        if _wants_csv(format, accept):
            rows = [reports.flat_score_row(r) for r in report["units"]]
            return _csv(rows, f"scores-{unit_type}-{chosen.label}.csv")
        return JSONResponse(report)

    @app.get(
        "/v1/scores/{unit_id}",
        summary="One unit's indicators, rates, score, band and rank",
        responses={**_TABLE, 404: {"model": NotFound, "description": "no such unit"}},
    )
    async def unit_scores(
        unit_id: Annotated[
            str, Path(description="department id, street office id, community or grid code")
        ],
        period: Annotated[str | None, Query(description="period label; default this month")] = None,
        unit_type: Annotated[
            UnitType | None, Query(description="needed only if the id is ambiguous")
        ] = None,
        format: FormatQuery = None,
        accept: AcceptHeader = None,
    ) -> Response:
        if not _UNIT_ID.match(unit_id):
            raise HTTPException(
                422,
                detail=[
                    {"loc": ["path", "unit_id"], "msg": "not a unit id", "type": "value_error"}
                ],
            )
        chosen = _period(period, "period") if period is not None else now_period("month")
        kind = unit_type or _unit_type_of(context, unit_id)
        async with runtime.db.acquire() as conn:
            if kind is None:
                found = await store.unit_types_of(conn, unit_id, chosen.type, chosen.label)
                if not found:
                    raise HTTPException(404, detail=f"unknown unit {unit_id!r}")
                kind = found[0]  # type: ignore[assignment]
            assert kind is not None
            report = await reports.unit_report(conn, context, kind, unit_id, chosen)
        if _wants_csv(format, accept):
            return _csv([reports.flat_score_row(report)], f"scores-{unit_id}-{chosen.label}.csv")
        return JSONResponse(report)

    @app.get(
        "/v1/reports/daily",
        summary="日报备: the day's intake, dispatch, closures, overdue, rebounds",
        responses=_TABLE,
    )
    async def daily(
        date: Annotated[str | None, Query(description="YYYY-MM-DD; default today")] = None,
        section: Annotated[
            Literal["departments", "areas", "rebounds"], Query(description="table for CSV")
        ] = "departments",
        format: FormatQuery = None,
        accept: AcceptHeader = None,
    ) -> Response:
        day = _period(date, "date", "day") if date is not None else now_period("day")
        async with runtime.db.acquire() as conn:
            report, tables = await reports.daily_report(conn, context, day)
        if _wants_csv(format, accept):
            return _csv(tables[section], f"daily-{day.label}-{section}.csv")
        return JSONResponse(report)

    @app.get(
        "/v1/reports/weekly",
        summary="周调度: the week's ranking, movers, overdue and rebound lists",
        responses=_TABLE,
    )
    async def weekly(
        week: Annotated[
            str | None, Query(description="ISO week, YYYY-Www; default this week")
        ] = None,
        section: Annotated[
            Literal["ranking", "areas", "movers", "overdue", "rebounds"],
            Query(description="table for CSV"),
        ] = "ranking",
        format: FormatQuery = None,
        accept: AcceptHeader = None,
    ) -> Response:
        chosen = _period(week, "week", "week") if week is not None else now_period("week")
        async with runtime.db.acquire() as conn:
            report, tables = await reports.weekly_report(conn, context, chosen)
        if _wants_csv(format, accept):
            return _csv(tables[section], f"weekly-{chosen.label}-{section}.csv")
        return JSONResponse(report)


def _unit_type_of(context: ScoringContext, unit_id: str) -> UnitType | None:
    """What kind of unit an id names in the reference data, if it names one."""
    ref = context.reference
    department = ref.department(unit_id)
    if department is not None:
        return "area" if department.kind.value == "street_office" else "department"
    if ref.community(unit_id) is not None:
        return "community"
    if ref.cell(unit_id) is not None:
        return "grid"
    if unit_id == ref.district.code:
        return "district"
    return None
