"""Settings of the intake service, from the environment."""

from __future__ import annotations

from functools import partial

from pydantic import Field, SecretStr

from shared.settings import KafkaSettings, ServiceSettings, kafka_settings_with_batch

#: Records per consumed batch unless KAFKA_MAX_BATCH says otherwise. Registration costs the
#: same few statements per batch whatever its size, so intake takes bigger batches than the
#: shared default.
INTAKE_MAX_BATCH = 1000


class Settings(ServiceSettings):
    service_name: str = "intake"
    http_port: int = 8080
    kafka: KafkaSettings = Field(
        default_factory=partial(kafka_settings_with_batch, INTAKE_MAX_BATCH)
    )
    intake_reporter_key: SecretStr = Field(
        default=SecretStr("intake-development-pseudonym-key"),
        description="secret of the keyed hash that turns a reporter's phone into reporter_ref",
    )
