"""Settings of the intake service, from the environment."""

from __future__ import annotations

import re

from pydantic import Field, SecretStr, field_validator

from shared.settings import KafkaSettings, ServiceSettings, kafka_settings_with_batch

#: Records per consumed batch unless KAFKA_MAX_BATCH says otherwise.
INTAKE_MAX_BATCH = 1000

# The contract's spelling of a channel id; whether the city has it is the reference data's say.
_CHANNEL = re.compile(r"^[a-z0-9][a-z0-9_]{1,31}$")


def parse_api_keys(spec: str) -> list[tuple[str, str]]:
    """``"open311:devkey,citizen_app:key2"`` -> ``[("open311", "devkey"), ("citizen_app", "key2")]``."""
    pairs = []
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        channel, sep, key = item.partition(":")
        channel, key = channel.strip(), key.strip()
        if not sep or not key:
            raise ValueError(f"{item!r} is not channel:key")
        if not _CHANNEL.match(channel):
            raise ValueError(f"{channel!r} is not a channel id")
        pairs.append((channel, key))
    return pairs


def _kafka() -> KafkaSettings:
    # Registration costs the same few statements per batch whatever its size, so intake
    # takes bigger batches than the shared default; KAFKA_MAX_BATCH still decides when set.
    return kafka_settings_with_batch(INTAKE_MAX_BATCH)


class Settings(ServiceSettings):
    service_name: str = "intake"
    http_port: int = 8080
    kafka: KafkaSettings = Field(default_factory=_kafka)
    intake_api_keys: str = Field(
        default="",
        description="development keys, 'channel:key,...', hashed and stored at start; "
        "production keys are made with `python -m services.intake.keys create`",
    )
    intake_reporter_key: SecretStr = Field(
        default=SecretStr("intake-development-pseudonym-key"),
        description="secret of the keyed hash that turns a reporter's phone into reporter_ref",
    )

    @field_validator("intake_api_keys")
    @classmethod
    def _keys_parse(cls, spec: str) -> str:
        parse_api_keys(spec)
        return spec

    @property
    def dev_api_keys(self) -> list[tuple[str, str]]:
        return parse_api_keys(self.intake_api_keys)
