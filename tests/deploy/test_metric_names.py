"""Every metric an alert rule or a dashboard queries exists on some service's /metrics."""

from __future__ import annotations

import pytest

from tests.deploy.promql import (
    alert_expressions,
    assert_metrics_exist,
    dashboard_expressions,
    known_metric_names,
    metric_names,
)


@pytest.fixture(scope="module")
def known() -> set[str]:
    return known_metric_names()


def test_plumbing_metrics_are_known(known):
    for name in (
        "events_consumed_total",
        "events_published_total",
        "dlq_messages_total",
        "consumer_lag_messages",
        "outbox_oldest_age_seconds",
        "event_batch_handle_seconds_bucket",
        "event_batch_size_count",
        "up",
    ):
        assert name in known, name
    # Bare counter and histogram family names are not series: a query on them finds nothing.
    assert "events_consumed" not in known
    assert "event_batch_handle_seconds" not in known


def test_alert_rules_use_only_existing_metrics(known):
    exprs = alert_expressions()
    assert len(exprs) >= 5
    assert_metrics_exist(exprs, known)


def test_dashboards_use_only_existing_metrics(known):
    exprs = dashboard_expressions()
    assert len(exprs) >= 10
    assert_metrics_exist(exprs, known)


def test_a_made_up_metric_fails_the_check(known):
    """The same checker, fed a rule with a name no service exposes, must fail."""
    exprs = {
        **alert_expressions(),
        "bogus rule": 'sum by (service) (rate(citycases_bogus_events_total{service="x"}[5m])) > 0',
        "bogus panel": "histogram_quantile(0.9, sum by (le) (rate(event_batch_handle_secs_bucket[5m])))",
    }
    with pytest.raises(AssertionError) as failure:
        assert_metrics_exist(exprs, known)
    message = str(failure.value)
    assert "citycases_bogus_events_total" in message
    assert "event_batch_handle_secs_bucket" in message
    assert "alerts.yml" not in message, "only the bogus expressions fail"


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('up{job="citycases"} == 0', {"up"}),
        (
            "sum by (service, topic) (deriv(consumer_lag_messages[15m])) > 1 and on (service, topic)"
            " sum by (service, topic) (consumer_lag_messages) > 1000",
            {"consumer_lag_messages"},
        ),
        (
            'histogram_quantile(0.99, sum by (service, le) (rate(event_batch_handle_seconds_bucket{service=~"$service"}[$__rate_interval])))',
            {"event_batch_handle_seconds_bucket"},
        ),
        (
            'sum(increase(events_published_total{type="case.overdue"}[1d] offset 1h)) / 24',
            {"events_published_total"},
        ),
        ("sum(increase(dlq_messages_total[1h])) or vector(0)", {"dlq_messages_total"}),
        ("outbox_backlog_rows", {"outbox_backlog_rows"}),
        ("label_values(outbox_backlog_rows, service)", {"outbox_backlog_rows"}),
        ('{__name__="outbox_oldest_age_seconds", service="intake"}', {"outbox_oldest_age_seconds"}),
        ("topk(5, sort_desc(max without (instance) (a_metric:rate5m)))", {"a_metric:rate5m"}),
        ("rate(x_total[5m:30s]) * 1e3 > bool 2", {"x_total"}),
    ],
)
def test_the_parser_finds_metric_names(expr, names):
    assert metric_names(expr) == names
