"""Prometheus metrics of the plumbing, labelled by service; services add their own beside these."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_IN = Counter(
    "events_consumed_total", "Events handled, by type", ["service", "topic", "type"]
)
EVENTS_DUPLICATE = Counter(
    "events_duplicate_total", "Redelivered events dropped by the inbox", ["service", "topic"]
)
EVENTS_OUT = Counter(
    "events_published_total", "Events published by the outbox relay", ["service", "topic", "type"]
)
EVENTS_FAILED = Counter(
    "events_failed_total",
    "Batches or events that failed, by kind (transient, poison, handler); a batch's topic is "
    "its subscription's topics joined by '+', a poison event's the topic it came from",
    ["service", "topic", "kind"],
)
DLQ_MESSAGES = Counter(
    "dlq_messages_total", "Messages sent to a dead-letter topic", ["service", "topic"]
)
HANDLE_SECONDS = Histogram(
    "event_batch_handle_seconds",
    "Time to handle one consumed batch, transaction included; topic: the subscription's "
    "topics joined by '+'",
    ["service", "topic"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BATCH_SIZE = Histogram(
    "event_batch_size",
    "Records per consumed batch; topic: the subscription's topics joined by '+'",
    ["service", "topic"],
    buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000),
)
CONSUMER_LAG = Gauge(
    "consumer_lag_messages", "High-water mark minus next offset", ["service", "topic", "partition"]
)
INBOX_PRUNED = Counter(
    "inbox_pruned_total",
    "Inbox event ids forgotten because no copy of their event can be delivered again "
    "(shared.inbox)",
    ["service"],
)
INBOX_KEEP_SECONDS = Gauge(
    "inbox_keep_seconds",
    "How long the inbox keeps an event id, from the topics' retention; 0: every id is kept",
    ["service"],
)
OUTBOX_BACKLOG = Gauge("outbox_backlog_rows", "Outbox rows not yet published", ["service"])
OUTBOX_AGE = Gauge(
    "outbox_oldest_age_seconds", "Age of the oldest unpublished outbox row", ["service"]
)
RELAY_ERRORS = Counter("outbox_relay_errors_total", "Publish attempts that failed", ["service"])
HTTP_REFUSED = Counter(
    "http_requests_refused_total",
    "HTTP requests refused for their API key: missing or invalid (401), wrong principal (403), "
    "over the key's rate (429)",
    ["service", "status", "code"],
)
