"""Events on ``reports``: what the channels send in (DOMAIN.md step 1).

This is the pipeline's input topic, written by systems outside it (hotlines,
patrol apps, video, sensors, superiors). The schema checks shape only; whether
a report can be filed (known category, filing conditions, inside the city) is
intake's decision and ends in ``case.registered``, ``case.merged`` or
``report.rejected``, so the channel always hears back.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import AwareDatetime, Field, StringConstraints

from shared.events.envelope import EventData
from shared.events.types import (
    Channel,
    ComponentId,
    ExternalId,
    Identifier,
    MediaUrls,
    ReportLocation,
    Text,
    ValueObject,
)

#: Attribute values as Open311 ``attribute[code]`` sends them (one value or a list).
AttributeValue = str | int | float | bool | list[str]


class Reporter(ValueObject):
    """How to call the citizen back. Stored by intake for call-backs, never published onward."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    phone: Annotated[str, StringConstraints(pattern=r"^\+?[0-9][0-9 ()-]{2,31}$")] | None = None


class ReportSubmitted(EventData):
    """A problem reported by a channel: a citizen's call, an inspector's patrol, a camera, a sensor.

    ``channel`` + ``external_id`` is the idempotency key: a channel that sends
    the same report again gets the same case back. The only event allowed to
    carry a citizen's name and phone (``reporter``).
    """

    event_type: ClassVar[str] = "report.submitted"
    topic: ClassVar[str] = "reports"
    subject_field: ClassVar[str] = "report_id"

    report_id: Identifier = Field(description="id of this report, chosen by the channel's gateway")
    channel: Channel
    external_id: ExternalId = Field(description="the channel's own id for the report")
    category_code: Annotated[str, StringConstraints(min_length=1, max_length=32)] = Field(
        description="category the channel chose; checked against the catalogue by intake"
    )
    description: Text = ""
    location: ReportLocation
    component_id: ComponentId | None = Field(
        default=None, description="the 部件 the report is about, when the channel knows it"
    )
    attributes: dict[str, AttributeValue] = Field(
        default_factory=dict, description="answers to the category's attribute questions"
    )
    media_urls: MediaUrls = Field(default_factory=list)
    reported_at: AwareDatetime = Field(description="when the problem was reported to the channel")
    inspector_id: Identifier | None = Field(
        default=None, description="staff id of the inspector or grid worker who reported it"
    )
    reporter: Reporter | None = Field(
        default=None, description="citizen contact for call-backs; never leaves intake"
    )
