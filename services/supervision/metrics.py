"""Supervision's Prometheus metrics, beside the plumbing's (labels stay bounded: kinds,
levels, departments — never a case, a cell or a place)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

TIMERS_ARMED = Gauge(
    "supervision_timers_armed", "Timers armed now, by kind (refreshed periodically)", ["kind"]
)
TIMERS_FIRED = Counter("supervision_timers_fired_total", "Timers fired, by kind", ["kind"])
FIRING_LAG = Histogram(
    "supervision_timer_firing_lag_seconds",
    "Real seconds from a timer's due instant to the commit of its firing (its settle included)",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
FIRING_BATCH = Histogram(
    "supervision_timer_firing_batch_size",
    "Timers claimed per firing transaction",
    buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500),
)
FIRING_FAILURES = Counter(
    "supervision_timer_firing_failures_total",
    "Cases whose due timers could not be fired (a bug: see the error log); their timers dropped",
)
OVERDUE_CASES = Gauge(
    "supervision_overdue_cases",
    "Cases showing red now, by department (refreshed periodically)",
    ["department"],
)
LIGHTS = Counter(
    "supervision_lights_total", "Warnings and overdue flags raised, by timer", ["light", "timer"]
)
NOTICES = Counter("supervision_notices_issued_total", "Notices issued, by ladder level", ["level"])
REBOUNDS = Counter(
    "supervision_rebounds_total", "Bounce-backs raised, by bureau-wide notice", ["bureau_notice"]
)
CLOSED = Counter("supervision_cases_closed_total", "Cases closed, by on-time flag", ["on_time"])
REWORK = Counter("supervision_rework_orders_total", "Rework orders after failed verification")
LOOKBACKS = Counter("supervision_lookbacks_due_total", "Look-backs (回头看) due")
