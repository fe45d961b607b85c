"""Settings of the dispatch service, from the environment."""

from __future__ import annotations

from shared.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = "dispatch"
    http_port: int = 8081
