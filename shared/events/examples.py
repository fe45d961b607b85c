"""A valid example of every event type, all telling one case's story.

A manhole cover reported missing on the 12345 hotline on Tuesday 17 November
2026 is registered, dispatched, handled, verified, closed and rated, with the
exception paths alongside. Tests, the AsyncAPI document and the simulator
build from here; examples are fixed (ids, times) so generated documents are
byte-for-byte stable.
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone
from typing import Any

from shared.events.envelope import EVENT_TYPES, Envelope, EventData, make_event

#: China Standard Time as a fixed offset: examples need no tz database.
CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 17, 9, 12, tzinfo=CST)

REPORT_ID = "01M7KGZ4R0AAAAAAAAAAAAAAR1"
CASE_ID = "01M7KGZ4R0AAAAAAAAAAAAAAC1"
DUPLICATE_CASE_ID = "01M7KGZ4R0AAAAAAAAAAAAAAC2"
PREVIOUS_CASE_ID = "01M7KGZ4R0AAAAAAAAAAAAAAC0"
EXTERNAL_ID = "12345-20261117-000381"
CATEGORY = "0101"  # 部件 / 公用设施 / 上水井盖
COMPONENT_ID = "3205080101000001"
GRID = "32050810200301"
COMMUNITY = "320508102003"
STREET = "320508102"
DISTRICT = "320508"
DEPARTMENT = "water-supply"
OTHER_DEPARTMENT = "municipal-roads"
INSPECTOR = "insp-0427"
DEPT_STAFF = "ws-0112"
EXTENSION_REQUEST_EVENT_ID = "01M7KGZ4R0AAAAAAAAAAAAAAE1"


def _at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


def _deadlines(start_minutes: float) -> dict[str, Any]:
    return {
        "sign_for": _at(start_minutes + 60),
        "handle": _at(start_minutes + 6 * 60),
        "verify_limit": "PT30M",
        "clock": "natural",
    }


def _assignment(start_minutes: float, number: int) -> dict[str, Any]:
    return {
        "case_id": CASE_ID,
        "department": DEPARTMENT,
        "area": STREET,
        "co_departments": [OTHER_DEPARTMENT],
        "rule": "0101 上水井盖: owner first → water-supply; street 320508102 co-assigns roads",
        "rule_id": "route-0101",
        "deadlines": _deadlines(start_minutes),
        "urgency": "urgent",
        "tier": "ordinary",
        "category_code": CATEGORY,
        "kind": "component",
        "grid_code": GRID,
        "dispatch_number": number,
        "dispatched_at": _at(start_minutes),
    }


def _feedback(role: str = "department", actor: str = DEPT_STAFF) -> dict[str, Any]:
    return {
        "case_id": CASE_ID,
        "department": DEPARTMENT,
        "area": STREET,
        "actor_id": actor,
        "actor_role": role,
    }


def _supervised() -> dict[str, Any]:
    return {"case_id": CASE_ID, "department": DEPARTMENT, "area": STREET}


# event type -> (minutes after T0 of the event time, data as it travels in JSON)
_EXAMPLES: dict[str, tuple[float, dict[str, Any]]] = {
    "report.submitted": (
        0,
        {
            "report_id": REPORT_ID,
            "channel": "hotline_12345",
            "external_id": EXTERNAL_ID,
            "category_code": CATEGORY,
            "description": "人民路与文昌路口东侧上水井盖缺失，行人易跌落",
            "location": {"lat": 31.2989, "long": 120.5853, "address": "人民路 1208 号东侧"},
            "component_id": COMPONENT_ID,
            "attributes": {"lane_blocked": True},
            "media_urls": ["https://media.example.org/r/12345-20261117-000381/1.jpg"],
            "reported_at": _at(-3),
            "reporter": {"name": "王女士", "phone": "13800000000"},
        },
    ),
    "case.registered": (
        1,
        {
            "case_id": CASE_ID,
            "report_id": REPORT_ID,
            "channel": "hotline_12345",
            "external_id": EXTERNAL_ID,
            "category_code": CATEGORY,
            "kind": "component",
            "major": "01",
            "minor": "01",
            "component_id": COMPONENT_ID,
            "grid_code": GRID,
            "community": COMMUNITY,
            "street": STREET,
            "district": DISTRICT,
            "area": STREET,
            "area_class": "A",
            "lat": 31.2989,
            "long": 120.5853,
            "address": "人民路 1208 号东侧",
            "description": "人民路与文昌路口东侧上水井盖缺失，行人易跌落",
            "attributes": {"lane_blocked": True},
            "media_urls": ["https://media.example.org/r/12345-20261117-000381/1.jpg"],
            "urgency": "urgent",
            "tier": "ordinary",
            "reported_at": _at(-3),
            "registered_at": _at(1),
            "reporter_ref": "rr_5f3a9c0e41b2d877",
            "callback_possible": True,
        },
    ),
    "case.merged": (
        42,
        {
            "case_id": DUPLICATE_CASE_ID,
            "master_case_id": CASE_ID,
            "report_id": "01M7KGZ4R0AAAAAAAAAAAAAAR2",
            "channel": "inspector",
            "external_id": "cgt-7781203",
            "category_code": CATEGORY,
            "grid_code": GRID,
            "area": STREET,
            "distance_m": 18.5,
        },
    ),
    "report.rejected": (
        50,
        {
            "report_id": "01M7KGZ4R0AAAAAAAAAAAAAAR3",
            "channel": "citizen_app",
            "external_id": "wx-88120455",
            "reasons": [
                {
                    "code": "outside_city",
                    "field": "location",
                    "message": "the point (31.9, 121.4) is outside the city's grid",
                },
                {
                    "code": "missing_attribute",
                    "field": "attributes.lane_blocked",
                    "message": "category 0101 requires 'lane_blocked'",
                },
            ],
            "message": "Report not filed: the location is outside the city; 'lane_blocked' is missing.",
        },
    ),
    "case.dispatched": (2, _assignment(2, 1)),
    "case.redispatched": (
        7 * 60,
        {
            **_assignment(7 * 60, 2),
            "is_rework": True,
            "rework_count": 1,
            "reason": "rework",
            "previous_department": DEPARTMENT,
        },
    ),
    "case.escalated": (
        30,
        {
            "case_id": CASE_ID,
            "reason": "returns_exhausted",
            "detail": "returned by water-supply and municipal-roads",
            "returns": 2,
            "last_department": OTHER_DEPARTMENT,
            "tried_departments": [DEPARTMENT, OTHER_DEPARTMENT],
            "area": STREET,
            "category_code": CATEGORY,
            "grid_code": GRID,
            "urgency": "urgent",
        },
    ),
    "case.extension_refused": (
        91,
        {
            "case_id": CASE_ID,
            "department": DEPARTMENT,
            "area": STREET,
            "requested": "P2D",
            "reason": "tier_not_eligible",
            "message": "only engineering-tier cases may be extended; this one is ordinary",
        },
    ),
    "case.accepted": (20, _feedback()),
    "case.handled": (
        200,
        {
            **_feedback(),
            "note": "temporary cover fitted, permanent cover ordered",
            "media_urls": ["https://media.example.org/c/01M7KGZ4R0/after.jpg"],
        },
    ),
    "case.returned": (
        15,
        {
            **_feedback(),
            "reason": "the cover belongs to the gas network, not the water network",
            "suggested_department": "gas-supply",
        },
    ),
    "case.extension_requested": (
        90,
        {**_feedback(), "requested": "P2D", "reason": "a cast-iron cover must be ordered"},
    ),
    "case.extension_granted": (
        95,
        {
            **_feedback("command_centre", "cc-0031"),
            "granted": "P1D",
            "request_event_id": EXTENSION_REQUEST_EVENT_ID,
        },
    ),
    "case.verified": (
        222,
        {
            **_feedback("inspector", INSPECTOR),
            "media_urls": ["https://media.example.org/c/01M7KGZ4R0/check.jpg"],
        },
    ),
    "case.verification_failed": (
        215,
        {
            **_feedback("inspector", INSPECTOR),
            "reason": "the cover is loose and rocks under load",
        },
    ),
    "case.rated": (
        26 * 60,
        {**_feedback("callback_centre", "cb-0207"), "rating": "basically_satisfied"},
    ),
    "case.parked": (
        100,
        {
            **_feedback(),
            "reason": "the road is closed for the marathon; work resumes Monday",
            "resume_expected_at": _at(6 * 24 * 60),
        },
    ),
    "case.unparked": (6 * 24 * 60, _feedback()),
    "case.warned": (
        50,
        {
            **_supervised(),
            "timer": "sign_for",
            "deadline": _at(62),
            "share_used": 0.8,
            "dispatch_number": 1,
        },
    ),
    "case.overdue": (
        62,
        {
            **_supervised(),
            "timer": "sign_for",
            "deadline": _at(62),
            "share_used": 1.0,
            "dispatch_number": 1,
        },
    ),
    "case.notice_issued": (
        122,
        {
            **_supervised(),
            "level": 1,
            "title": "督办单",
            "addressee": "department",
            "timer": "sign_for",
            "deadline": _at(62),
            "overdue_by": "PT1H",
            "dispatch_number": 1,
        },
    ),
    "case.rework_ordered": (
        216,
        {**_supervised(), "rework_count": 1, "reason": "the cover is loose and rocks under load"},
    ),
    "case.closed": (
        223,
        {
            **_supervised(),
            "on_time": True,
            "handled_at": _at(200),
            "verified_at": _at(222),
            "handle_deadline": _at(362),
            "durations": {
                "to_dispatch": "PT1M",
                "to_handle": "PT3H18M",
                "to_verify": "PT22M",
                "total": "PT3H42M",
                "parked": "PT0S",
            },
            "rework_count": 0,
            "dispatch_number": 1,
            "category_code": CATEGORY,
            "grid_code": GRID,
        },
    ),
    "case.rebounded": (
        1,
        {
            **_supervised(),
            "place_key": f"{CATEGORY}:{GRID}",
            "count": 2,
            "previous_case_id": PREVIOUS_CASE_ID,
            "category_code": CATEGORY,
            "grid_code": GRID,
            "bureau_notice": True,
            "key_problem": False,
        },
    ),
    "case.lookback_due": (
        7 * 24 * 60 + 223,
        {
            **_supervised(),
            "due_at": _at(7 * 24 * 60 + 223),
            "closed_at": _at(223),
            "grid_code": GRID,
        },
    ),
    "score.published": (
        14 * 24 * 60,
        {
            "unit_type": "department",
            "unit_id": DEPARTMENT,
            "period_type": "month",
            "period": "2026-11",
            "indicators": {
                "due": 120,
                "closed": 112,
                "on_time": 104,
                "overdue": 9,
                "rework": 4,
                "responded": 118,
                "rated": 60,
                "satisfied": 45,
                "basically_satisfied": 10,
                "rebounds": 2,
                "failed_verification_3x": 0,
            },
            "rates": {
                "on_time_rate": 104 / 120,
                "closure_rate": 112 / 120,
                "response_rate": 118 / 120,
                "rework_rate": 4 / 112,
                "satisfaction_rate": (45 + 0.9 * 10) / 60,
            },
            "score": 87.4,
            "rank": 3,
            "ranked_units": 12,
            "band": "B",
            "flags": {"bottom_three": False, "talk": False},
            "final": False,
        },
    ),
}


def example_types() -> list[str]:
    """Event types that have an example (every registered one, checked by the contract tests)."""
    return sorted(_EXAMPLES)


def example_data(event_type: str, **overrides: Any) -> EventData:
    """A valid instance of ``event_type``'s model; ``overrides`` replace top-level fields (validated)."""
    _, raw = _EXAMPLES[event_type]
    return EVENT_TYPES[event_type].model_validate({**copy.deepcopy(raw), **overrides})


def example_event(
    event_type: str,
    *,
    event_id: str | None = None,
    time: datetime | None = None,
    **overrides: Any,
) -> Envelope:
    """A complete envelope around :func:`example_data`; fixed id and time unless given."""
    minutes, _ = _EXAMPLES[event_type]
    data = example_data(event_type, **overrides)
    return make_event(
        data,
        source=example_source(data),
        time=time or T0 + timedelta(minutes=minutes),
        event_id=event_id or _fixed_id(event_type),
    )


def example_source(data: EventData) -> str:
    """Who would send this example: the owning service, or the external system for input topics."""
    return {
        "reports": "/channels/hotline_12345",
        "cases": "/citycases/intake",
        "assignments": "/citycases/dispatch",
        "feedback": f"/departments/{DEPARTMENT}",
        "supervision": "/citycases/supervision",
        "scores": "/citycases/scoring",
    }[data.topic]


def _fixed_id(event_type: str) -> str:
    # A stable ULID-shaped id per type, so the AsyncAPI examples never churn.
    index = sorted(_EXAMPLES).index(event_type)
    return f"01M7KGZ4R0EVENT{index:011d}"
