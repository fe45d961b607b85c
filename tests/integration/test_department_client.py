"""The integration guide's stock-client example works against the real broker and our contract."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from pathlib import Path

from shared.events.envelope import decode
from shared.events.examples import example_event
from tests.integration.conftest import kafka_settings
from tests.integration.helpers import create_topics, produce, read_topic

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "department_client.py"


def load_example():
    spec = importlib.util.spec_from_file_location("department_client", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


async def test_a_department_follows_its_own_cases_by_header_and_signs_for_them(prefix, bootstrap):
    client = load_example()
    cfg = kafka_settings(bootstrap)
    await create_topics(cfg, prefix, ["assignments", "supervision", "feedback"], partitions=2)
    ours = example_event("case.dispatched", case_id="C-OURS", department="sanitation")
    theirs = example_event("case.dispatched", case_id="C-THEIRS", department="parks")
    await produce(cfg, prefix + "assignments", [theirs, ours])

    seen: list[dict] = []

    async def on_event(event: dict) -> bool:
        seen.append(event)
        await client.sign_for(bootstrap, event, actor_id="sanitation-desk", prefix=prefix)
        return False  # one is enough for the test

    await asyncio.wait_for(client.follow(bootstrap, "sanitation", on_event, prefix=prefix), 30)
    assert [e["subject"] for e in seen] == ["C-OURS"], "only the department's own case"

    (record,) = await read_topic(cfg, prefix + "feedback", expect_at_least=1)
    accepted = decode(record.value)  # the hand-written CloudEvent satisfies the contract
    assert accepted.type == "case.accepted" and accepted.subject == "C-OURS"
    assert accepted.data.department == "sanitation"
    assert dict(record.headers)["department"] == b"sanitation"
    assert json.loads(record.value)["specversion"] == "1.0"
