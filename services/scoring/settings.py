"""Settings of the scoring service, from the environment."""

from __future__ import annotations

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = "scoring"
    http_port: int = 8083
