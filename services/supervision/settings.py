"""Settings of the supervision service, from the environment."""

from __future__ import annotations

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = "supervision"
    http_port: int = 8082
