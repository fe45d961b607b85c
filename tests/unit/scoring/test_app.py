"""The service's wiring, without a broker or a database."""

from __future__ import annotations

import pytest

from services.scoring.app import TOPICS, build
from services.scoring.settings import Settings
from shared.reference import ReferenceDataError


def test_build_subscribes_each_topic_in_its_own_group_and_touches_nothing():
    runtime = build(Settings(reference_data_dir="/no/such/folder"))  # not read when building
    assert [(s.topic, s.group_suffix) for s in runtime.subscriptions] == [
        (t, f".{t}") for t in TOPICS
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
