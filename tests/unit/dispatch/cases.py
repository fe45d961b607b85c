"""Cases of the sample city for dispatch's tests: registrations and feedback built from the examples."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from shared.events import (
    CaseExtensionGranted,
    CaseExtensionRequested,
    CaseRegistered,
    CaseReturned,
    CaseReworkOrdered,
)
from shared.events.examples import example_data
from shared.reference import ReferenceData, load_reference

SHANGHAI = ZoneInfo("Asia/Shanghai")
SAMPLE = load_reference()


def at(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """An instant of 2026 in Shanghai."""
    return datetime(2026, month, day, hour, minute, tzinfo=SHANGHAI)


def cell_in(street: str, area_class: str, ref: ReferenceData = SAMPLE) -> str:
    for cell in ref.cells:
        if cell.street == street and cell.area_class == area_class:
            return cell.code
    raise LookupError(f"no {area_class} cell in street {street}")


def registered(
    category: str = "C0101",
    *,
    street: str = "320508001",
    area_class: str = "B",
    case_id: str = "CASE-1",
    urgency: str | None = None,
    tier: str | None = None,
    ref: ReferenceData = SAMPLE,
) -> CaseRegistered:
    """A ``case.registered`` of ``category`` on a cell of ``area_class`` in ``street``."""
    known = ref.category(category)
    grid = cell_in(street, area_class, ref)
    data = example_data(
        "case.registered",
        case_id=case_id,
        category_code=category,
        kind=known.kind.value if known else "event",
        major=category[1:3],
        minor=category[3:5],
        component_id=None,
        grid_code=grid,
        community=grid[:12],
        street=street,
        district=street[:6],
        area=street,
        area_class=area_class,
        urgency=urgency or ("urgent" if known and known.is_urgent else "ordinary"),
        tier=tier or (known.tier.value if known else "ordinary"),
    )
    assert isinstance(data, CaseRegistered)
    return data


def _feedback(case_id: str, department: str) -> dict[str, object]:
    return {"case_id": case_id, "department": department, "area": "street-pingjiang"}


def returned(
    department: str,
    *,
    case_id: str = "CASE-1",
    reason: str = "not ours",
    suggested: str | None = None,
) -> CaseReturned:
    data = example_data(
        "case.returned",
        **_feedback(case_id, department),
        reason=reason,
        suggested_department=suggested,
    )
    assert isinstance(data, CaseReturned)
    return data


def rework(department: str, count: int, *, case_id: str = "CASE-1") -> CaseReworkOrdered:
    data = example_data(
        "case.rework_ordered",
        case_id=case_id,
        department=department,
        area="street-pingjiang",
        rework_count=count,
        reason="the cover still rocks",
    )
    assert isinstance(data, CaseReworkOrdered)
    return data


def extension_requested(
    department: str, requested: timedelta, *, case_id: str = "CASE-1", reason: str = "parts"
) -> CaseExtensionRequested:
    data = example_data(
        "case.extension_requested",
        **_feedback(case_id, department),
        requested=requested,
        reason=reason,
    )
    assert isinstance(data, CaseExtensionRequested)
    return data


def extension_granted(
    department: str,
    granted: timedelta,
    *,
    case_id: str = "CASE-1",
    request_event_id: str | None = None,
) -> CaseExtensionGranted:
    data = example_data(
        "case.extension_granted",
        **_feedback(case_id, department),
        granted=granted,
        request_event_id=request_event_id,
    )
    assert isinstance(data, CaseExtensionGranted)
    return data
