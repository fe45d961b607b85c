"""The service's wiring, without a broker or a database."""

from __future__ import annotations

import pytest

from services.scoring.app import TOPICS, build
from services.scoring.settings import Settings
from shared.reference import ReferenceDataError


def test_build_subscribes_every_topic_in_one_group_and_touches_nothing():
    runtime = build(Settings(reference_data_dir="/no/such/folder"))  # not read when building
    assert [(s.topics, runtime.group_for(s.topics[0])) for s in runtime.subscriptions] == [
        (TOPICS, "scoring")
    ]
    assert runtime.app is not None
    paths = set(runtime.app.openapi()["paths"])
    assert {
        "/v1/scores",
        "/v1/scores/{unit_id}",
        "/v1/reports/daily",
        "/v1/reports/weekly",
    } <= paths


async def test_broken_reference_data_stops_start_up_before_any_event(tmp_path):
    runtime = build(Settings(reference_data_dir=str(tmp_path / "missing")))
    with pytest.raises(ReferenceDataError, match="not a directory"):
        await runtime.start()
    assert runtime.pool is None, "nothing was connected"
