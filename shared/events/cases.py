"""Events on ``cases``: intake's verdict on every report (DOMAIN.md step 2).

Each report ends in exactly one of three events: a new case, a duplicate
merged into a master case, or a rejection with reasons. From here on nothing
carries the citizen's name or phone: ``reporter_ref`` is an opaque pseudonym
that lets intake's call-back store find the contact.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import AwareDatetime, Field, StringConstraints

from shared.events.envelope import EventData
from shared.events.reports import AttributeValue
from shared.events.types import (
    Address,
    AreaClass,
    CategoryCode,
    Channel,
    ClassCode,
    ComponentId,
    ExternalId,
    GridCode,
    Identifier,
    Kind,
    Latitude,
    Longitude,
    MediaUrls,
    Meters,
    ShortText,
    Text,
    Tier,
    Urgency,
    ValueObject,
)


class CaseRegistered(EventData):
    """A report filed as a new case (立案): category, place, urgency and tier resolved.

    ``area`` is the street office (块) of the case's grid cell and is what the
    ``area`` routing header carries; dispatch decides the department (条).
    """

    event_type: ClassVar[str] = "case.registered"
    topic: ClassVar[str] = "cases"

    case_id: Identifier
    report_id: Identifier
    channel: Channel
    external_id: ExternalId
    category_code: CategoryCode
    kind: Kind
    major: ClassCode = Field(description="大类 code")
    minor: ClassCode = Field(description="小类 code")
    component_id: ComponentId | None = None
    grid_code: GridCode
    community: Identifier
    street: Identifier
    district: Identifier
    area: Identifier = Field(description="responsible area (块): the street office id")
    area_class: AreaClass
    lat: Latitude | None = None
    long: Longitude | None = None
    address: Address | None = None
    description: Text = ""
    attributes: dict[str, AttributeValue] = Field(default_factory=dict)
    media_urls: MediaUrls = Field(default_factory=list)
    urgency: Urgency
    tier: Tier
    reported_at: AwareDatetime
    registered_at: AwareDatetime
    inspector_id: Identifier | None = Field(
        default=None, description="staff id of the inspector who reported it, for inspector scores"
    )
    reporter_ref: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{8,128}$")] | None = (
        Field(
            default=None,
            description="opaque pseudonym of the reporter (keyed hash); same reporter, same ref",
        )
    )
    callback_possible: bool = Field(
        default=False, description="the reporter left a way to be called back for a rating"
    )


class CaseMerged(EventData):
    """A report found to duplicate an open or recently closed case (重复案件).

    The duplicate gets its own ``case_id`` (so the channel's retry finds it) and
    is closed at once; updates go to ``master_case_id``. Duplicates never count
    in statistics.
    """

    event_type: ClassVar[str] = "case.merged"
    topic: ClassVar[str] = "cases"

    case_id: Identifier = Field(description="id given to the duplicate")
    master_case_id: Identifier
    report_id: Identifier
    channel: Channel
    external_id: ExternalId
    category_code: CategoryCode
    grid_code: GridCode
    area: Identifier
    distance_m: Meters = Field(description="distance between the report and the master case")


RejectionCode = Literal[
    "unknown_channel",
    "unknown_category",
    "missing_field",
    "invalid_field",
    "missing_attribute",
    "invalid_attribute",
    "missing_location",
    "outside_city",
    "unknown_grid_code",
    "unknown_address",
]


class RejectionReason(ValueObject):
    """One reason a report cannot be filed, machine-readable and named after the offending field."""

    code: RejectionCode
    field: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    message: ShortText


class ReportRejected(EventData):
    """A report that cannot be filed (注销), with every reason found, not just the first."""

    event_type: ClassVar[str] = "report.rejected"
    topic: ClassVar[str] = "cases"
    subject_field: ClassVar[str] = "report_id"

    report_id: Identifier
    channel: Channel
    external_id: ExternalId
    reasons: list[RejectionReason] = Field(min_length=1)
    message: ShortText = Field(description="the reasons in one readable sentence")
