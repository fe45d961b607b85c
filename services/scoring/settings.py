"""Settings of the scoring service, from the environment."""

from __future__ import annotations

from pydantic import Field

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = "scoring"
    http_port: int = 8083
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
