"""Dispatch's HTTP API: the human dispatcher's queue, a case's assignment, and manual dispatch.

A dispatcher's assignment is a unit of work like a consumed batch: it locks
the case, lets the domain decide, saves and publishes in one transaction, so
it can never interleave with a return of the same case arriving on Kafka.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Annotated, Literal, Protocol

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from services.dispatch import metrics, store
from services.dispatch.domain.cases import ManualDispatchRefused, Rulebook, assign_manually
from services.dispatch.handlers import SOURCE
from shared import auth
from shared.apikeys import Principal
from shared.events import CaseDispatched, CaseRedispatched, Deadlines, make_event
from shared.outbox import Tx

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"
DEPARTMENT_PATTERN = r"^[a-z][a-z0-9-]{1,39}$"

CaseId = Annotated[str, Path(min_length=1, max_length=64, pattern=ID_PATTERN)]


class Service(Protocol):
    """What the API needs from the running service."""

    @property
    def rules(self) -> Rulebook: ...

    def now(self) -> datetime: ...

    def transaction(self) -> AbstractAsyncContextManager[Tx]: ...

    @property
    def auth(self) -> auth.Authenticator: ...


class Problem(BaseModel):
    """Why a request was refused: a machine-readable code, the input at fault, a sentence."""

    code: str
    field: str | None = None
    message: str


class ProblemResponse(BaseModel):
    detail: Problem


class EscalatedCase(BaseModel):
    case_id: str
    reason: Literal["returns_exhausted", "no_candidate"]
    detail: str
    returns: int
    last_department: str | None
    tried_departments: list[str]
    area: str
    category_code: str
    grid_code: str
    urgency: str
    escalated_at: datetime


class EscalatedQueue(BaseModel):
    total: int = Field(description="cases in the queue that match the filters")
    cases: list[EscalatedCase] = Field(description="urgent first, then the longest waiting")


class Assignment(BaseModel):
    """A case as dispatch holds it."""

    case_id: str
    status: Literal["dispatched", "escalated"]
    department: str | None = Field(description="lead department (条); none while escalated")
    area: str = Field(description="responsible area (块): the street office")
    co_departments: list[str]
    candidates: list[str] = Field(description="departments the rules offer the case to, in order")
    rule_id: str
    rule: str
    category_code: str
    urgency: str
    tier: str
    returns: int
    returned_by: list[str]
    dispatch_number: int
    rework_count: int
    is_rework: bool
    extension_total: timedelta
    dispatched_at: datetime | None
    deadlines: Deadlines | None
    escalation: EscalatedCase | None = None


class ManualDispatch(BaseModel):
    """A dispatcher's decision: who leads the case from now on."""

    model_config = ConfigDict(extra="forbid")

    department: str = Field(pattern=DEPARTMENT_PATTERN, description="the lead department (条)")
    dispatcher_id: str = Field(
        min_length=1, max_length=64, pattern=ID_PATTERN, description="staff id of the dispatcher"
    )
    co_departments: list[Annotated[str, Field(pattern=DEPARTMENT_PATTERN)]] | None = Field(
        default=None, max_length=10, description="replaces the rule's co-assignees when given"
    )
    note: str = Field(default="", max_length=200, description="why, for the record")


class DispatchResult(BaseModel):
    case_id: str
    event_type: Literal["case.dispatched", "case.redispatched"]
    event_id: str
    department: str
    area: str
    co_departments: list[str]
    dispatch_number: int
    dispatched_at: datetime
    deadlines: Deadlines


_ERRORS: dict[int | str, dict[str, object]] = {
    400: {"description": "the body is not JSON"},
    404: {"model": ProblemResponse, "description": "no such case"},
    409: {"model": ProblemResponse, "description": "the case's state forbids it"},
    422: {"description": "invalid input; the detail names the field"},
}


def _problem(status: int, code: str, field: str | None, message: str) -> HTTPException:
    return HTTPException(
        status, detail=Problem(code=code, field=field, message=message).model_dump()
    )


def install(app: FastAPI, service: Service) -> None:
    """Add dispatch's routes to ``app``."""
    router = APIRouter(prefix="/v1", tags=["dispatch"])
    # Manual dispatch is the command centre's dispatcher's (派遣员) call, no one else's.
    a_centre = auth.require(lambda: service.auth, "centre")

    @router.get("/escalated", response_model=EscalatedQueue)
    async def escalated_queue(
        area: Annotated[str | None, Query(max_length=64, pattern=ID_PATTERN)] = None,
        urgency: Literal["ordinary", "urgent"] | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        # Bounded: Postgres takes a bigint, and no queue is a million cases deep.
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> EscalatedQueue:
        """The human dispatcher's queue (逐级上报): cases no rule can place any more."""
        async with service.transaction() as tx:
            page = await store.queue_page(
                tx.conn, area=area, urgency=urgency, limit=limit, offset=offset
            )
        return EscalatedQueue(
            total=page.total, cases=[EscalatedCase.model_validate(dict(row)) for row in page.rows]
        )

    @router.get("/cases/{case_id}", response_model=Assignment, responses=_ERRORS)
    async def assignment(case_id: CaseId) -> Assignment:
        """Who holds a case, until when, why, and what it has been through."""
        async with service.transaction() as tx:
            state = (await store.load_cases(tx.conn, [case_id])).get(case_id)
            if state is None:
                raise _unknown_case(case_id, await store.pending_count(tx.conn, case_id))
            escalation = await store.escalation_of(tx.conn, case_id)
        return Assignment(
            case_id=state.case_id,
            status=state.status,
            department=state.department,
            area=state.area,
            co_departments=list(state.co_departments),
            candidates=list(state.candidates),
            rule_id=state.rule_id,
            rule=state.rule,
            category_code=state.category_code,
            urgency=state.urgency,
            tier=state.tier,
            returns=state.returns,
            returned_by=list(state.returned_by),
            dispatch_number=state.dispatch_number,
            rework_count=state.rework_count,
            is_rework=state.is_rework,
            extension_total=state.extension_total,
            dispatched_at=state.dispatched_at,
            deadlines=state.deadlines,
            escalation=EscalatedCase.model_validate(dict(escalation)) if escalation else None,
        )

    @router.post(
        "/cases/{case_id}/dispatch",
        response_model=DispatchResult,
        responses={**_ERRORS, **auth.RESPONSES},
    )
    async def dispatch_manually(
        case_id: CaseId, order: ManualDispatch, principal: Principal = Depends(a_centre)
    ) -> DispatchResult:
        """A dispatcher assigns the case to a department (改派): publishes its new dispatch.

        Takes the command centre's key (kind ``centre``)."""
        now = service.now()
        async with service.transaction() as tx:
            await store.lock_cases(tx.conn, [case_id])
            state = (await store.load_cases(tx.conn, [case_id])).get(case_id)
            if state is None:
                raise _unknown_case(case_id, await store.pending_count(tx.conn, case_id))
            try:
                outcome = assign_manually(
                    state,
                    order.department,
                    order.dispatcher_id,
                    now,
                    service.rules,
                    co_departments=tuple(order.co_departments)
                    if order.co_departments is not None
                    else None,
                    note=order.note,
                )
            except ManualDispatchRefused as refused:
                raise _problem(
                    409 if refused.conflict else 422, refused.code, refused.field, refused.message
                ) from None
            assert outcome.state is not None
            (event,) = outcome.events
            assert isinstance(event, CaseDispatched | CaseRedispatched)
            envelope = make_event(event, source=SOURCE, time=now)
            tx.emit(envelope)
            await store.update_cases(tx.conn, [outcome.state])
            await store.dequeue(tx.conn, [case_id])
            queue_length = await store.queue_length(tx.conn)
        metrics.QUEUE_LENGTH.set(queue_length)
        metrics.observe(outcome.events, state.registered_at, now)
        return DispatchResult(
            case_id=case_id,
            event_type=(
                "case.dispatched" if isinstance(event, CaseDispatched) else "case.redispatched"
            ),
            event_id=envelope.id,
            department=event.department,
            area=event.area,
            co_departments=event.co_departments,
            dispatch_number=event.dispatch_number,
            dispatched_at=event.dispatched_at,
            deadlines=event.deadlines,
        )

    app.include_router(router)


def _unknown_case(case_id: str, parked: int) -> HTTPException:
    message = f"dispatch has no case {case_id!r}"
    if parked:
        message += f" yet ({parked} event(s) about it wait for its registration)"
    return _problem(404, "unknown_case", "case_id", message)
