"""The category catalogue: what can be reported, who owns it, and how fast it must be done.

Categories follow CJ/T 214 / GB/T 30428.2: two kinds, 部件 (components: fixed
city assets) and 事件 (events: behaviours and situations), each with 2-digit
major (大类) and minor (小类) codes. The two kinds reuse the same major/minor
numbers, so a category's code carries a kind letter: ``C`` + major + minor for
a component (``C0101`` 上水井盖) and ``E`` + major + minor for an event
(``E0102`` 暴露垃圾).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from shared.reference.geography import AreaClass
from shared.reference.time_limits import TimeLimit

TwoDigits = Annotated[str, Field(pattern=r"^\d{2}$")]
DepartmentId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,39}$")]


class CategoryKind(StrEnum):
    COMPONENT = "component"  # 部件
    EVENT = "event"  # 事件

    @property
    def code_letter(self) -> str:
        return "C" if self is CategoryKind.COMPONENT else "E"


class Urgency(StrEnum):
    """Urgent cases count natural time; ordinary ones count working time."""

    URGENT = "urgent"
    ORDINARY = "ordinary"


class HandlingTier(StrEnum):
    ORDINARY = "ordinary"  # 一般性
    ENGINEERING = "engineering"  # 工程性: may be granted an extension
    SPECIAL = "special"  # 特殊性


class AssignmentOrder(StrEnum):
    """Which axis is asked first: the asset's owner (条) or the locality (块)."""

    OWNER_FIRST = "owner_first"  # 先属主后属地
    LOCALITY_FIRST = "locality_first"  # 先属地后属主


class ReportField(StrEnum):
    """Fields of a report a category's filing conditions can require."""

    LOCATION = "location"
    PHOTO = "photo"
    DESCRIPTION = "description"
    ADDRESS = "address"
    ASSET_ID = "asset_id"  # 16-digit component id
    CONTACT = "contact"


class AttributeType(StrEnum):
    """Open311 attribute datatypes, so ``services/{code}`` can publish them as they are."""

    STRING = "string"
    NUMBER = "number"
    DATETIME = "datetime"
    TEXT = "text"
    SINGLE_VALUE_LIST = "singlevaluelist"
    MULTI_VALUE_LIST = "multivaluelist"


class CategoryMajor(BaseModel):
    """A major class (大类) of one kind."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: CategoryKind
    code: TwoDigits
    name_zh: str = Field(min_length=1)
    name_en: str = Field(min_length=1)


class AttributeValue(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(pattern=r"^[a-z0-9_]+$")
    name_zh: str = Field(min_length=1)
    name_en: str = Field(min_length=1)


class FilingAttribute(BaseModel):
    """A category-specific attribute a report carries (Open311 ``attribute[code]``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name_zh: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    datatype: AttributeType
    required: bool = True
    values: tuple[AttributeValue, ...] = Field(default=(), validate_default=True)

    @field_validator("values")
    @classmethod
    def _values_match_datatype(
        cls, values: tuple[AttributeValue, ...], info: ValidationInfo
    ) -> tuple[AttributeValue, ...]:
        datatype = info.data.get("datatype")
        listed = datatype in (AttributeType.SINGLE_VALUE_LIST, AttributeType.MULTI_VALUE_LIST)
        if datatype is not None and listed and not values:
            raise ValueError(f"a {datatype.value} attribute needs its values")
        if datatype is not None and not listed and values:
            raise ValueError(f"a {datatype.value} attribute takes no values")
        keys = [value.key for value in values]
        if len(keys) != len(set(keys)):
            raise ValueError("value keys must be unique")
        return values

    def accepts(self, answer: str) -> bool:
        """Whether ``answer`` is one of the listed keys (always true for free-form types)."""
        if not self.values:
            return True
        return answer in {value.key for value in self.values}


class FilingConditions(BaseModel):
    """What a report must carry to be filed as a case (立案条件)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    required_fields: tuple[ReportField, ...] = Field(min_length=1)
    attributes: tuple[FilingAttribute, ...] = ()

    @field_validator("required_fields")
    @classmethod
    def _location_always(cls, fields: tuple[ReportField, ...]) -> tuple[ReportField, ...]:
        # Without a place there is no grid cell, no area and no department.
        if ReportField.LOCATION not in fields:
            raise ValueError("must include 'location'")
        if len(fields) != len(set(fields)):
            raise ValueError("must not repeat a field")
        return fields

    @field_validator("attributes")
    @classmethod
    def _unique_codes(cls, attributes: tuple[FilingAttribute, ...]) -> tuple[FilingAttribute, ...]:
        codes = [attribute.code for attribute in attributes]
        if len(codes) != len(set(codes)):
            raise ValueError("attribute codes must be unique")
        return attributes


class CategoryLimits(BaseModel):
    """Time limits (处置时限) from dispatch: sign for it, handle it, verify it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sign_for: TimeLimit
    handle: TimeLimit
    verify: TimeLimit
    handle_by_area_class: dict[AreaClass, TimeLimit] = {}


class DuplicateRule(BaseModel):
    """When a new report of the category is a duplicate of an existing case."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    radius_m: float = Field(ge=0, allow_inf_nan=False)  # 0 turns duplicate detection off
    window_days: int = Field(ge=0)  # how long a closed case still attracts duplicates

    @property
    def enabled(self) -> bool:
        return self.radius_m > 0


class Category(BaseModel):
    """One minor class (小类): the unit every rule of the loop is keyed on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: CategoryKind
    major: TwoDigits
    minor: TwoDigits
    code: str
    name_zh: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    urgency: Urgency
    tier: HandlingTier
    owner_department: DepartmentId
    assignment: AssignmentOrder | None = None
    filing: FilingConditions
    limits: CategoryLimits
    duplicates: DuplicateRule

    @field_validator("code")
    @classmethod
    def _code_from_parts(cls, code: str, info: ValidationInfo) -> str:
        data = info.data
        if {"kind", "major", "minor"} <= data.keys():
            expected = data["kind"].code_letter + data["major"] + data["minor"]
            if code != expected:
                raise ValueError(
                    f"must be {expected!r} (kind letter + major + minor), not {code!r}"
                )
        return code

    @property
    def is_urgent(self) -> bool:
        return self.urgency is Urgency.URGENT

    @property
    def assignment_order(self) -> AssignmentOrder:
        """Explicit order, else the rule of thumb: components owner-first, events locality-first."""
        if self.assignment is not None:
            return self.assignment
        if self.kind is CategoryKind.COMPONENT:
            return AssignmentOrder.OWNER_FIRST
        return AssignmentOrder.LOCALITY_FIRST

    def handle_limit(self, area_class: AreaClass | str | None = None) -> TimeLimit:
        """The handling limit for a case in a cell of ``area_class`` (default if no override)."""
        if area_class is None:
            return self.limits.handle
        return self.limits.handle_by_area_class.get(AreaClass(area_class), self.limits.handle)
