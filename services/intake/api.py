"""Intake's native HTTP API: file a report, read a case, post department feedback.

Bad input is a specific 4xx naming the field, never a 500: a report that is
not a report is a 400, a report that cannot be filed a 422 with the same
machine-readable reasons ``report.rejected`` carries.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from services.intake import open311
from services.intake.domain import (
    FeedbackRefused,
    FeedbackRequest,
    Merged,
    Registered,
    Rejected,
    Repeated,
    Verdict,
)
from services.intake.domain.registration import is_clean_text
from services.intake.handlers import FeedbackPosted, Intake
from services.intake.store import CaseRecord, case_record, case_timeline, duplicates_of
from shared import auth
from shared.apikeys import Principal
from shared.events.feedback import ActorRole, Rating
from shared.events.reports import AttributeValue, Reporter, ReportSubmitted
from shared.events.types import (
    Channel,
    ComponentId,
    ExternalId,
    Identifier,
    MediaUrls,
    Note,
    ReportLocation,
    ShortText,
    Text,
)
from shared.ids import new_ulid

_IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")


# -- request and response bodies ------------------------------------------------------


class ReportIn(BaseModel):
    """A report in the native JSON form: ``report.submitted``'s data, ids and time optional."""

    model_config = ConfigDict(extra="forbid")

    report_id: Identifier | None = Field(default=None, description="default: a new id")
    channel: Channel
    external_id: ExternalId = Field(description="the channel's own id; a retry reuses it")
    category_code: str = Field(min_length=1, max_length=32)
    description: Text = ""
    location: ReportLocation
    component_id: ComponentId | None = None
    attributes: dict[str, AttributeValue] = Field(default_factory=dict)
    media_urls: MediaUrls = Field(default_factory=list)
    reported_at: AwareDatetime | None = Field(default=None, description="default: now")
    inspector_id: Identifier | None = None
    reporter: Reporter | None = Field(
        default=None, description="stored for call-backs, never published"
    )


class Reason(BaseModel):
    code: str
    field: str | None = None
    message: str


class Problem(BaseModel):
    """Why a request failed: machine-readable reasons and one readable message."""

    message: str
    reasons: list[Reason] = Field(default_factory=list)


class ReportOutcome(BaseModel):
    case_id: str
    report_id: str
    outcome: Literal["registered", "merged"]
    repeated: bool = Field(description="true when the channel had sent this report before")
    master_case_id: str | None = None
    grid_code: str | None = None
    area: str | None = None
    status_url: str


class TimelineItem(BaseModel):
    event_id: str
    type: str
    at: datetime
    source: str
    data: dict[str, Any]


class CaseView(BaseModel):
    """A case as intake knows it: the report filed, where it stands, and everything that happened."""

    case_id: str
    outcome: Literal["registered", "merged"]
    status: str
    master_case_id: str | None
    duplicates: list[str]
    category_code: str
    area: str | None
    department: str | None
    co_departments: list[str]
    deadlines: dict[str, Any] | None
    dispatch_number: int
    rework_count: int
    returns: int
    warned: bool
    overdue: bool
    notice_level: int
    rating: str | None
    closed_at: datetime | None
    on_time: bool | None
    status_note: str | None
    reported_at: datetime
    registered_at: datetime
    updated_at: datetime | None
    case: dict[str, Any] = Field(description="the case.registered / case.merged data")
    report: dict[str, Any] = Field(description="what the channel reported (no contact data)")
    timeline: list[TimelineItem]


class FeedbackIn(BaseModel):
    """Feedback on a case, published to ``feedback`` as ``case.<type>``."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["accepted", "handled", "returned", "verified", "verification_failed", "rated"]
    actor_id: Identifier
    actor_role: ActorRole | None = Field(default=None, description="default by type")
    note: Note = ""
    department: Identifier | None = Field(
        default=None, description="default: the department the case is dispatched to"
    )
    reason: ShortText | None = Field(default=None, description="returned, verification_failed")
    suggested_department: Identifier | None = Field(default=None, description="returned")
    media_urls: MediaUrls = Field(default_factory=list)
    rating: Rating | None = Field(default=None, description="rated")
    lookback: bool | None = Field(default=None, description="verified/failed: a look-back check")


class FeedbackOut(BaseModel):
    event_id: str
    type: str
    case_id: str
    time: datetime


# -- helpers ------------------------------------------------------------------------


def _problem(status: int, message: str, reasons: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse({"message": message, "reasons": reasons}, status_code=status)


def _validation_reasons(errors: list[Any], skip: int = 0) -> list[dict[str, Any]]:
    reasons = []
    for err in errors[:20]:
        loc = [str(p) for p in err.get("loc", ())][skip:]
        missing = err.get("type") == "missing"
        reasons.append(
            {
                "code": "missing_field" if missing else "invalid_field",
                "field": ".".join(loc) or None,
                "message": str(err.get("msg", "invalid"))[:500],
            }
        )
    return reasons


def unclean_field(value: Any, path: str = "") -> str | None:
    """The path of the first string (or key) that holds a NUL or an unpaired surrogate."""
    if isinstance(value, str):
        return None if is_clean_text(value) else (path or "(root)")
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and not is_clean_text(key):
                return path or "(root)"
            found = unclean_field(item, where)
            if found is not None:
                return found
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = unclean_field(item, f"{path}.{i}" if path else str(i))
            if found is not None:
                return found
    return None


def _unclean_problem(field: str) -> JSONResponse:
    return _problem(
        400,
        f"{field} contains a NUL or an unpaired surrogate",
        [{"code": "invalid_field", "field": field, "message": "not storable text"}],
    )


def verdict_body(verdict: Verdict, repeated_record: CaseRecord | None = None) -> dict[str, Any]:
    if isinstance(verdict, Registered):
        event = verdict.event
        return ReportOutcome(
            case_id=event.case_id,
            report_id=event.report_id,
            outcome="registered",
            repeated=False,
            grid_code=event.grid_code,
            area=event.area,
            status_url=f"/v1/cases/{event.case_id}",
        ).model_dump(mode="json")
    if isinstance(verdict, Merged):
        merged = verdict.event
        return ReportOutcome(
            case_id=merged.case_id,
            report_id=merged.report_id,
            outcome="merged",
            repeated=False,
            master_case_id=merged.master_case_id,
            grid_code=merged.grid_code,
            area=merged.area,
            status_url=f"/v1/cases/{merged.case_id}",
        ).model_dump(mode="json")
    assert isinstance(verdict, Repeated) and repeated_record is not None
    record = repeated_record
    return ReportOutcome(
        case_id=record.case_id,
        report_id=str(record.detail.get("report_id", "")),
        outcome="merged" if record.outcome == "merged" else "registered",
        repeated=True,
        master_case_id=record.master_case_id,
        grid_code=record.detail.get("grid_code"),
        area=record.detail.get("area"),
        status_url=f"/v1/cases/{record.case_id}",
    ).model_dump(mode="json")


def case_view(record: CaseRecord, duplicates: list[str], timeline: list[TimelineItem]) -> CaseView:
    p = record.progress
    return CaseView(
        case_id=record.case_id,
        outcome="merged" if record.outcome == "merged" else "registered",
        status=p.status,
        master_case_id=record.master_case_id,
        duplicates=duplicates,
        category_code=record.category_code,
        area=p.area or record.detail.get("area"),
        department=p.department,
        co_departments=list(p.co_departments),
        deadlines=p.deadlines.model_dump(mode="json") if p.deadlines else None,
        dispatch_number=p.dispatch_number,
        rework_count=p.rework_count,
        returns=p.returns,
        warned=p.warned,
        overdue=p.overdue,
        notice_level=p.notice_level,
        rating=p.rating,
        closed_at=p.closed_at,
        on_time=p.on_time,
        status_note=p.note,
        reported_at=record.reported_at,
        registered_at=record.registered_at,
        updated_at=p.updated_at or record.registered_at,
        case=record.detail,
        report=record.report,
        timeline=timeline,
    )


# -- routes ---------------------------------------------------------------------------


def routes(intake: Intake) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["intake"])

    def authenticator() -> auth.Authenticator:
        return intake.runtime_or_fail().auth

    a_channel = auth.require(authenticator, "channel")
    a_department_or_centre = auth.require(authenticator, "department", "centre")

    @router.post(
        "/reports",
        status_code=201,
        response_model=ReportOutcome,
        responses={
            200: {"model": ReportOutcome, "description": "sent before: the same case"},
            400: {"model": Problem, "description": "not a report (names the field)"},
            422: {"model": Problem, "description": "cannot be filed: the reasons"},
            **auth.RESPONSES,
        },
        summary="File a report: a new case, a merged duplicate, or the reasons it cannot be filed",
        description="Takes a channel's key; the report's `channel` must be the key's channel.",
    )
    async def post_report(
        body: ReportIn, principal: Principal = Depends(a_channel)
    ) -> JSONResponse:
        if body.channel != principal.id:
            raise auth.forbidden(
                "channel_mismatch",
                f"this key files reports for channel {principal.id!r}, not {body.channel!r}",
            )
        bad = unclean_field(body.model_dump(mode="python", exclude={"media_urls"}))
        if bad is not None:
            return _unclean_problem(bad)
        now = intake.clock.now()
        doc = body.model_dump(exclude_none=False)
        doc["report_id"] = body.report_id or new_ulid()
        doc["reported_at"] = body.reported_at or now
        try:
            report = ReportSubmitted.model_validate(doc)
        except ValidationError as exc:
            reasons = _validation_reasons(exc.errors())
            return _problem(400, "not a valid report", reasons)
        outcome = await intake.register_one(report, now, "http")
        return respond_to_verdict(outcome)

    @router.get(
        "/cases/{case_id}",
        response_model=CaseView,
        responses={404: {"model": Problem}},
        summary="A case: status, department, area, deadlines and its whole timeline",
    )
    async def get_case(case_id: str) -> JSONResponse:
        if not _IDENTIFIER.match(case_id):
            return _problem(404, f"no case {case_id!r}", [])
        async with intake.runtime_or_fail().db.acquire() as conn:
            record = await case_record(conn, case_id)
            if record is None:
                return _problem(404, f"no case {case_id!r}", [])
            duplicates = await duplicates_of(conn, case_id)
            rows = await case_timeline(conn, case_id)
        timeline = [
            TimelineItem(
                event_id=r.event_id,
                type=r.event_type,
                at=r.occurred_at,
                source=r.source,
                data=r.data,
            )
            for r in rows
        ]
        return JSONResponse(case_view(record, duplicates, timeline).model_dump(mode="json"))

    @router.post(
        "/cases/{case_id}/events",
        status_code=202,
        response_model=FeedbackOut,
        responses={
            400: {"model": Problem},
            404: {"model": Problem},
            409: {"model": Problem, "description": "the case cannot take this feedback now"},
            422: {"model": Problem},
            **auth.RESPONSES,
        },
        summary="Department feedback on a case, published to the feedback topic",
        description="A department's key posts accepted, handled and returned on the cases it "
        "leads or co-handles; the supervision centre's key posts verified, verification_failed "
        "and rated. Anything else is a 403 naming why.",
    )
    async def post_case_event(
        case_id: str,
        body: FeedbackIn,
        principal: Principal = Depends(a_department_or_centre),
    ) -> JSONResponse:
        if not _IDENTIFIER.match(case_id):
            return _problem(404, f"no case {case_id!r}", [])
        bad = unclean_field(body.model_dump(mode="python", exclude={"media_urls"}))
        if bad is not None:
            return _unclean_problem(bad)
        request = FeedbackRequest(
            kind=body.type,
            actor_id=body.actor_id,
            actor_role=body.actor_role,
            note=body.note,
            department=body.department,
            reason=body.reason,
            suggested_department=body.suggested_department,
            media_urls=tuple(str(u) for u in body.media_urls),
            rating=body.rating,
            lookback=body.lookback,
        )
        async with intake.runtime_or_fail().transaction() as tx:
            outcome = await intake.post_feedback(tx, case_id, request, principal)
        if outcome is None:
            return _problem(404, f"no case {case_id!r}", [])
        if isinstance(outcome, FeedbackRefused):
            status, code = _REFUSAL[outcome.kind]
            return _problem(
                status,
                outcome.message,
                [{"code": code, "field": outcome.field, "message": outcome.message[:500]}],
            )
        assert isinstance(outcome, FeedbackPosted)
        env = outcome.envelope
        body_out = FeedbackOut(event_id=env.id, type=env.type, case_id=case_id, time=env.time)
        return JSONResponse(body_out.model_dump(mode="json"), status_code=202)

    return router


_REFUSAL = {"conflict": (409, "conflict"), "invalid": (422, "invalid_field"),
            "forbidden": (403, "forbidden")}  # fmt: skip


def respond_to_verdict(outcome: tuple[Verdict, CaseRecord | None]) -> JSONResponse:
    verdict, record = outcome
    if isinstance(verdict, Rejected):
        event = verdict.event
        return _problem(422, event.message, [r.model_dump(mode="json") for r in event.reasons])
    status = 200 if isinstance(verdict, Repeated) else 201
    return JSONResponse(verdict_body(verdict, record), status_code=status)


def body_too_large(scope: Scope, limit: int) -> Response:
    """The 413 for a body over HTTP_MAX_BODY_BYTES: Open311's error list there, a Problem here."""
    message = f"request body exceeds the limit of {limit} bytes"
    path = str(scope.get("path", ""))
    if path.startswith(open311.PREFIX):
        return open311.error_response(path.rsplit(".", 1)[-1], 413, [message])
    return _problem(413, message, [{"code": "body_too_large", "field": "body", "message": message}])


def create_app(intake: Intake) -> FastAPI:
    app = FastAPI(
        title="intake",
        summary="Reports in from every channel; registered cases, merged duplicates, rejections",
        version="1.0.0",
    )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        reasons = _validation_reasons(list(exc.errors()), skip=1)
        first = reasons[0] if reasons else {"field": None, "message": "invalid request"}
        message = f"{first['field'] or 'request'}: {first['message']}"
        return _problem(400, message, reasons)

    @app.exception_handler(StarletteHTTPException)
    async def http_problem(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # FastAPI's own refusals (a body that is not JSON, an unknown route, a wrong
        # method) in intake's Problem shape, like every other refusal here.
        message = str(exc.detail)
        code = "invalid_body" if exc.status_code == 400 else f"http_{exc.status_code}"
        field = "body" if exc.status_code == 400 else None
        response = _problem(
            exc.status_code, message, [{"code": code, "field": field, "message": message}]
        )
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    app.include_router(routes(intake))
    app.include_router(open311.routes(intake))
    return app
