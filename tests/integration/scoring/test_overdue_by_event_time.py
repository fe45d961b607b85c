"""A red light that raced a step done in time is withdrawn, whichever arrives first.

Supervision fires a light once a deadline has passed and the step has not
*arrived*. A sign-for made a second before the deadline, delayed past the
settle (a backlog on feedback, supervision restarting), makes a light that
never was; scoring judges it by the sign-for's event time. Real broker and
Postgres: the light is consumed and saved first, the sign-for afterwards, so
the judgement also reads the lights back from the stored fact.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import asyncpg
import pytest

from tests.integration.helpers import eventually
from tests.integration.scoring.conftest import (
    produce_events,
    scoring_settings,
    start_scoring,
    wait_consumed,
)
from tests.unit.scoring.story import CST, Story, at

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=CST)


async def _overdue_at(database_url: str, schema: str, case_id: str) -> datetime | None:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval(
            f'SELECT overdue_at FROM "{schema}".case_facts WHERE case_id = $1', case_id
        )
    finally:
        await conn.close()


async def test_a_sign_for_arriving_after_its_light_withdraws_it(database_url, bootstrap):
    prefix = f"t{uuid.uuid4().hex[:8]}_"
    settings = scoring_settings(prefix, database_url, bootstrap)
    schema = settings.db_schema
    assert schema is not None
    runtime, _ = await start_scoring(settings, NOW)
    try:
        raced, late = Story("C-RACED"), Story("C-LATE")
        for story in (raced, late):
            story.registered(at(3, 9))
            story.dispatched(at(3, 10))  # sign-for due 11:00
            story.overdue(at(3, 11) + timedelta(seconds=1), timer="sign_for", deadline=at(3, 11))
        await produce_events(settings, raced.events + late.events)
        await wait_consumed(settings, 6)
        for story in (raced, late):
            assert await _overdue_at(database_url, schema, story.case_id) is not None

        signed_in_time = raced.accepted(at(3, 11) - timedelta(seconds=1))
        signed_late = late.accepted(at(3, 11) + timedelta(minutes=5))
        await produce_events(settings, [signed_in_time, signed_late])
        await wait_consumed(settings, 8)

        await eventually(
            lambda: _overdue_at(database_url, schema, raced.case_id),
            lambda value: value is None,
            seconds=30,
            what="the raced light withdrawn",
        )
        assert await _overdue_at(database_url, schema, late.case_id) == at(3, 11) + timedelta(
            seconds=1
        )
    finally:
        await runtime.stop()
