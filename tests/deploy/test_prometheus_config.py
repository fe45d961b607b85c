"""The shipped Prometheus config and alert rules pass promtool, and the alerts fire when they should."""

from __future__ import annotations

import subprocess

from tests.deploy.conftest import DEPLOY, load_yaml

PROMETHEUS = DEPLOY / "prometheus"

REQUIRED_ALERTS = {
    # issue 7: overdue spike, DLQ growth, outbox backlog age, consumer lag, a service down
    "CitycasesOverdueSpike",
    "CitycasesDLQGrowth",
    "CitycasesOutboxBacklogAge",
    "CitycasesConsumerLag",
    "CitycasesServiceDown",
}


def _promtool(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_promtool_check_config(promtool):
    result = _promtool(promtool, "check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout + result.stderr


def test_promtool_check_rules(promtool):
    result = _promtool(promtool, "check", "rules", str(PROMETHEUS / "alerts.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_fire_as_documented(promtool):
    """deploy/prometheus/alerts_test.yml: synthetic series, expected alerts and annotations."""
    result = _promtool(promtool, "test", "rules", str(PROMETHEUS / "alerts_test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rejects_a_broken_rule(promtool, tmp_path):
    """The check is real: a rule with a syntax error fails it."""
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "groups:\n  - name: x\n    rules:\n      - alert: Broken\n        expr: sum by (service (up)\n"
    )
    assert _promtool(promtool, "check", "rules", str(bad)).returncode != 0


def test_every_required_alert_is_there_with_a_runbook_entry():
    (rules,) = load_yaml(PROMETHEUS / "alerts.yml")
    alerts = {r["alert"]: r for g in rules["groups"] for r in g["rules"] if "alert" in r}
    assert REQUIRED_ALERTS <= set(alerts), sorted(REQUIRED_ALERTS - set(alerts))
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert rule["annotations"]["summary"], name
        anchor = rule["annotations"]["runbook"].partition("#")[2]
        assert f"### {anchor}".lower() in readme.lower(), f"{name}: no README section #{anchor}"
    tested = (PROMETHEUS / "alerts_test.yml").read_text(encoding="utf-8")
    for name in REQUIRED_ALERTS:
        assert f"alertname: {name}" in tested, f"{name} has no unit test in alerts_test.yml"
