"""Wiring of the scoring service: its schema, migrations, subscriptions, publisher and HTTP app."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI

from services.scoring.api import add_routes
from services.scoring.context import ScoringContext
from services.scoring.handlers import ScoringHandler
from services.scoring.publisher import Publisher
from services.scoring.settings import Settings
from shared.reference import ReferenceData
from shared.runtime import ServiceRuntime, Subscription

SCHEMA = "scoring"
MIGRATIONS = Path(__file__).parent / "migrations"
#: The topics scoring follows; one handler folds them all.
TOPICS = ("cases", "assignments", "feedback", "supervision")


@dataclass
class ScoringRuntime(ServiceRuntime):
    """The runtime, reading the city's reference data when it starts, not when it is built."""

    context: ScoringContext | None = field(default=None, repr=False)

    async def start(self) -> None:
        # Broken reference data stops start-up here, naming file, record and field,
        # before any event could be dead-lettered for want of a grid cell or a weight.
        if self.context is not None:
            _ = self.context.places
        await super().start()


def build(
    settings: Settings | None = None, reference: ReferenceData | None = None
) -> ServiceRuntime:
    settings = settings or Settings()
    context = ScoringContext(settings, reference)
    handler = ScoringHandler(context)
    app = FastAPI(
        title="scoring",
        description="Indicators, composite scores, bands and rankings per unit and period "
        "(DOMAIN.md §6), and the daily (日报备) and weekly (周调度) reports.",
    )
    runtime = ScoringRuntime(
        settings=settings,
        schema=SCHEMA,
        migrations_dir=MIGRATIONS,
        # One consumer on every topic, in the service's own group: a case's registration and
        # dispatch (two topics) often meet in one batch, so its fact is loaded, folded and
        # saved once for both, and the group rebalances once when an instance joins.
        # A follower: scores are read by the day.
        subscriptions=[Subscription(TOPICS, handler, follower=True, adopts_topic_groups=True)],
        app=app,
        background=[Publisher(context).run],
        context=context,
    )
    add_routes(app, runtime, context)
    return runtime
