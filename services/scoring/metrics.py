"""Scoring's Prometheus metrics.

Scores and rates are labelled by department or street office and period type
only — never by grid cell, community or period label — so the number of
series stays bounded as the city and the calendar grow.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

EVENTS_AGGREGATED = Counter(
    "scoring_events_aggregated_total", "Events folded into case facts and figures", ["type"]
)
FIGURE_ROWS = Counter(
    "scoring_figure_rows_updated_total", "Unit-period figure rows changed by consumed events"
)
SCORES_PUBLISHED = Counter(
    "scoring_scores_published_total", "score.published events emitted", ["unit_type", "final"]
)
UNIT_SCORE = Gauge(
    "scoring_unit_score",
    "Composite score of a department or street office in the current period",
    ["unit_type", "unit_id", "period_type"],
)
UNIT_RATE = Gauge(
    "scoring_unit_rate",
    "A rate (fraction) of a department or street office in the current period",
    ["unit_type", "unit_id", "period_type", "rate"],
)
UNIT_RANK = Gauge(
    "scoring_unit_rank",
    "Rank of a department or street office in the current period (1 is best)",
    ["unit_type", "unit_id", "period_type"],
)
