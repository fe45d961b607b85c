"""Wiring of the intake service: its schema, migrations, subscriptions and HTTP app.

Four subscriptions, each its own consumer group so a backlog on one topic
never holds up another: ``reports`` (registration) and ``assignments``,
``feedback``, ``supervision`` (the case read model).
"""

from __future__ import annotations

from pathlib import Path

from services.intake import store
from services.intake.api import body_too_large, create_app
from services.intake.handlers import Intake
from services.intake.settings import Settings
from shared.runtime import ServiceRuntime, Subscription

SCHEMA = "intake"
MIGRATIONS = Path(__file__).parent / "migrations"
READ_MODEL_TOPICS = ("assignments", "feedback", "supervision")


class IntakeRuntime(ServiceRuntime):
    """The runtime, plus what intake needs before its first message: reference data and dev keys."""

    intake: Intake

    async def start(self) -> None:
        # Before the consumers start: registration needs the catalogue and the grid.
        self.intake.load_reference()
        await super().start()
        keys = self.intake.settings.dev_api_keys
        unknown = sorted({c for c, _ in keys if self.intake.ref.channel(c) is None})
        if unknown:
            raise ValueError(f"INTAKE_API_KEYS names channels the city does not have: {unknown}")
        if keys:
            async with self.db.acquire() as conn:
                for channel, key in keys:
                    await store.upsert_api_key(conn, key, channel, label="INTAKE_API_KEYS")


def build(settings: Settings | None = None) -> ServiceRuntime:
    settings = settings or Settings()
    intake = Intake(settings)
    subscriptions = [Subscription("reports", intake.on_reports)]
    subscriptions += [
        Subscription(topic, intake.on_case_events, group_suffix=f".{topic}")
        for topic in READ_MODEL_TOPICS
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
