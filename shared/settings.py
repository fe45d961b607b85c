"""Settings every service reads from its environment (pydantic-settings).

A service subclasses :class:`ServiceSettings` to add its own; names are the
environment variables, upper-cased.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class KafkaSettings(BaseSettings):
    """How to reach the broker; security is configuration (SASL/SCRAM, TLS), never code."""

    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="ignore")

    bootstrap_servers: str = "127.0.0.1:9092"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    # Apache Kafka supports the idempotent producer; the development broker does not.
    idempotence: bool = True
    # Development convenience: create the registry's topics at start. In production
    # topics are created by operators (partitions, replication, retention are theirs).
    create_topics: bool = False
    session_timeout_ms: int = Field(default=10_000, ge=1_000)
    heartbeat_interval_ms: int = Field(default=3_000, ge=100)
    linger_ms: int = Field(default=5, ge=0)
    max_batch: int = Field(default=500, ge=1, description="records per consumed batch")
    batch_timeout_ms: int = Field(default=50, ge=1)
    # How long the broker may hold a fetch open waiting for data: a floor under
    # latency when traffic is thin (aiokafka's 500 ms default dominated p99).
    fetch_max_wait_ms: int = Field(default=100, ge=1)


def kafka_settings_with_batch(max_batch: int) -> KafkaSettings:
    """The environment's Kafka settings, with ``max_batch`` unless KAFKA_MAX_BATCH is set.

    For a service whose batch costs the same few statements whatever its
    size, so that it takes bigger batches than the shared default.
    """
    kafka = KafkaSettings()
    if "max_batch" in kafka.model_fields_set:
        return kafka
    return kafka.model_copy(update={"max_batch": max_batch})


class ServiceSettings(BaseSettings):
    """Common to every service."""

    model_config = SettingsConfigDict(extra="ignore")

    service_name: str = "service"
    database_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    # Defaults to the service's own schema; tests give each run its own.
    db_schema: str | None = None
    db_pool_min: int = Field(default=1, ge=1)
    db_pool_max: int = Field(default=10, ge=1)
    topic_prefix: str = ""
    http_host: str = "0.0.0.0"
    http_port: int = 8080
    clock_scale: float = Field(default=1.0, gt=0)
    clock_start: str | None = Field(
        default=None, description="ISO instant the scaled clock starts from (default: now)"
    )
    clock_anchor: float | None = Field(
        default=None,
        description="Unix time at which the clock reads CLOCK_START (shared by processes)",
    )
    reference_data_dir: str | None = None
    log_level: str = "INFO"
    relay_batch: int = Field(default=500, ge=1)
    relay_poll_seconds: float = Field(default=1.0, gt=0)
    retry_max_backoff_seconds: float = Field(default=5.0, gt=0)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
