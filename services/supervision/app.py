"""Wiring of the supervision service: its schema, migrations, subscriptions, scheduler and HTTP app."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from fastapi import FastAPI

from services.supervision import metrics, store
from services.supervision.api import add_routes
from services.supervision.domain.timers import TIMER_NAMES
from services.supervision.handlers import Supervision
from services.supervision.scheduler import TimerScheduler
from services.supervision.settings import Settings
from shared.clock import Clock
from shared.runtime import Background, ServiceRuntime, Subscription
from shared.settings import ServiceSettings

SCHEMA = "supervision"
MIGRATIONS = Path(__file__).parent / "migrations"
#: The topics supervision follows; one handler folds them all.
TOPICS = ("cases", "assignments", "feedback")

log = logging.getLogger(__name__)


def build(settings: ServiceSettings | None = None, clock: Clock | None = None) -> ServiceRuntime:
    """The service, built without I/O; ``clock`` replaces the settings' clock (tests, simulation)."""
    return build_with_scheduler(settings, clock)[0]


def build_with_scheduler(
    settings: ServiceSettings | None = None, clock: Clock | None = None
) -> tuple[ServiceRuntime, TimerScheduler]:
    """The service and its timer scheduler, for those who watch the scheduler itself."""
    if settings is None:
        settings = Settings()
    elif not isinstance(settings, Settings):
        settings = Settings.model_validate(settings.model_dump())
    supervision = Supervision(reference_dir=settings.reference_data_dir)
    scheduler = TimerScheduler(
        supervision,
        batch=settings.timer_batch,
        workers=settings.timer_workers,
        recheck_seconds=settings.timer_recheck_seconds,
        settle_seconds=settings.timer_settle_seconds,
        caught_up_margin_seconds=settings.timer_caught_up_margin_seconds,
        caught_up_max_hold_seconds=settings.timer_read_wait_max_seconds,
        contention_pause_seconds=settings.timer_contention_pause_seconds,
        max_backoff_seconds=settings.retry_max_backoff_seconds,
    )
    supervision.on_armed = scheduler.armed
    app = FastAPI(
        title="supervision",
        description="Deadline timers, warnings, overdue notices, verification and closing, "
        "bounce-backs and look-backs of city cases.",
    )
    runtime = ServiceRuntime(
        settings=settings,
        schema=SCHEMA,
        migrations_dir=MIGRATIONS,
        # One consumer on all three topics, in the service's own group: a case is locked,
        # folded and saved once for the events of all of them in a batch, and the group
        # rebalances once when an instance joins. A follower: the first deadline is hours
        # away, so a timer armed half a second later changes nothing, and bigger batches
        # cost less.
        subscriptions=[
            Subscription(TOPICS, supervision.handle, follower=True, adopts_topic_groups=True)
        ],
        app=app,
        background=[scheduler.run, _gauges(settings.gauge_refresh_seconds)],
        clock=clock,
        reads=scheduler if scheduler.waits_for_reads else None,
    )
    add_routes(app, runtime)
    return runtime, scheduler


def _gauges(every_seconds: float) -> Background:
    async def refresh_gauges(runtime: ServiceRuntime) -> None:
        """Count armed timers by kind and overdue cases by department, now and then."""
        departments: set[str] = set()
        while True:
            try:
                async with runtime.db.acquire() as conn:
                    kinds = await store.timers_by_kind(conn)
                    overdue = await store.overdue_by_department(conn)
                for kind in TIMER_NAMES:
                    metrics.TIMERS_ARMED.labels(kind).set(kinds.get(kind, 0))
                departments |= overdue.keys()
                for department in departments:
                    metrics.OVERDUE_CASES.labels(department).set(overdue.get(department, 0))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("could not refresh the supervision gauges: %r", exc)
            await asyncio.sleep(every_seconds)

    return refresh_gauges
