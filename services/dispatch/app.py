"""Wiring of the dispatch service: its schema, migrations, subscriptions and HTTP app."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from fastapi import FastAPI

from services.dispatch import api, metrics, store
from services.dispatch.domain.cases import Rulebook
from services.dispatch.handlers import batch_handler
from services.dispatch.settings import Settings
from shared.reference import load_reference
from shared.runtime import ServiceRuntime, Subscription

SCHEMA = "dispatch"
MIGRATIONS = Path(__file__).parent / "migrations"
#: Topics dispatch reads: ``cases`` on the forward path, the others as a follower.
TOPICS = ("cases", "feedback", "supervision")
FOLLOWED = TOPICS[1:]


@dataclass
class DispatchRuntime(ServiceRuntime):
    """The runtime with the city's rules, read when the service starts, not when it is built."""

    rulebook: Rulebook | None = None

    @property
    def rules(self) -> Rulebook:
        assert self.rulebook is not None, "dispatch not started: no rules loaded"
        return self.rulebook

    def now(self) -> datetime:
        assert self.clock is not None
        return self.clock.now()

    async def start(self) -> None:
        # Broken reference data stops start-up here, naming file, record and field,
        # before any event could be dead-lettered for want of a rule.
        directory = self.settings.reference_data_dir
        self.rulebook = Rulebook.of(load_reference(Path(directory) if directory else None))
        await super().start()
        async with self.db.acquire() as conn:
            metrics.QUEUE_LENGTH.set(await store.queue_length(conn))


def build(settings: Settings | None = None) -> ServiceRuntime:
    settings = settings or Settings()
    app = FastAPI(
        title="dispatch",
        description="Routes every case to its department (条) and area (块), starts its clocks, "
        "walks returns through the candidates and queues what no rule can place for a human "
        "dispatcher.",
    )
    runtime = DispatchRuntime(settings=settings, schema=SCHEMA, migrations_dir=MIGRATIONS, app=app)
    handler = batch_handler(runtime)
    runtime.subscriptions = [
        # A registered case reaching its department is the loop's forward path, in a group of
        # its own so nothing else holds it up; returns, rework and escalations follow the
        # feedback and supervision topics, in one consumer (each fetch stream costs the broker).
        Subscription("cases", handler, group_suffix=".cases"),
        Subscription(
            FOLLOWED, handler, group_suffix=".followers", follower=True, adopts_topic_groups=True
        ),
    ]
    api.install(app, runtime)
    return runtime
