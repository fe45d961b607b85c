"""Settings of the intake service, from the environment."""

from __future__ import annotations

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = "intake"
    http_port: int = 8080
