"""Settings of the supervision service, from the environment."""

from __future__ import annotations

from functools import partial

from pydantic import Field

from shared.settings import KafkaSettings, ServiceSettings, kafka_settings_with_batch

#: Records per consumed batch unless KAFKA_MAX_BATCH says otherwise. Its one consumer folds
#: three topics into a case row and its timers: a case's events that meet in one batch are
#: saved once, and a batch costs the same few statements whatever its size (as scoring's).
SUPERVISION_MAX_BATCH = 4000


class Settings(ServiceSettings):
    service_name: str = "supervision"
    http_port: int = 8082
    kafka: KafkaSettings = Field(
        default_factory=partial(kafka_settings_with_batch, SUPERVISION_MAX_BATCH)
    )
    timer_batch: int = Field(default=1000, ge=1, description="timers claimed per firing")
    timer_workers: int = Field(
        default=2, ge=1, description="firing transactions in flight while working off a backlog"
    )
    timer_recheck_seconds: float = Field(
        default=2.0,
        gt=0,
        description="longest real sleep between looks at the timers table (fail-over bound)",
    )
    timer_settle_ms: int | None = Field(
        default=None,
        ge=0,
        description="real milliseconds a timer waits past its due instant before it fires, so "
        "that an action taken just before the deadline and still on its way (outbox relay, "
        "broker, this service's fetch) reaches the case first and disarms it; default: the "
        "follower fetch wait (how long such an event may wait here to be fetched) plus 100 ms, "
        "and the follower settle too when timers do not wait for reads",
    )
    timer_wait_for_reads: bool = Field(
        default=True,
        description="a timer also waits until the consumer has applied everything the broker "
        "held just after its due instant, so that after a restart or during a backlog the "
        "sign-fors of the missed time are read before their deadlines fire",
    )
    timer_read_wait_max_seconds: float = Field(
        default=900.0,
        gt=0,
        description="real seconds the timers wait for a consumer that does not catch up "
        "before they fire without it (a stuck partition must not stop every deadline)",
    )
    timer_contention_pause_seconds: float = Field(
        default=0.05, gt=0, description="pause when due timers are held by another instance"
    )
    gauge_refresh_seconds: float = Field(
        default=15.0, gt=0, description="how often the armed-timer and overdue gauges are counted"
    )

    @property
    def timer_settle_seconds(self) -> float:
        """``timer_settle_ms`` in seconds, or its default from the follower fetch wait.

        Derived, not stored: the follower wait it follows has already shrunk for a scaled
        clock (``ServiceSettings``), and a copy of these settings derives it again.
        """
        if self.timer_settle_ms is not None:
            return self.timer_settle_ms / 1000
        held = self.kafka.follower_fetch_max_wait_ms
        if not self.timer_wait_for_reads:
            # Nothing else then covers a busy batch settling (shared.consumer): with reads
            # waited for, a timer waits until what the broker held at its due instant is
            # applied, settled or not.
            held += self.kafka.follower_settle_ms
        return (held + SETTLE_MARGIN_MS) / 1000

    @property
    def timer_caught_up_margin_seconds(self) -> float | None:
        """How long after a due instant the consumer must have read to, or None: no waiting.

        A fact sent before the deadline reaches the broker within the outbox hand-off.
        """
        return SETTLE_MARGIN_MS / 1000 if self.timer_wait_for_reads else None


#: Beyond the follower fetch wait: the outbox relay's hand-off and the broker (a few ms each).
SETTLE_MARGIN_MS = 100
