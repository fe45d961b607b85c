"""How long the inbox keeps an event id (shared.inbox.inbox_keep): the pure decision."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from shared.inbox import MARGIN, TopicRetention, inbox_keep, record_lifetime

DAY_MS = 86_400_000
ROOT = Path(__file__).resolve().parents[2]


def topic(name: str, days: float | None, segment_days: float | None = 7, policy=None):
    return TopicRetention(
        topic=name,
        retention_ms=None if days is None else int(days * DAY_MS),
        segment_ms=None if segment_days is None else int(segment_days * DAY_MS),
        cleanup_policy=policy,
    )


def test_ids_outlive_the_longest_record_by_a_margin():
    decision = inbox_keep(timedelta(days=1), [topic("cases", 7), topic("cases.dlq", 30, 1)])
    assert decision.keep == timedelta(days=31) + MARGIN
    assert "retention.ms + segment.ms" in decision.reason


def test_the_setting_lengthens_but_never_shortens():
    assert inbox_keep(timedelta(days=90), [topic("cases", 7)]).keep == timedelta(days=90)
    assert inbox_keep(timedelta(days=90), [topic("cases", 7)]).reason == "INBOX_RETENTION_DAYS"
    short = inbox_keep(timedelta(hours=1), [topic("cases", 7)])
    assert short.keep == timedelta(days=14) + MARGIN


@pytest.mark.parametrize(
    ("kept_forever", "says"),
    [
        (topic("cases", -1 / DAY_MS), "retention.ms -1"),
        (topic("cases", 7, policy="compact,delete"), "compacted"),
        (topic("cases", None), "no retention.ms"),
        (topic("cases", 7, segment_days=None), "no retention.ms and segment.ms"),
    ],
)
def test_a_topic_that_may_keep_a_record_forever_keeps_every_id(kept_forever, says):
    decision = inbox_keep(timedelta(days=30), [topic("assignments", 7), kept_forever])
    assert decision.keep is None
    assert "topic cases" in decision.reason and says in decision.reason


def test_no_topic_no_bound():
    assert inbox_keep(timedelta(days=30), []).keep is None


def test_record_lifetime_is_retention_plus_a_segment():
    assert record_lifetime(topic("cases", 7, 1)) == timedelta(days=8)


def test_the_shipped_topics_keep_ids_past_every_retention_they_declare():
    """deploy/k8s declares each topic's retention; Kafka's default segment.ms is 7 days. The
    inbox then keeps ids a day past the longest (the dead-letter topics' 30 days)."""
    docs = yaml.safe_load_all((ROOT / "deploy/k8s/strimzi/topics.yaml").read_text())
    topics = []
    for doc in docs:
        if doc is None or doc["kind"] != "KafkaTopic":
            continue
        config = doc["spec"].get("config", {})
        topics.append(
            TopicRetention(
                topic=doc["spec"]["topicName"],
                retention_ms=int(config["retention.ms"]),
                segment_ms=int(config.get("segment.ms", 7 * DAY_MS)),
                cleanup_policy=config.get("cleanup.policy"),
            )
        )
    assert len(topics) >= 12
    decision = inbox_keep(timedelta(days=30), topics)
    longest = max(t.retention_ms + t.segment_ms for t in topics)  # type: ignore[operator]
    assert decision.keep == timedelta(milliseconds=longest) + MARGIN
    assert decision.keep >= timedelta(days=38)
