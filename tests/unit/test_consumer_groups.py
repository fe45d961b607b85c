"""Each service's consumer groups: which topics each reads, and what a merged group inherits.

No broker: the services are built and their runtimes asked.
"""

from __future__ import annotations

import shared.runtime
from services.intake.app import build as build_intake
from services.intake.settings import Settings as IntakeSettings
from services.scoring.app import TOPICS as SCORING_TOPICS
from services.scoring.app import build as build_scoring
from services.scoring.settings import Settings as ScoringSettings
from services.supervision.app import TOPICS as SUPERVISION_TOPICS
from services.supervision.app import build as build_supervision
from services.supervision.settings import Settings as SupervisionSettings


async def test_merged_groups_adopt_the_offsets_of_the_per_topic_groups_they_replace(monkeypatch):
    """Supervision and scoring read all their topics in one group, once one group per topic."""
    asked: dict[str, dict[str, str]] = {}

    async def adopt(cfg: object, group: str, earlier: dict[str, str]) -> dict[object, int]:
        asked[group] = earlier
        return {}

    monkeypatch.setattr(shared.runtime, "adopt_offsets", adopt)
    prefix = {"topic_prefix": "t1_"}
    for runtime in (
        build_supervision(SupervisionSettings(**prefix)),
        build_scoring(ScoringSettings(**prefix, reference_data_dir="/not/read")),
        build_intake(IntakeSettings(**prefix)),
    ):
        await runtime.adopt_earlier_offsets()
    assert asked == {
        "t1_supervision": {f"t1_{t}": f"t1_supervision.{t}" for t in SUPERVISION_TOPICS},
        "t1_scoring": {f"t1_{t}": f"t1_scoring.{t}" for t in SCORING_TOPICS},
    }
