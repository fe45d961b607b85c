"""Wiring of the supervision service: its schema, migrations, subscriptions and HTTP app."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.supervision.settings import Settings
from shared.runtime import ServiceRuntime

SCHEMA = "supervision"
MIGRATIONS = Path(__file__).parent / "migrations"


def build(settings: Settings | None = None) -> ServiceRuntime:
    settings = settings or Settings()
    return ServiceRuntime(
        settings=settings,
        schema=SCHEMA,
        migrations_dir=MIGRATIONS,
        subscriptions=[],
        app=FastAPI(title="supervision"),
    )
