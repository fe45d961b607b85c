"""Dispatch settings as data: returns before a human decides, and extensions and handling limits by tier."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from shared.reference.catalogue import HandlingTier
from shared.reference.time_limits import TimeLimit


class DispatchRules(BaseModel):
    """Everything ``dispatch.json`` holds.

    ``max_returns``: after this many "not ours" returns a case goes to a human
    dispatcher's queue instead of the next candidate. ``extension_maximum``:
    the most a case of a tier may be extended in total (延期); a tier that is
    not listed gets no extension on request (the command centre can still
    grant one). ``handle_limit_by_tier``: the handling limit of a case whose
    tier is not its category's own, such as a pavement repair registered as
    engineering work (工程性); a case of its category's tier keeps the
    category's limits.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_returns: int = Field(default=2, ge=1, le=20)
    extension_maximum: dict[HandlingTier, TimeLimit] = {}
    handle_limit_by_tier: dict[HandlingTier, TimeLimit] = {}

    def extension_limit(self, tier: HandlingTier | str) -> TimeLimit | None:
        """The total extension a case of ``tier`` may be granted, or None if it may get none."""
        return self.extension_maximum.get(HandlingTier(tier))
