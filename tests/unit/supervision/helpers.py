"""Builders for supervision's domain tests: rules from the sample city, events by instant."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import cache
from typing import Any

from services.supervision.domain.rules import Rules
from shared.calendar import WorkCalendar
from shared.events.assignments import CaseDispatched, CaseRedispatched
from shared.events.cases import CaseRegistered
from shared.events.examples import example_data
from shared.reference import load_reference

CST = timezone(timedelta(hours=8))
CASE = "case-1"
#: Tuesday 17 November 2026, 09:00 in Suzhou: an ordinary working morning.
T0 = datetime(2026, 11, 17, 9, 0, tzinfo=CST)


@cache
def rules(**changes: Any) -> Rules:
    """The sample city's rules, with ``changes`` to supervision.json's top level."""
    ref = load_reference()
    supervision = ref.supervision
    if changes:
        supervision = supervision.model_copy(update=changes)
    return Rules(supervision, WorkCalendar.from_data(ref.calendar))


def dispatched(
    at: datetime = T0,
    *,
    handle: timedelta = timedelta(hours=3),
    sign_for: timedelta = timedelta(hours=1),
    verify: timedelta = timedelta(minutes=30),
    clock: str = "working",
    number: int = 1,
    department: str = "water-supply",
    case_id: str = CASE,
    **overrides: Any,
) -> CaseDispatched:
    """A dispatch at ``at`` whose deadlines are ``at`` + the spans (as natural offsets)."""
    data = example_data(
        "case.dispatched",
        case_id=case_id,
        dispatched_at=at,
        dispatch_number=number,
        department=department,
        deadlines={
            "sign_for": at + sign_for,
            "handle": at + handle,
            "verify_limit": verify,
            "clock": clock,
        },
        **overrides,
    )
    assert isinstance(data, CaseDispatched)
    return data


def redispatched(
    at: datetime,
    *,
    number: int,
    reason: str = "rework",
    handle: timedelta = timedelta(hours=3),
    clock: str = "working",
    case_id: str = CASE,
) -> CaseRedispatched:
    data = example_data(
        "case.redispatched",
        case_id=case_id,
        dispatched_at=at,
        dispatch_number=number,
        reason=reason,
        deadlines={
            "sign_for": at + timedelta(hours=1),
            "handle": at + handle,
            "verify_limit": timedelta(minutes=30),
            "clock": clock,
        },
    )
    assert isinstance(data, CaseRedispatched)
    return data


def registered(
    at: datetime = T0 - timedelta(minutes=5), case_id: str = CASE, **overrides: Any
) -> CaseRegistered:
    data = example_data("case.registered", case_id=case_id, registered_at=at, **overrides)
    assert isinstance(data, CaseRegistered)
    return data
