"""Settings of the scoring service, from the environment."""

from __future__ import annotations

from functools import partial

from pydantic import Field

from shared.settings import KafkaSettings, ServiceSettings, kafka_settings_with_batch

#: Records per consumed batch unless KAFKA_MAX_BATCH says otherwise. A batch costs one
#: statement per table whatever its size, and events of one batch that touch the same
#: unit-period rows add to them once: 4,000 measured ~25% faster than the default 500.
SCORING_MAX_BATCH = 4000


class Settings(ServiceSettings):
    service_name: str = "scoring"
    http_port: int = 8083
    kafka: KafkaSettings = Field(
        default_factory=partial(kafka_settings_with_batch, SCORING_MAX_BATCH)
    )
    # A unit's score.published goes out at most once per this many seconds of the
    # runtime clock; changes in between are gathered into the next one.
    publish_interval_seconds: float = Field(default=60.0, ge=0)
    # Real seconds between the publisher's looks at what changed.
    publish_poll_seconds: float = Field(default=1.0, gt=0)
    # At most this many scores per look (whole tables); the rest waits for the next look.
    publish_max_per_look: int = Field(default=1000, ge=1)
    # Runtime-clock seconds after a period ends before its final scores go out,
    # so late events of its last minutes can still count.
    final_grace_seconds: float = Field(default=0.0, ge=0)
