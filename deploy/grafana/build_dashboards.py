"""Generates the Grafana dashboards in deploy/grafana/dashboards/ (JSON, provisioned from files).

    python deploy/grafana/build_dashboards.py            # write the JSON files
    python deploy/grafana/build_dashboards.py --check    # exit 1 if a file is stale

Every panel queries the Prometheus datasource provisioned with uid "prometheus".
Only metric names that exist on the services' /metrics may appear in a query:
tests/deploy checks each expression against the prometheus_client registry.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
SCHEMA_VERSION = 39
SVC = 'service=~"$service"'
RATE = "$__rate_interval"

Panel = dict[str, Any]


class Layout:
    """Places panels left to right on Grafana's 24-column grid, wrapping rows."""

    def __init__(self) -> None:
        self.x = 0
        self.y = 0
        self.row_height = 0
        self.next_id = 1

    def place(self, panel: Panel, w: int, h: int) -> Panel:
        if self.x + w > 24:
            self.x, self.y, self.row_height = 0, self.y + self.row_height, 0
        panel["gridPos"] = {"x": self.x, "y": self.y, "w": w, "h": h}
        panel["id"] = self.next_id
        self.next_id += 1
        self.x += w
        self.row_height = max(self.row_height, h)
        return panel

    def row(self, title: str) -> Panel:
        if self.x:
            self.x, self.y, self.row_height = 0, self.y + self.row_height, 0
        panel = {
            "type": "row",
            "title": title,
            "collapsed": False,
            "panels": [],
            "gridPos": {"x": 0, "y": self.y, "w": 24, "h": 1},
            "id": self.next_id,
        }
        self.next_id += 1
        self.y += 1
        return panel


def _targets(queries: Iterable[tuple[str, str]], instant: bool = False) -> list[dict[str, Any]]:
    out = []
    for i, (expr, legend) in enumerate(queries):
        target: dict[str, Any] = {
            "datasource": DATASOURCE,
            "refId": chr(ord("A") + i),
            "expr": expr,
            "legendFormat": legend,
            "range": not instant,
            "instant": instant,
        }
        if instant:
            target["format"] = "table"
        out.append(target)
    return out


def timeseries(
    title: str,
    queries: list[tuple[str, str]],
    unit: str = "short",
    description: str = "",
    stack: bool = False,
    threshold: float | None = None,
) -> Panel:
    custom: dict[str, Any] = {"drawStyle": "line", "fillOpacity": 10, "showPoints": "never"}
    if stack:
        custom["stacking"] = {"mode": "normal", "group": "A"}
        custom["fillOpacity"] = 40
    thresholds: dict[str, Any] = {"mode": "absolute", "steps": [{"color": "green", "value": None}]}
    if threshold is not None:
        thresholds["steps"].append({"color": "red", "value": threshold})
        custom["thresholdsStyle"] = {"mode": "line+area"}
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": _targets(queries),
        "fieldConfig": {
            "defaults": {"unit": unit, "custom": custom, "thresholds": thresholds},
            "overrides": [],
        },
        "options": {
            "legend": {"displayMode": "table", "placement": "right", "calcs": ["lastNotNull"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    }


def stat(
    title: str,
    expr: str,
    unit: str = "short",
    description: str = "",
    red_above: float | None = None,
    legend: str = "",
) -> Panel:
    steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
    if red_above is not None:
        steps.append({"color": "red", "value": red_above})
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": _targets([(expr, legend)]),
        "fieldConfig": {
            "defaults": {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}},
            "overrides": [],
        },
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "area",
            "textMode": "auto",
        },
    }


def bars(
    title: str,
    expr: str,
    legend: str,
    unit: str = "short",
    description: str = "",
    min_value: float | None = None,
    max_value: float | None = None,
) -> Panel:
    """A ranking: one horizontal bar per series, sorted by the query (sort_desc/topk)."""
    defaults: dict[str, Any] = {
        "unit": unit,
        "color": {"mode": "continuous-RdYlGr"},
        "thresholds": {"mode": "absolute", "steps": [{"color": "green", "value": None}]},
    }
    if min_value is not None:
        defaults["min"] = min_value
    if max_value is not None:
        defaults["max"] = max_value
    return {
        "type": "bargauge",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": _targets([(expr, legend)], instant=True),
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "orientation": "horizontal",
            "displayMode": "gradient",
            "showUnfilled": True,
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        },
    }


def table(title: str, expr: str, description: str = "") -> Panel:
    return {
        "type": "table",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": _targets([(expr, "")], instant=True),
        "fieldConfig": {"defaults": {}, "overrides": []},
        "options": {"showHeader": True, "sortBy": [{"displayName": "Value", "desc": True}]},
        "transformations": [
            {"id": "organize", "options": {"excludeByName": {"Time": True}}},
        ],
    }


def service_variable() -> dict[str, Any]:
    return {
        "name": "service",
        "label": "service",
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": "label_values(outbox_backlog_rows, service)", "refId": "service"},
        "definition": "label_values(outbox_backlog_rows, service)",
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
    }


def dashboard(
    uid: str,
    title: str,
    description: str,
    panels: list[Panel],
    variables: list[dict[str, Any]] | None = None,
    time_from: str = "now-6h",
) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["citycases"],
        "timezone": "browser",
        "editable": False,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "time": {"from": time_from, "to": "now"},
        "templating": {"list": variables or []},
        "annotations": {"list": []},
        "links": [
            {
                "type": "dashboards",
                "tags": ["citycases"],
                "asDropdown": True,
                "title": "citycases",
                "includeVars": False,
                "keepTime": True,
            }
        ],
        "panels": panels,
    }


# --------------------------------------------------------------------------- flow


def flow() -> dict[str, Any]:
    g = Layout()
    p: list[Panel] = []
    p.append(g.row("Services"))
    p.append(
        g.place(
            stat(
                "Services up",
                'sum(up{job="citycases"})',
                description="Scrape targets of job citycases answering /metrics.",
            ),
            6,
            4,
        )
    )
    p.append(
        g.place(
            stat(
                "Events in /s",
                f"sum(rate(events_consumed_total{{{SVC}}}[{RATE}]))",
                unit="ops",
            ),
            6,
            4,
        )
    )
    p.append(
        g.place(
            stat(
                "Events out /s",
                f"sum(rate(events_published_total{{{SVC}}}[{RATE}]))",
                unit="ops",
            ),
            6,
            4,
        )
    )
    p.append(
        g.place(
            stat(
                "Dead letters (1h)",
                f"sum(increase(dlq_messages_total{{{SVC}}}[1h])) or vector(0)",
                red_above=1,
            ),
            6,
            4,
        )
    )
    p.append(g.row("Events in: consumed and handled"))
    p.append(
        g.place(
            timeseries(
                "Consumed per service",
                [
                    (
                        f"sum by (service) (rate(events_consumed_total{{{SVC}}}[{RATE}]))",
                        "{{service}}",
                    )
                ],
                unit="ops",
            ),
            12,
            8,
        )
    )
    p.append(
        g.place(
            timeseries(
                "Consumed by service and type",
                [
                    (
                        f"sum by (service, type) (rate(events_consumed_total{{{SVC}}}[{RATE}]))",
                        "{{service}} {{type}}",
                    )
                ],
                unit="ops",
            ),
            12,
            8,
        )
    )
    p.append(g.row("Events out: published by the outbox relays"))
    p.append(
        g.place(
            timeseries(
                "Published per topic",
                [(f"sum by (topic) (rate(events_published_total{{{SVC}}}[{RATE}]))", "{{topic}}")],
                unit="ops",
                stack=True,
            ),
            12,
            8,
        )
    )
    p.append(
        g.place(
            timeseries(
                "Published by service and type",
                [
                    (
                        f"sum by (service, type) (rate(events_published_total{{{SVC}}}[{RATE}]))",
                        "{{service}} {{type}}",
                    )
                ],
                unit="ops",
            ),
            12,
            8,
        )
    )
    p.append(g.row("Failures and redeliveries"))
    p.append(
        g.place(
            timeseries(
                "Failures by kind",
                [
                    (
                        f"sum by (service, kind) (rate(events_failed_total{{{SVC}}}[{RATE}]))",
                        "{{service}} {{kind}}",
                    )
                ],
                unit="ops",
                description="transient: retried with backoff; poison and handler: sent to the DLQ.",
            ),
            12,
            8,
        )
    )
    p.append(
        g.place(
            timeseries(
                "Duplicates dropped by the inbox",
                [
                    (
                        f"sum by (service, topic) (rate(events_duplicate_total{{{SVC}}}[{RATE}]))",
                        "{{service}} {{topic}}",
                    )
                ],
                unit="ops",
                description="Redeliveries (after a rebalance or a crash) that the inbox recognised.",
            ),
            12,
            8,
        )
    )
    p.append(g.row("Batches"))
    quantiles = [
        (
            "histogram_quantile(0.5, sum by (service, le) "
            f"(rate(event_batch_handle_seconds_bucket{{{SVC}}}[{RATE}])))",
            "p50 {{service}}",
        ),
        (
            "histogram_quantile(0.99, sum by (service, le) "
            f"(rate(event_batch_handle_seconds_bucket{{{SVC}}}[{RATE}])))",
            "p99 {{service}}",
        ),
    ]
    p.append(
        g.place(
            timeseries("Batch handling time (transaction included)", quantiles, unit="s"),
            12,
            8,
        )
    )
    p.append(
        g.place(
            timeseries(
                "Mean batch size",
                [
                    (
                        f"sum by (service, topic) (rate(event_batch_size_sum{{{SVC}}}[{RATE}]))"
                        f" / sum by (service, topic) (rate(event_batch_size_count{{{SVC}}}[{RATE}]))",
                        "{{service}} {{topic}}",
                    )
                ],
                description="Records per consumed batch: large batches mean the consumer is catching up.",
            ),
            12,
            8,
        )
    )
    return dashboard(
        "citycases-flow",
        "citycases / Flow",
        "Events in and out of every service, by type; failures, duplicates, batch latency.",
        p,
        [service_variable()],
        time_from="now-1h",
    )


# --------------------------------------------------------------------------- backlog and lag


def backlog() -> dict[str, Any]:
    g = Layout()
    p: list[Panel] = []
    p.append(g.row("Outbox"))
    p.append(
        g.place(
            timeseries(
                "Outbox backlog",
                [(f"sum by (service) (outbox_backlog_rows{{{SVC}}})", "{{service}}")],
                description="Committed events not yet published by the relay.",
            ),
            8,
            8,
        )
    )
    p.append(
        g.place(
            timeseries(
                "Oldest unpublished outbox row",
                [(f"max by (service) (outbox_oldest_age_seconds{{{SVC}}})", "{{service}}")],
                unit="s",
                threshold=60,
                description="Alert CitycasesOutboxBacklogAge above 60 s for 2 minutes.",
            ),
            8,
            8,
        )
    )
    p.append(
        g.place(
            timeseries(
                "Relay publish errors",
                [
                    (
                        f"sum by (service) (increase(outbox_relay_errors_total{{{SVC}}}[{RATE}]))",
                        "{{service}}",
                    )
                ],
            ),
            8,
            8,
        )
    )
    p.append(g.row("Consumer lag"))
    p.append(
        g.place(
            timeseries(
                "Lag per consumer group and topic",
                [
                    (
                        f"sum by (service, topic) (consumer_lag_messages{{{SVC}}})",
                        "{{service}} ← {{topic}}",
                    )
                ],
                threshold=5000,
                description="High-water mark minus next offset, summed over partitions. "
                "Alert CitycasesConsumerLag above 5000 for 10 minutes.",
            ),
            12,
            9,
        )
    )
    p.append(
        g.place(
            table(
                "Lag per partition (top 20)",
                f"topk(20, max by (service, topic, partition) (consumer_lag_messages{{{SVC}}}))",
                description="A single hot partition lagging: a hot key; all partitions: too few instances.",
            ),
            12,
            9,
        )
    )
    p.append(g.row("Dead letters and retries"))
    p.append(
        g.place(
            timeseries(
                "Dead-lettered messages",
                [
                    (
                        f"sum by (service, topic) (increase(dlq_messages_total{{{SVC}}}[{RATE}]))",
                        "{{service}} ← {{topic}}",
                    )
                ],
                description="Messages written to <topic>.dlq; re-drive them once the cause is fixed.",
            ),
            12,
            8,
        )
    )
    p.append(
        g.place(
            timeseries(
                "Transient failures (batches retried)",
                [
                    (
                        'sum by (service, topic) (rate(events_failed_total{kind="transient", '
                        f"{SVC}}}[{RATE}]))",
                        "{{service}} ← {{topic}}",
                    )
                ],
                unit="ops",
            ),
            12,
            8,
        )
    )
    return dashboard(
        "citycases-backlog-lag",
        "citycases / Backlog and lag",
        "Outbox backlog and age, relay errors, consumer lag per group, topic and partition, DLQ.",
        p,
        [service_variable()],
        time_from="now-3h",
    )


# --------------------------------------------------------------------------- intake and dispatch


def intake_dispatch() -> dict[str, Any]:
    g = Layout()
    p: list[Panel] = []
    p.append(g.row("Intake: reports in, cases out"))
    p.append(
        g.place(
            timeseries(
                "Reports received per hour, by channel",
                [
                    (
                        "sum by (channel) (increase(intake_reports_received_total[1h]))",
                        "{{channel}}",
                    )
                ],
                stack=True,
                description="Hotline (12345), apps, inspectors, video, sensors; "
                "through the reports topic, the JSON API or Open311.",
            ),
            12,
            8,
        )
    )
    p.append(
        g.place(
            timeseries(
                "Verdicts per hour",
                [
                    ("sum(increase(intake_cases_registered_total[1h]))", "registered"),
                    ("sum(increase(intake_cases_merged_total[1h]))", "merged as duplicates"),
                    ("sum(increase(intake_reports_rejected_total[1h]))", "rejections"),
                    ("sum(increase(intake_reports_repeated_total[1h]))", "repeated by a channel"),
                ],
            ),
            12,
            8,
        )
    )
    p.append(
        g.place(
            bars(
                "Rejection reasons (24h)",
                "sort_desc(sum by (reason) (increase(intake_reports_rejected_total[1d])))",
                "{{reason}}",
            ),
            12,
            8,
        )
    )
    p.append(
        g.place(
            timeseries(
                "Report to verdict (p50, p95)",
                [
                    (
                        "histogram_quantile(0.5, sum by (le) "
                        f"(rate(intake_report_to_registered_seconds_bucket[{RATE}])))",
                        "p50",
                    ),
                    (
                        "histogram_quantile(0.95, sum by (le) "
                        f"(rate(intake_report_to_registered_seconds_bucket[{RATE}])))",
                        "p95",
                    ),
                ],
                unit="s",
                description="From the channel's reported_at to intake's verdict.",
            ),
            12,
            8,
        )
    )
    p.append(g.row("Dispatch: departments (条) and areas (块)"))
    p.append(
        g.place(
            bars(
                "Dispatched by department (24h)",
                "sort_desc(sum by (department) (increase(dispatch_cases_dispatched_total[1d])))",
                "{{department}}",
            ),
            8,
            9,
        )
    )
    p.append(
        g.place(
            timeseries(
                "Dispatches per hour, by reason",
                [
                    (
                        "sum by (reason) (increase(dispatch_cases_dispatched_total[1h]))",
                        "{{reason}}",
                    )
                ],
                stack=True,
                description="first, return (redispatched after 'not ours'), manual, rework, extension.",
            ),
            8,
            9,
        )
    )
    p.append(
        g.place(
            bars(
                "Returns ('not ours') by department (24h)",
                "sort_desc(sum by (department) (increase(dispatch_returns_total[1d])))",
                "{{department}}",
            ),
            8,
            9,
        )
    )
    p.append(
        g.place(
            stat(
                "Waiting for a human dispatcher",
                "max(dispatch_escalated_queue_length)",
                red_above=50,
                description="Alert CitycasesDispatcherQueue above 50 for 30 minutes.",
            ),
            6,
            8,
        )
    )
    p.append(
        g.place(
            timeseries(
                "Escalations per hour, by reason",
                [
                    (
                        "sum by (reason) (increase(dispatch_escalations_total[1h]))",
                        "{{reason}}",
                    )
                ],
            ),
            6,
            8,
        )
    )
    p.append(
        g.place(
            timeseries(
                "Extensions answered per day",
                [
                    (
                        "sum by (outcome) (increase(dispatch_extensions_total[1d]))",
                        "{{outcome}}",
                    )
                ],
            ),
            6,
            8,
        )
    )
    p.append(
        g.place(
            timeseries(
                "Registration to first dispatch (p95)",
                [
                    (
                        "histogram_quantile(0.95, sum by (le) "
                        f"(rate(dispatch_latency_seconds_bucket[{RATE}])))",
                        "p95",
                    )
                ],
                unit="s",
            ),
            6,
            8,
        )
    )
    return dashboard(
        "citycases-intake-dispatch",
        "citycases / Intake and dispatch",
        "Reports by channel, verdicts, rejections; dispatches by department, returns, "
        "escalations to the human dispatcher.",
        p,
        time_from="now-24h",
    )


# --------------------------------------------------------------------------- city


def supervision() -> dict[str, Any]:
    g = Layout()
    p: list[Panel] = []
    # Gauges refreshed by every supervision replica from the database: max, never sum.
    overdue = "max by (department) (supervision_overdue_cases)"
    p.append(g.row("Overdue by department"))
    p.append(
        g.place(
            stat(
                "Overdue cases now",
                f"sum({overdue})",
                description="Cases showing red, all departments.",
                red_above=1,
            ),
            6,
            9,
        )
    )
    p.append(
        g.place(
            bars(
                "Overdue now, by department",
                f"sort_desc({overdue})",
                "{{department}}",
                description="Alert CitycasesOverdueSpike when a department doubles its usual count.",
            ),
            8,
            9,
        )
    )
    p.append(
        g.place(
            timeseries(
                "Overdue cases by department",
                [(overdue, "{{department}}")],
                stack=True,
            ),
            10,
            9,
        )
    )
    p.append(
        g.place(
            timeseries(
                "Warnings and overdue flags raised, per hour",
                [
                    (
                        "sum by (light, timer) (increase(supervision_lights_total[1h]))",
                        "{{light}} ({{timer}})",
                    )
                ],
                description="timer: sign_for, handle or verify deadline.",
            ),
            12,
            8,
        )
    )
    p.append(
        g.place(
            timeseries(
                "Cases closed per day, on time or late",
                [
                    (
                        "sum by (on_time) (increase(supervision_cases_closed_total[1d]))",
                        "on time: {{on_time}}",
                    )
                ],
                stack=True,
            ),
            12,
            8,
        )
    )
    p.append(g.row("Notices"))
    p.append(
        g.place(
            stat(
                "Notices issued (24h)",
                "sum(increase(supervision_notices_issued_total[1d]))",
            ),
            6,
            8,
        )
    )
    p.append(
        g.place(
            timeseries(
                "Notices by ladder level, per day",
                [
                    (
                        "sum by (level) (increase(supervision_notices_issued_total[1d]))",
                        "level {{level}}",
                    )
                ],
                stack=True,
                description="Higher levels go further up the hierarchy.",
            ),
            18,
            8,
        )
    )
    p.append(g.row("Rework, rebounds, look-backs"))
    p.append(
        g.place(
            timeseries(
                "Rebounds per day",
                [
                    (
                        "sum by (bureau_notice) (increase(supervision_rebounds_total[1d]))",
                        "bureau-wide notice: {{bureau_notice}}",
                    )
                ],
                stack=True,
                description="Problems back at a closed case's place within the look-back window.",
            ),
            8,
            8,
        )
    )
    p.append(
        g.place(
            timeseries(
                "Rework orders per day",
                [("sum(increase(supervision_rework_orders_total[1d]))", "rework")],
                description="Ordered after a failed verification.",
            ),
            8,
            8,
        )
    )
    p.append(
        g.place(
            timeseries(
                "Look-backs due per day",
                [("sum(increase(supervision_lookbacks_due_total[1d]))", "look-backs (回头看)")],
            ),
            8,
            8,
        )
    )
    p.append(g.row("Timers"))
    p.append(
        g.place(
            timeseries(
                "Timers armed, by kind",
                [("max by (kind) (supervision_timers_armed)", "{{kind}}")],
            ),
            8,
            8,
        )
    )
    p.append(
        g.place(
            timeseries(
                "Timers fired, by kind",
                [
                    (
                        f"sum by (kind) (rate(supervision_timers_fired_total[{RATE}]))",
                        "{{kind}}",
                    )
                ],
                unit="ops",
            ),
            8,
            8,
        )
    )
    p.append(
        g.place(
            timeseries(
                "Timer firing lag (p99)",
                [
                    (
                        "histogram_quantile(0.99, sum by (kind, le) "
                        f"(rate(supervision_timer_firing_lag_seconds_bucket[{RATE}])))",
                        "{{kind}}",
                    )
                ],
                unit="s",
                threshold=60,
                description="Due instant to the commit of the firing. Alert CitycasesTimersLate above 60 s.",
            ),
            8,
            8,
        )
    )
    return dashboard(
        "citycases-supervision",
        "citycases / Overdue, notices, rebounds",
        "Deadlines chased by supervision: overdue cases by department, notices, rework, "
        "rebounds, look-backs and the timers behind them.",
        p,
        time_from="now-7d",
    )


def _label_variable(name: str, label: str, default: str) -> dict[str, Any]:
    query = f"label_values(scoring_unit_score, {label})"
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": query, "refId": name},
        "definition": query,
        "refresh": 2,
        "includeAll": False,
        "multi": False,
        "current": {"selected": True, "text": default, "value": default},
        "sort": 1,
    }


def scores() -> dict[str, Any]:
    g = Layout()
    p: list[Panel] = []
    # Gauges of the current period, exported by the scoring replica that ranked last: max.
    unit = 'unit_type="$unit_type", period_type="$period_type"'
    p.append(g.row("Ranking of the current period"))
    p.append(
        g.place(
            bars(
                "Composite score",
                f"sort_desc(max by (unit_id) (scoring_unit_score{{{unit}}}))",
                "{{unit_id}}",
                min_value=0,
                max_value=100,
                description="Departments (条) or street offices (块), best first.",
            ),
            12,
            12,
        )
    )
    p.append(
        g.place(
            table(
                "Rank (1 is best)",
                f"sort(max by (unit_id) (scoring_unit_rank{{{unit}}}))",
            ),
            12,
            12,
        )
    )
    p.append(g.row("Over time"))
    p.append(
        g.place(
            timeseries(
                "Composite score",
                [(f"max by (unit_id) (scoring_unit_score{{{unit}}})", "{{unit_id}}")],
            ),
            12,
            9,
        )
    )
    p.append(
        g.place(
            timeseries(
                "Rank",
                [(f"max by (unit_id) (scoring_unit_rank{{{unit}}})", "{{unit_id}}")],
                description="1 is best.",
            ),
            12,
            9,
        )
    )
    p.append(g.row("Rates"))
    for rate, title in (
        ("on_time_rate", "On-time rate"),
        ("closure_rate", "Closure rate"),
        ("response_rate", "Response rate"),
        ("rework_rate", "Rework rate"),
        ("satisfaction_rate", "Satisfaction rate"),
    ):
        p.append(
            g.place(
                timeseries(
                    title,
                    [
                        (
                            f'max by (unit_id) (scoring_unit_rate{{{unit}, rate="{rate}"}})',
                            "{{unit_id}}",
                        )
                    ],
                    unit="percentunit",
                ),
                8,
                8,
            )
        )
    p.append(g.row("Scoring service"))
    p.append(
        g.place(
            timeseries(
                "Scores published per hour",
                [
                    (
                        "sum by (unit_type, final) (increase(scoring_scores_published_total[1h]))",
                        "{{unit_type}} final={{final}}",
                    )
                ],
            ),
            12,
            8,
        )
    )
    p.append(
        g.place(
            timeseries(
                "Events folded into figures",
                [
                    (
                        f"sum by (type) (rate(scoring_events_aggregated_total[{RATE}]))",
                        "{{type}}",
                    )
                ],
                unit="ops",
            ),
            12,
            8,
        )
    )
    return dashboard(
        "citycases-scores",
        "citycases / Scores and rankings",
        "Composite scores, ranks and rates of departments and street offices, current period.",
        p,
        [
            _label_variable("unit_type", "unit_type", "department"),
            _label_variable("period_type", "period_type", "month"),
        ],
        time_from="now-7d",
    )


DASHBOARDS = {
    "citycases-flow.json": flow,
    "citycases-backlog-lag.json": backlog,
    "citycases-intake-dispatch.json": intake_dispatch,
    "citycases-supervision.json": supervision,
    "citycases-scores.json": scores,
}


def render() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    return {
        name: json.dumps(build(), indent=2, ensure_ascii=False) + "\n"
        for name, build in DASHBOARDS.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is stale")
    args = parser.parse_args(argv)
    stale = []
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in render().items():
        path = OUT / name
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        if args.check:
            stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if stale:
        print(f"stale: {', '.join(stale)}; run python deploy/grafana/build_dashboards.py")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
