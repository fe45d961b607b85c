"""Routing rules as data: which departments (条) a case is offered to, in what order, with whom.

The catalogue already says who owns each category (``owner_department``) and,
by kind, which axis is asked first: a component (部件) goes to its owner and
then to the locality, an event (事件) to the locality and then to the owner
(``Category.assignment_order``). The locality is the street office (块) of the
case's street. ``routing.json`` holds the exceptions, one rule a record:

- ``match`` narrows the rule to some categories, kinds, streets and area
  classes (a dimension left out matches everything);
- ``owner`` replaces the catalogue's owner for the cases it matches;
- ``order`` replaces the category's order, or ``candidates`` spells the whole
  list out, with the words ``owner`` and ``locality`` standing for those two
  and any department id for a further one; an empty list means no department
  is asked and a human dispatcher decides;
- ``co_departments`` are assigned alongside whoever leads.

Rules are tried in file order and the first that matches wins, so a specific
rule goes before a general one; a rule that an earlier one makes unreachable
is refused when the data is loaded.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from shared.reference.catalogue import AssignmentOrder, Category, CategoryKind, DepartmentId
from shared.reference.geography import AreaClass, StreetCode

#: Words a candidate list may use besides department ids.
OWNER = "owner"
LOCALITY = "locality"
CANDIDATE_WORDS = (OWNER, LOCALITY)

RuleId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,39}$")]
CategoryRef = Annotated[str, Field(pattern=r"^[A-Z][A-Za-z0-9]{1,15}$")]
#: ``owner``, ``locality`` or a department id.
Candidate = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,39}$")]


def _distinct(values: tuple[object, ...]) -> None:
    if len(values) != len(set(values)):
        raise ValueError("must not repeat a value")


class RuleMatch(BaseModel):
    """Which cases a rule is for; every dimension given must match, one left out matches all."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    categories: tuple[CategoryRef, ...] = ()
    kinds: tuple[CategoryKind, ...] = ()
    streets: tuple[StreetCode, ...] = ()
    area_classes: tuple[AreaClass, ...] = ()

    @field_validator("categories", "kinds", "streets", "area_classes")
    @classmethod
    def _no_repeats(cls, values: tuple[object, ...]) -> tuple[object, ...]:
        _distinct(values)
        return values

    def matches(self, category: Category, street: str, area_class: str) -> bool:
        """Whether a case of ``category`` in ``street`` and a cell of ``area_class`` is the rule's."""
        return (
            (not self.categories or category.code in self.categories)
            and (not self.kinds or category.kind in self.kinds)
            and (not self.streets or street in self.streets)
            and (not self.area_classes or area_class in self.area_classes)
        )


class RoutingRule(BaseModel):
    """One exception to the catalogue's routing, with the reason a person reads in the dispatch."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: RuleId
    description: str = Field(min_length=1, max_length=200)
    match: RuleMatch = RuleMatch()
    owner: DepartmentId | None = None
    order: AssignmentOrder | None = None
    candidates: tuple[Candidate, ...] | None = None
    co_departments: tuple[DepartmentId, ...] = Field(default=(), validate_default=True)

    @field_validator("candidates")
    @classmethod
    def _candidates_or_order(
        cls, candidates: tuple[str, ...] | None, info: ValidationInfo
    ) -> tuple[str, ...] | None:
        if candidates is None:
            return None
        if info.data.get("order") is not None:
            raise ValueError("give either order or candidates, not both")
        _distinct(candidates)
        if info.data.get("owner") is not None and OWNER not in candidates:
            raise ValueError(
                f"does not include {OWNER!r}, so the rule's owner would never be asked"
            )
        return candidates

    @field_validator("co_departments")
    @classmethod
    def _does_something(cls, co: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        _distinct(co)
        data = info.data
        changes = (data.get("owner"), data.get("order"), data.get("candidates"))
        if all(change is None for change in changes) and not co:
            raise ValueError(
                "a rule must set at least one of owner, order, candidates or co_departments"
            )
        return co
