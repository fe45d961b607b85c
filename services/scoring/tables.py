"""A period's score table for one unit type, read from the figures: what the API and publisher show.

The ranking reads only the per-unit-period figures (one row per unit), so
its cost depends on the number of units, never on the number of events.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from services.scoring import store
from services.scoring.context import ScoringContext
from services.scoring.domain.figures import COHORT, INDEX, UnitType
from services.scoring.domain.scores import (
    ScoreRow,
    ScoreTable,
    last_units,
    score_table,
    talk_due,
    with_talk,
)
from shared.events import Indicators, Rates, ScoreFlags, ScorePublished
from shared.periods import Period

if TYPE_CHECKING:
    from shared.db import Connection

#: The counts a score.published carries (the cohort, and the period's rebounds).
INDICATORS = (*COHORT, "rebounds")
RATES = ("on_time_rate", "closure_rate", "response_rate", "rework_rate", "satisfaction_rate")


def quarter_months_so_far(period: Period) -> list[Period]:
    """The months whose "last place" counts towards a talk shown with ``period``'s table."""
    if period.type == "month":
        return [m for m in period.enclosing("quarter").months() if m.first_day <= period.first_day]
    if period.type == "quarter":
        return period.months()
    return []


async def load_table(
    conn: Connection, context: ScoringContext, unit_type: UnitType, period: Period
) -> ScoreTable:
    rules = context.rules
    figures = await store.group_figures(conn, period.type, period.label, unit_type)
    table = score_table(unit_type, figures, rules)
    months = quarter_months_so_far(period) if unit_type in ("department", "area") else []
    if not months:
        return table
    lasts = []
    for month in months:
        if month == period:
            lasts.append(table.last)
        else:
            earlier = await store.group_figures(conn, "month", month.label, unit_type)
            lasts.append(last_units(unit_type, earlier, rules))
    return with_talk(table, talk_due(lasts, rules))


def score_published(
    unit_type: UnitType, period: Period, table: ScoreTable, row: ScoreRow, final: bool
) -> ScorePublished:
    assert unit_type != "district", "the district is a totals row, not a published unit"
    return ScorePublished(
        unit_type=unit_type,
        unit_id=row.unit_id,
        period_type=period.type,
        period=period.label,
        indicators=Indicators(**{name: row.figures[INDEX[name]] for name in INDICATORS}),
        rates=Rates(**{name: row.rates.get(name) for name in RATES}),
        score=row.score,
        rank=row.rank,
        ranked_units=table.ranked_units,
        band=row.band,
        flags=ScoreFlags(bottom_three=row.bottom, talk=row.talk),
        final=final,
    )


def digest(data: ScorePublished) -> str:
    """What a publication says, apart from whether it is final."""
    text = data.model_dump_json(exclude={"final"})
    return hashlib.sha256(text.encode()).hexdigest()[:32]
