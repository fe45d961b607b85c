"""The live view draws what the services report, and reads /metrics as an operator would."""

from collections import Counter
from datetime import UTC, datetime
from types import SimpleNamespace

from rich.console import Console

from ops.view import CityView, Snapshot
from shared.clock import ManualClock


def snapshot() -> Snapshot:
    s = Snapshot()
    s.healthy = {"intake": True, "dispatch": True, "supervision": False, "scoring": True}
    s.metrics = {
        "intake": {
            (
                "events_consumed_total",
                (("service", "intake"), ("topic", "reports"), ("type", "report.submitted")),
            ): 120.0,
            ("dlq_messages_total", (("service", "intake"), ("topic", "reports"))): 2.0,
        }
    }
    s.topic_counts = {"reports": 120, "cases": 118, "scores": 0}
    s.overdue = [{"department": "parks"}, {"department": "parks"}, {"department": "sanitation"}]
    s.ranking = [{"rank": 1, "unit_id": "sanitation", "score": 91.2, "band": "A"}]
    return s


def test_snapshot_sums_metrics_and_knows_when_the_city_is_steady():
    s = snapshot()
    assert s.metric("intake", "events_consumed_total", topic="reports") == 120
    assert s.metric("intake", "events_consumed_total", topic="cases") == 0
    assert s.by_label("intake", "dlq_messages_total", "topic") == {"reports": 2.0}
    assert not s.all_healthy and not s.every_topic_has_events
    s.healthy["supervision"] = True
    s.topic_counts["scores"] = 3
    assert s.all_healthy and s.every_topic_has_events


def test_the_screen_shows_flow_overdue_and_ranking():
    simulator = SimpleNamespace(
        submitted=Counter({"hotline_12345": 70, "inspector": 50}), answered=Counter(accept=9)
    )
    view = CityView(
        clock=ManualClock(datetime(2026, 11, 2, 2, tzinfo=UTC)),
        scale=1200,
        ports={"intake": 1, "dispatch": 2, "supervision": 3, "scoring": 4},
        simulator=simulator,  # type: ignore[arg-type]
        kafka=None,  # type: ignore[arg-type]
        prefix="",
    )
    console = Console(width=200, record=True)
    console.print(view.render(snapshot()))
    screen = console.export_text()
    for expected in ["hotline_12345", "70", "parks", "sanitation", "91.2", "×1200", "Ctrl-C"]:
        assert expected in screen, expected
    assert "supervision:DOWN" in view.line(snapshot())
