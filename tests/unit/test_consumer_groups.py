"""Each service's consumer groups: what a group that replaced per-topic groups inherits.

No broker: the services are built and their runtimes asked.
"""

from __future__ import annotations

import shared.runtime
from services.dispatch.app import FOLLOWED as DISPATCH_FOLLOWED
from services.dispatch.app import build as build_dispatch
from services.dispatch.settings import Settings as DispatchSettings
from services.intake.app import READ_MODEL_TOPICS
from services.intake.app import build as build_intake
from services.intake.settings import Settings as IntakeSettings
from services.scoring.app import TOPICS as SCORING_TOPICS
from services.scoring.app import build as build_scoring
from services.scoring.settings import Settings as ScoringSettings
from services.supervision.app import TOPICS as SUPERVISION_TOPICS
from services.supervision.app import build as build_supervision
from services.supervision.settings import Settings as SupervisionSettings


async def test_merged_groups_adopt_the_offsets_of_the_per_topic_groups_they_replace(monkeypatch):
    """Each follower topic once had a group of its own; the merged groups take over from them.

    Intake's reports and dispatch's cases keep their groups, and adopt nothing.
    """
    asked: dict[str, dict[str, str]] = {}

    async def adopt(cfg: object, group: str, earlier: dict[str, str]) -> dict[object, int]:
        asked[group] = earlier
        return {}

    monkeypatch.setattr(shared.runtime, "adopt_offsets", adopt)
    prefix = {"topic_prefix": "t1_"}
    for runtime in (
        build_intake(IntakeSettings(**prefix)),
        build_dispatch(DispatchSettings(**prefix)),
        build_supervision(SupervisionSettings(**prefix)),
        build_scoring(ScoringSettings(**prefix, reference_data_dir="/not/read")),
    ):
        await runtime.adopt_earlier_offsets()
    assert asked == {
        "t1_intake.followers": {f"t1_{t}": f"t1_intake.{t}" for t in READ_MODEL_TOPICS},
        "t1_dispatch.followers": {f"t1_{t}": f"t1_dispatch.{t}" for t in DISPATCH_FOLLOWED},
        "t1_supervision": {f"t1_{t}": f"t1_supervision.{t}" for t in SUPERVISION_TOPICS},
        "t1_scoring": {f"t1_{t}": f"t1_scoring.{t}" for t in SCORING_TOPICS},
    }
    assert set(DISPATCH_FOLLOWED) == {"feedback", "supervision"}
