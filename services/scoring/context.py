"""What the handlers, the publisher, the API and the recompute command share.

The reference data is read on first use, not when the service is built, so
building the app (for the OpenAPI document) touches no file.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from services.scoring.domain.facts import Places
from services.scoring.settings import Settings
from shared.reference import ReferenceData, ScoringRules, load_reference


class ScoringContext:
    def __init__(self, settings: Settings, reference: ReferenceData | None = None) -> None:
        self.settings = settings
        if reference is not None:
            self.__dict__["reference"] = reference

    @cached_property
    def reference(self) -> ReferenceData:
        configured = self.settings.reference_data_dir
        return load_reference(Path(configured) if configured else None)

    @cached_property
    def places(self) -> Places:
        return Places.from_reference(self.reference)

    @property
    def rules(self) -> ScoringRules:
        return self.reference.scoring

    @property
    def repeated_failures(self) -> int:
        return self.rules.department.deductions.repeated_failure_threshold

    def unit_name(self, unit_type: str, unit_id: str) -> str | None:
        """A person's name for a unit, where the reference data has one."""
        ref = self.reference
        if unit_type in ("department", "area"):
            department = ref.department(unit_id)
            return department.name_zh if department else None
        if unit_type == "community":
            community = ref.community(unit_id)
            return community.name_zh if community else None
        if unit_type == "district":
            return ref.district.name_zh if unit_id == ref.district.code else None
        return None
