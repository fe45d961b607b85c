"""Wiring of the intake service: its schema, migrations, subscriptions and HTTP app.

Two subscriptions, each its own consumer group so a backlog on one never holds
up the other: ``reports`` (registration, the forward path) and ``assignments``,
``feedback``, ``supervision`` together (the case read model, a follower).
"""

from __future__ import annotations

from pathlib import Path

from services.intake.api import body_too_large, create_app
from services.intake.handlers import Intake
from services.intake.settings import Settings
from shared.runtime import ServiceRuntime, Subscription

SCHEMA = "intake"
MIGRATIONS = Path(__file__).parent / "migrations"
READ_MODEL_TOPICS = ("assignments", "feedback", "supervision")


class IntakeRuntime(ServiceRuntime):
    """The runtime, plus what intake needs before its first message: its reference data."""

    intake: Intake

    async def start(self) -> None:
        # Before the consumers start: registration needs the catalogue and the grid.
        self.intake.load_reference()
        await super().start()


def build(settings: Settings | None = None) -> ServiceRuntime:
    settings = settings or Settings()
    intake = Intake(settings)
    subscriptions = [
        Subscription("reports", intake.on_reports),
        # The read model follows the loop; nothing downstream waits on it. One consumer for
        # its three topics: each fetch stream costs the broker, busy or idle.
        Subscription(
            READ_MODEL_TOPICS,
            intake.on_case_events,
            group_suffix=".followers",
            follower=True,
            adopts_topic_groups=True,
        ),
    ]
    runtime = IntakeRuntime(
        settings=settings,
        schema=SCHEMA,
        migrations_dir=MIGRATIONS,
        subscriptions=subscriptions,
        app=create_app(intake),
        background=[intake.prune_masters_forever],
        body_too_large=body_too_large,
    )
    runtime.intake = intake
    intake.runtime = runtime
    return runtime
