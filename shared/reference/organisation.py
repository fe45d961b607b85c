"""Who does the work and where reports come from: departments and channels."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from shared.reference.catalogue import DepartmentId
from shared.reference.geography import StreetCode


class DepartmentKind(StrEnum):
    LINE = "line"  # 条: a department by trade (water, sanitation, parks, ...)
    STREET_OFFICE = "street_office"  # 块: the office responsible for one street


class Department(BaseModel):
    """A unit cases are assigned to and scored on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: DepartmentId
    kind: DepartmentKind
    name_zh: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    street: StreetCode | None = Field(default=None, validate_default=True)

    @field_validator("street")
    @classmethod
    def _street_for_offices_only(cls, street: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("kind")
        if kind is DepartmentKind.STREET_OFFICE and street is None:
            raise ValueError("a street office must name its street")
        if kind is DepartmentKind.LINE and street is not None:
            raise ValueError("only a street office has a street")
        return street


class ChannelKind(StrEnum):
    HOTLINE = "hotline"
    PATROL = "patrol"  # inspectors and grid workers
    CITIZEN = "citizen"  # photo reports, apps, Open311
    DETECTION = "detection"  # video, drones, sensors
    SUPERIOR = "superior"  # 交办, leadership inspections
    MEDIA = "media"
    PROPOSAL = "proposal"  # people's congress and CPPCC


class Channel(BaseModel):
    """A source of reports; every channel feeds the same pipeline."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The same spelling as the events' ``channel`` field, which names these ids.
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_]{1,31}$")
    kind: ChannelKind
    name_zh: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    number: str | None = Field(default=None, pattern=r"^\d{3,12}$")
