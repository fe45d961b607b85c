"""A scripted month against the real broker and Postgres: the table, redelivery, reorder, recompute.

One scoring runtime follows the four topics of one test run through the
whole module; each test then looks at it from one side.
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import datetime

import asyncpg
import pytest
from prometheus_client import generate_latest

from services.scoring import store
from services.scoring.app import MIGRATIONS
from services.scoring.context import ScoringContext
from services.scoring.handlers import ScoringHandler
from services.scoring.recompute import compare, figures_of, recompute
from shared import metrics as plumbing_metrics
from shared.migrations import migrate
from shared.outbox import Tx
from tests.integration.helpers import eventually, read_topic
from tests.integration.scoring.conftest import (
    http_client,
    produce_events,
    scoring_settings,
    start_scoring,
    wait_consumed,
)
from tests.integration.scoring.month import (
    AREA_SCORES_NOVEMBER,
    AREAS_NOVEMBER,
    DEPARTMENT_SCORES_NOVEMBER,
    DEPARTMENTS_NOVEMBER,
    INDICATOR_ORDER,
    november,
)
from tests.unit.scoring.story import CELL_PINGJIANG, CST

pytestmark = pytest.mark.integration

EVENTS = november()
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=CST)  # November still open: nothing final yet


@pytest.fixture(scope="module")
async def month(database_url, bootstrap):
    prefix = f"t{uuid.uuid4().hex[:8]}_"
    settings = scoring_settings(prefix, database_url, bootstrap)
    runtime, _clock = await start_scoring(settings, NOW)
    try:
        await produce_events(settings, EVENTS)
        await wait_consumed(settings, len(EVENTS))
        yield settings, runtime
    finally:
        await runtime.stop()


def indicators(row):
    return tuple(row["indicators"][name] for name in INDICATOR_ORDER)


async def test_the_month_gives_the_expected_department_table(month):
    _settings, runtime = month
    async with http_client(runtime) as http:
        got = await http.get("/v1/scores", params={"unit_type": "department", "period": "2026-11"})
    assert got.status_code == 200
    table = got.json()
    assert (table["period_type"], table["period"], table["final"]) == ("month", "2026-11", False)
    units = {row["unit_id"]: row for row in table["units"]}
    assert {u: indicators(r) for u, r in units.items()} == DEPARTMENTS_NOVEMBER
    assert {
        u: (r["score"], r["band"], r["rank"], r["flags"]["bottom_three"]) for u, r in units.items()
    } == {u: pytest.approx(v) for u, v in DEPARTMENT_SCORES_NOVEMBER.items()}
    assert table["ranked_units"] == 5
    assert [row["unit_id"] for row in table["units"][:2]] == ["parks", "sanitation"]
    sanitation = units["sanitation"]
    assert sanitation["rates"] == pytest.approx(
        {
            "on_time_rate": 0.8,
            "closure_rate": 0.9,
            "response_rate": 0.9,
            "rework_rate": 1 / 9,
            "satisfaction_rate": 1.9 / 3,
        }
    )
    assert units["street-lighting"]["rates"]["closure_rate"] is None  # null, not 0
    # The district totals count every November cohort case once: 10+6+4+4+3.
    assert table["totals"]["indicators"]["due"] == 27


async def test_the_month_gives_the_expected_area_table_and_cell_figures(month):
    _settings, runtime = month
    async with http_client(runtime) as http:
        areas = (await http.get("/v1/scores?unit_type=area&period=2026-11")).json()
        cell = (await http.get(f"/v1/scores/{CELL_PINGJIANG}?period=2026-11")).json()
        october = (await http.get("/v1/scores/parks?period=2026-10")).json()
    units = {row["unit_id"]: row for row in areas["units"]}
    assert {u: indicators(r) for u, r in units.items()} == AREAS_NOVEMBER
    assert {
        u: (r["score"], r["band"], r["rank"], r["flags"]["bottom_three"]) for u, r in units.items()
    } == {u: pytest.approx(v) for u, v in AREA_SCORES_NOVEMBER.items()}
    # The Pingjiang cell holds sanitation's cases and S7 (now parks'); R1 is in another cell.
    assert cell["unit_type"] == "grid"
    assert (cell["indicators"]["due"], cell["indicators"]["rebounds"]) == (11, 0)
    assert (cell["score"], cell["rank"]) == (None, None)
    # P4 was first dispatched on 31 October: it is October's, closed or not.
    assert (october["indicators"]["due"], october["indicators"]["closed"]) == (1, 1)


async def test_tables_and_reports_as_csv(month):
    _settings, runtime = month
    async with http_client(runtime) as http:
        by_param = await http.get("/v1/scores?unit_type=department&period=2026-11&format=csv")
        by_accept = await http.get(
            "/v1/scores?unit_type=department&period=2026-11", headers={"Accept": "text/csv"}
        )
        weekly = await http.get("/v1/reports/weekly?week=2026-W48&format=csv&section=overdue")
    assert by_param.headers["content-type"].startswith("text/csv")
    assert by_param.text == by_accept.text
    rows = list(csv.DictReader(io.StringIO(by_param.text)))
    assert [r["unit_id"] for r in rows[:2]] == ["parks", "sanitation"]
    sanitation = rows[1]
    assert (sanitation["due"], sanitation["rework"], sanitation["score"], sanitation["band"]) == (
        "10",
        "1",
        "83.8",
        "B",
    )
    assert rows[-1]["unit_id"] == "street-lighting" and rows[-1]["rank"] == ""
    overdue = list(csv.DictReader(io.StringIO(weekly.text)))
    assert [(r["case_id"], r["department"]) for r in overdue] == [("W2", "water-affairs")]


async def test_the_daily_report(month):
    _settings, runtime = month
    async with http_client(runtime) as http:
        second = (await http.get("/v1/reports/daily?date=2026-11-02")).json()
        third = (await http.get("/v1/reports/daily?date=2026-11-03")).json()
        twelfth = (await http.get("/v1/reports/daily?date=2026-11-12")).json()
        areas_csv = await http.get("/v1/reports/daily?date=2026-11-12&format=csv&section=areas")
    # 2 November: S1 registered, S6 merged into it; S1 dispatched and closed; P4 (October's) closed.
    assert second["intake"] == {"registered": 1, "merged": 1, "rejected": 0}
    departments = {d["department"]: d for d in second["departments"]}
    assert (departments["sanitation"]["dispatched"], departments["sanitation"]["closures"]) == (
        1,
        1,
    )
    assert (departments["parks"]["dispatched"], departments["parks"]["closures"]) == (0, 1)
    assert second["totals"]["closures"] == 2
    assert third["intake"] == {"registered": 1, "merged": 0, "rejected": 1}
    # 12 November: S5 went overdue and stayed open; W1 (overdue on the 11th) was closed then.
    departments = {d["department"]: d for d in twelfth["departments"]}
    assert departments["sanitation"]["became_overdue"] == 1
    assert departments["sanitation"]["open_overdue"] == 1
    assert twelfth["totals"]["open_overdue"] == 1
    areas = list(csv.DictReader(io.StringIO(areas_csv.text)))
    assert [(a["area"], a["registered"], a["dispatched"]) for a in areas] == [
        ("street-pingjiang", "1", "1")
    ]


async def test_the_weekly_report_ranks_the_week_and_shows_the_movers(month):
    _settings, runtime = month
    async with http_client(runtime) as http:
        w47 = (await http.get("/v1/reports/weekly?week=2026-W47")).json()
        w48 = (await http.get("/v1/reports/weekly?week=2026-W48")).json()
    ranking = {r["unit_id"]: r for r in w47["ranking"]["department"]}
    # W47 (16-22 Nov): sanitation's five plain cases score 100; parks has S7, P3 and two plain:
    # (30 + 30 + 30 × (1 − 3/4)) × 100/90 = 75, − 0.2 × 3 − 0.5 = 73.9; M2 and T2 not closed: 0.
    assert {u: (r["score"], r["rank"]) for u, r in ranking.items()} == {
        "sanitation": (100.0, 1),
        "parks": (pytest.approx(73.9), 2),
        "municipal-works": (0.0, 3),
        "transport": (0.0, 3),
    }
    # W46 ranked parks 1 (P2: 100), water affairs 2 (W1: 60), sanitation 3 (S4, S5: 33.1333).
    # Areas in W47: Pingjiang (S7 + five plain) and Canglang (P3 + two plain) 100, tied first;
    # Jinchang (M2, T2 signed for, not closed) 10 × 100/60 = 16.6667. In W46 Canglang (P2) was
    # first with 100, Pingjiang (S4, S5) second with (10 + 25) × 100/60, Shuangta (W1) third.
    movers = {m["unit_id"]: (m["previous_rank"], m["rank"], m["change"]) for m in w47["movers"]}
    assert movers == {
        "sanitation": (3, 1, 2),
        "parks": (1, 2, -1),
        "municipal-works": (None, 3, None),
        "transport": (None, 3, None),
        "street-pingjiang": (2, 1, 1),
        "street-jinchang": (None, 3, None),
    }
    assert w47["overdue"] == [] and w47["rebounds"] == []
    assert [(o["case_id"], o["closed_at"]) for o in w48["overdue"]] == [("W2", None)]
    assert [(r["case_id"], r["department"], r["area"]) for r in w48["rebounds"]] == [
        ("R1", "street-lighting", "street-pingjiang")
    ]


async def test_bad_requests_name_the_parameter(month):
    _settings, runtime = month
    async with http_client(runtime) as http:
        cases = {
            "/v1/scores?period=2026-13": ("query", "period"),
            "/v1/scores?unit_type=planet&period=2026-11": ("query", "unit_type"),
            "/v1/reports/daily?date=2026-02-30": ("query", "date"),
            "/v1/reports/weekly?week=2026-11": ("query", "week"),
            "/v1/reports/weekly?week=2026-W47&section=nope": ("query", "section"),
            "/v1/scores?period=2026-11&format=xml": ("query", "format"),
        }
        for url, where in cases.items():
            got = await http.get(url)
            assert got.status_code == 422, url
            assert tuple(got.json()["detail"][0]["loc"]) == where, url
        unknown = await http.get("/v1/scores/no-such-unit?period=2026-11")
        assert unknown.status_code == 404
        assert "no-such-unit" in unknown.json()["detail"]


async def test_score_gauges_are_per_department_and_street_never_per_cell(month):
    _settings, runtime = month

    def exported() -> str:
        return generate_latest().decode()

    await eventually(
        lambda: _async(exported()),
        lambda text: 'scoring_unit_score{period_type="month",unit_id="parks"' in text,
        what="parks' score exported",
    )
    lines = [line for line in exported().splitlines() if line.startswith("scoring_unit_")]
    assert lines
    assert not any(CELL_PINGJIANG in line or 'unit_type="grid"' in line for line in lines)


async def _async(value):
    return value


async def test_every_message_redelivered_twice_changes_nothing(month):
    settings, runtime = month
    async with runtime.db.acquire() as conn:
        before = await store.all_figures(conn)
        facts_before = await conn.fetch("SELECT * FROM case_facts ORDER BY case_id")
    duplicates = plumbing_metrics.EVENTS_DUPLICATE

    def dropped() -> float:
        return sum(
            duplicates.labels("scoring", settings.topic_prefix + t)._value.get()
            for t in ("cases", "assignments", "feedback", "supervision")
        )

    start = dropped()
    await produce_events(settings, EVENTS)
    await produce_events(settings, EVENTS)
    await eventually(
        lambda: _async(dropped()),
        lambda n: n - start >= 2 * len(EVENTS),
        what="every event dropped twice by the inbox",
    )
    async with runtime.db.acquire() as conn:
        assert await store.all_figures(conn) == before
        assert await conn.fetch("SELECT * FROM case_facts ORDER BY case_id") == facts_before


async def test_reversed_and_doubled_without_the_inbox_still_gives_the_same_figures(
    month, database_url
):
    """A replay that bypasses the inbox, in reverse order, every event twice: same figures."""
    settings, runtime = month
    schema = f"{settings.topic_prefix}scoring_reorder"
    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn, schema, MIGRATIONS)
        await conn.execute(f"SET search_path TO {schema}, public")
        handler = ScoringHandler(ScoringContext(settings))
        replay = list(reversed(EVENTS)) + EVENTS[::2]
        for i in range(0, len(replay), 7):
            async with conn.transaction():
                await handler(Tx(conn), replay[i : i + 7])
        replayed = await store.all_figures(conn)
    finally:
        await conn.close()
    async with runtime.db.acquire() as live:
        expected = await store.all_figures(live)
    nonzero_live = {k: v for k, v in expected.items() if any(v)}
    assert {k: v for k, v in replayed.items() if any(v)} == nonzero_live
    assert len(nonzero_live) > 100


async def test_a_full_recompute_from_the_topics_equals_the_live_figures(month, database_url):
    settings, _runtime = month
    target = f"{settings.topic_prefix}scoring_recompute"
    result = await recompute(settings, target)
    # Each event is on its topic three times now (sent once, redelivered twice).
    assert result.events >= len(EVENTS)
    assert await compare(database_url, settings.db_schema, target) == []
    rebuilt = await figures_of(database_url, target)
    assert sum(1 for v in rebuilt.values() if any(v)) > 100
    dlq = await read_topic(settings.kafka, settings.topic_prefix + "feedback.dlq", seconds=1)
    assert dlq == [], "nothing in the scripted month is poison"
