"""Routing: the area (块) a case belongs to and the departments (条) it is offered to, in order.

The catalogue gives each category an owner and an order (部件 owner first,
事件 locality first); the first matching rule of ``routing.json`` may change
the owner, the order or the whole candidate list, and add co-assigned
departments. The result carries a sentence saying why, which travels in the
dispatch so a person can check the decision without the rule table at hand.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.reference import AssignmentOrder, Category, CategoryKind, ReferenceData, RoutingRule
from shared.reference.routing import LOCALITY, OWNER

#: ``rule_id`` of a route that no rule of routing.json changed.
CATALOGUE_RULE = "catalogue"
#: Longest ``rule`` text the event contract takes.
RULE_TEXT_MAX = 500

_KIND_ZH = {CategoryKind.COMPONENT: "部件", CategoryKind.EVENT: "事件"}
_ORDER_TEXT = {
    AssignmentOrder.OWNER_FIRST: "owner first (先属主后属地)",
    AssignmentOrder.LOCALITY_FIRST: "locality first (先属地后属主)",
}


@dataclass(frozen=True)
class Route:
    """Where a case goes: its area, the ordered candidates for the lead, who is co-assigned, and why."""

    area: str
    candidates: tuple[str, ...]
    co_departments: tuple[str, ...]
    rule_id: str
    rule: str

    @property
    def lead(self) -> str | None:
        """The first candidate, or None when a human dispatcher must decide."""
        return self.candidates[0] if self.candidates else None


def locality_of(ref: ReferenceData, street: str) -> str | None:
    """The street office (块) of ``street``, or None for a street the reference data lacks."""
    try:
        return ref.street_office(street).id
    except KeyError:
        return None


def route(
    ref: ReferenceData, category: Category, street: str, area_class: str, *, fallback_area: str
) -> Route:
    """Route a case of ``category`` in ``street`` on a cell of ``area_class``.

    ``fallback_area`` names the area when the street has no office in the
    reference data (the case then has no locality candidate either).
    """
    rule = ref.routing_rule(category, street, area_class)
    locality = locality_of(ref, street)
    owner = rule.owner if rule is not None and rule.owner else category.owner_department
    order = rule.order if rule is not None and rule.order else category.assignment_order
    if rule is not None and rule.candidates is not None:
        words: tuple[str, ...] = rule.candidates
    elif order is AssignmentOrder.OWNER_FIRST:
        words = (OWNER, LOCALITY)
    else:
        words = (LOCALITY, OWNER)
    candidates = _resolve(words, owner, locality)
    co_departments = rule.co_departments if rule is not None else ()
    return Route(
        area=locality or fallback_area,
        candidates=candidates,
        co_departments=co_departments,
        rule_id=rule.id if rule is not None else CATALOGUE_RULE,
        rule=_explain(category, street, area_class, rule, order, candidates, co_departments),
    )


def co_assigned(co_departments: tuple[str, ...], lead: str) -> tuple[str, ...]:
    """The co-assignees of a dispatch: the rule's, without whoever leads this time."""
    return tuple(department for department in co_departments if department != lead)


def _resolve(words: tuple[str, ...], owner: str, locality: str | None) -> tuple[str, ...]:
    out: list[str] = []
    for word in words:
        department = owner if word == OWNER else locality if word == LOCALITY else word
        # The rule may name the street office as owner: ask it once, not twice.
        if department is not None and department not in out:
            out.append(department)
    return tuple(out)


def _explain(
    category: Category,
    street: str,
    area_class: str,
    rule: RoutingRule | None,
    order: AssignmentOrder,
    candidates: tuple[str, ...],
    co_departments: tuple[str, ...],
) -> str:
    subject = (
        f"{category.code} {category.name_zh} ({_KIND_ZH[category.kind]}),"
        f" street {street}, area class {area_class}"
    )
    if rule is not None and rule.candidates is not None:
        how = "candidates as the rule lists them"
    else:
        how = _ORDER_TEXT[order]
    chain = ", then ".join(candidates) if candidates else "no candidate: a dispatcher assigns it"
    why = f"rule {rule.id}: {rule.description}" if rule is not None else "catalogue"
    text = f"{subject}: {why}; {how}: {chain}"
    if co_departments:
        text += f"; co-assigned: {', '.join(co_departments)}"
    return clip(text)


def clip(text: str, limit: int = RULE_TEXT_MAX) -> str:
    """``text`` cut to ``limit`` characters, marked with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
