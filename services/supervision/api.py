"""Supervision's HTTP API (read-only): the overdue list, a case's timers, the hotspots.

Every query parameter is validated (FastAPI answers 422 naming the field);
an unknown case is a 404 that says so.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import FastAPI, HTTPException, Path, Query
from pydantic import BaseModel, Field

from services.supervision import store
from services.supervision.domain.timers import TimerName, overdue_status

if TYPE_CHECKING:
    from shared.runtime import ServiceRuntime

_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"
Identifier = Annotated[str, Query(min_length=1, max_length=64, pattern=_ID_PATTERN)]
QuarterLabel = Annotated[str, Query(pattern=r"^[0-9]{4}-Q[1-4]$", description="e.g. 2026-Q4")]


class NotFound(BaseModel):
    detail: str


class OverdueCase(BaseModel):
    case_id: str
    department: str
    area: str
    timer: Literal["sign_for", "handle", "verify"] = Field(description="the limit that passed")
    deadline: datetime
    late_by: timedelta = Field(description="natural time since the deadline, on the clock")
    late_by_seconds: float
    notice_level: int = Field(description="highest rung of the notice ladder issued (0: none)")
    dispatch_number: int
    category_code: str | None
    grid_code: str | None
    parked: bool


class OverdueList(BaseModel):
    as_of: datetime = Field(description="the service clock's now")
    count: int
    cases: list[OverdueCase]


class ArmedTimer(BaseModel):
    kind: TimerName
    level: int = Field(description="ladder level for a notice timer, else 0")
    due_at: datetime
    deadline: datetime = Field(description="the limit the timer chases")
    dispatch_number: int
    paused: bool = Field(
        description="the case is parked; the timer resumes with its remaining time"
    )
    armed_at: datetime


class CaseTimers(BaseModel):
    case_id: str
    department: str | None
    area: str | None
    dispatch_number: int | None
    parked: bool
    closed: bool
    overdue_timer: str | None
    notice_level: int
    timers: list[ArmedTimer]


class KeyProblem(BaseModel):
    place_key: str
    quarter: str
    category_code: str
    grid_code: str
    area: str
    rebounds: int = Field(description="bounce-backs at the place in the quarter")
    listed_at: datetime
    last_rebound_at: datetime


class ReboundPlace(BaseModel):
    place_key: str
    category_code: str
    grid_code: str
    area: str
    rebounds: int
    highest_count: int
    bureau_notices: int
    last_rebound_at: datetime
    last_case_id: str


class Hotspots(BaseModel):
    quarter: str | None
    key_problems: list[KeyProblem]
    places: list[ReboundPlace]


def add_routes(app: FastAPI, runtime: ServiceRuntime) -> None:
    @app.get("/v1/overdue", response_model=OverdueList, tags=["supervision"])
    async def list_overdue(
        department: Identifier | None = None,
        area: Identifier | None = None,
        timer: Annotated[Literal["sign_for", "handle", "verify"] | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> OverdueList:
        """Cases showing red now, most overdue first, with how late and the notice level."""
        assert runtime.clock is not None
        now = runtime.clock.now()
        async with runtime.db.acquire() as conn:
            rows = await store.overdue_cases(
                conn, department=department, area=area, timer=timer, limit=limit, offset=offset
            )
        cases = [
            OverdueCase(
                case_id=r["case_id"],
                department=r["department"],
                area=r["area"],
                timer=r["overdue_timer"],
                deadline=r["overdue_deadline"],
                late_by=max(now - r["overdue_deadline"], timedelta(0)),
                late_by_seconds=max((now - r["overdue_deadline"]).total_seconds(), 0.0),
                notice_level=r["notice_level"] if r["overdue_timer"] == "handle" else 0,
                dispatch_number=r["dispatch_number"],
                category_code=r["category_code"],
                grid_code=r["grid_code"],
                parked=r["parked"],
            )
            for r in rows
        ]
        return OverdueList(as_of=now, count=len(cases), cases=cases)

    @app.get(
        "/v1/cases/{case_id}/timers",
        response_model=CaseTimers,
        responses={404: {"model": NotFound, "description": "the case is unknown to supervision"}},
        tags=["supervision"],
    )
    async def case_timers(
        case_id: Annotated[str, Path(min_length=1, max_length=64, pattern=_ID_PATTERN)],
    ) -> CaseTimers:
        """The timers a case has armed now, earliest first."""
        async with runtime.db.acquire() as conn:
            state = await store.find_case(conn, case_id)
            if state is None:
                raise HTTPException(404, f"case {case_id} is unknown to supervision")
            rows = await store.case_timers(conn, case_id)
        dispatch = state.dispatch
        red = overdue_status(state)
        return CaseTimers(
            case_id=case_id,
            department=dispatch.department if dispatch else None,
            area=dispatch.area if dispatch else None,
            dispatch_number=dispatch.number if dispatch else None,
            parked=state.is_parked,
            closed=state.is_closed,
            overdue_timer=red.timer if red else None,
            notice_level=state.notice_level,
            timers=[ArmedTimer.model_validate(dict(r)) for r in rows],
        )

    @app.get("/v1/hotspots", response_model=Hotspots, tags=["supervision"])
    async def hotspots(
        quarter: QuarterLabel | None = None,
        area: Identifier | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> Hotspots:
        """The key-problem list (重点问题数据库) and the places that bounced back, most first."""
        async with runtime.db.acquire() as conn:
            problems = await store.key_problems(conn, quarter, area, limit)
            places = await store.rebound_places(conn, quarter, area, limit)
        return Hotspots(
            quarter=quarter,
            key_problems=[KeyProblem.model_validate(dict(r)) for r in problems],
            places=[ReboundPlace.model_validate(dict(r)) for r in places],
        )
