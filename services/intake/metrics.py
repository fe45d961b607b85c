"""Intake's Prometheus metrics, beside the plumbing's (labels are bounded: channel, path, reason)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

#: How a report reached intake: the ``reports`` topic, the native JSON API, Open311.
PATHS = ("kafka", "http", "open311")

REPORTS_IN = Counter(
    "intake_reports_received_total", "Reports received, by channel and path", ["channel", "path"]
)
CASES_REGISTERED = Counter(
    "intake_cases_registered_total", "Reports filed as new cases", ["channel", "path"]
)
CASES_MERGED = Counter(
    "intake_cases_merged_total", "Reports merged into an existing case as duplicates", ["channel"]
)
REPORTS_REPEATED = Counter(
    "intake_reports_repeated_total",
    "Reports a channel sent again (same channel and external id): the same case came back",
    ["channel"],
)
REPORTS_REJECTED = Counter(
    "intake_reports_rejected_total", "Rejection reasons given, by reason code", ["reason"]
)
REPORT_TO_REGISTERED = Histogram(
    "intake_report_to_registered_seconds",
    "From the channel's reported_at to intake's verdict",
    ["path"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
)
REGISTRATION_SECONDS = Histogram(
    "intake_registration_handling_seconds",
    "Time to decide and store one unit of registration (a consumed batch or one request)",
    ["path"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
FEEDBACK_POSTED = Counter(
    "intake_feedback_posted_total", "Feedback events published from the HTTP API", ["type"]
)
