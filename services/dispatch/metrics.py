"""Dispatch's own Prometheus metrics, beside the plumbing's (shared.metrics).

Labels stay bounded: departments, reasons and event types, never a case or a cell.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache

from prometheus_client import Counter, Gauge, Histogram

from shared.events import (
    CaseDispatched,
    CaseEscalated,
    CaseExtensionRefused,
    CaseRedispatched,
    EventData,
)

DISPATCHED = Counter(
    "dispatch_cases_dispatched_total",
    "Dispatches by lead department and reason (first, return, manual, rework, extension)",
    ["department", "reason"],
)
RETURNS = Counter(
    "dispatch_returns_total", "Returns (not ours) applied, by returning department", ["department"]
)
ESCALATIONS = Counter(
    "dispatch_escalations_total",
    "Cases sent to the human dispatcher's queue, by reason",
    ["reason"],
)
EXTENSIONS = Counter(
    "dispatch_extensions_total", "Extension requests answered, granted or refused", ["outcome"]
)
QUEUE_LENGTH = Gauge("dispatch_escalated_queue_length", "Cases waiting for a human dispatcher")
LATENCY = Histogram(
    "dispatch_latency_seconds",
    "From a case's registration (event time) to its first dispatch being decided",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
)
PARKED = Counter(
    "dispatch_events_parked_total",
    "Events that arrived before their case and wait for it, by type",
    ["type"],
)
IGNORED = Counter(
    "dispatch_events_ignored_total",
    "Events that changed nothing (stale, or a copy of a fact already applied), by type",
    ["type"],
)


@lru_cache(maxsize=1024)
def _dispatched(department: str, reason: str) -> Counter:
    # labels() takes a lock and builds a key each call; at thousands of dispatches a
    # second the children are worth keeping (departments and reasons are few).
    return DISPATCHED.labels(department, reason)


def observe(events: Iterable[EventData], registered_at: datetime, now: datetime) -> None:
    """Count what a decision published; ``now`` on the service's clock, for the latency."""
    for event in events:
        if isinstance(event, CaseDispatched):
            _dispatched(event.department, "first").inc()
            LATENCY.observe(max(0.0, (now - registered_at).total_seconds()))
        elif isinstance(event, CaseRedispatched):
            _dispatched(event.department, event.reason).inc()
            if event.reason == "extension":
                EXTENSIONS.labels("granted").inc()
        elif isinstance(event, CaseEscalated):
            ESCALATIONS.labels(event.reason).inc()
        elif isinstance(event, CaseExtensionRefused):
            EXTENSIONS.labels("refused").inc()
