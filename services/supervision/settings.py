"""Settings of the supervision service, from the environment."""

from __future__ import annotations

from pydantic import Field

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = "supervision"
    http_port: int = 8082
    timer_batch: int = Field(default=1000, ge=1, description="timers claimed per firing")
    timer_workers: int = Field(
        default=2, ge=1, description="firing transactions in flight while working off a backlog"
    )
    timer_recheck_seconds: float = Field(
        default=2.0,
        gt=0,
        description="longest real sleep between looks at the timers table (fail-over bound)",
    )
    timer_contention_pause_seconds: float = Field(
        default=0.05, gt=0, description="pause when due timers are held by another instance"
    )
    gauge_refresh_seconds: float = Field(
        default=15.0, gt=0, description="how often the armed-timer and overdue gauges are counted"
    )
