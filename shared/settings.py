"""Settings every service reads from its environment (pydantic-settings).

A service subclasses :class:`ServiceSettings` to add its own; names are the
environment variables, upper-cased.
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.apikeys import Principal, parse_dev_keys


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
    # How long the broker may hold a fetch open waiting for data, for the consumers on a
    # case's forward path (a report becoming a case, a case reaching its department): a
    # floor under their latency when traffic is thin (aiokafka's 500 ms default dominated
    # p99). The development broker holds every fetch this long even when data is there,
    # so on it this is each forward hop's latency: 100 ms made two hops alone ~130 ms at p99.
    fetch_max_wait_ms: int = Field(default=20, ge=1)
    # The same for followers: consumers that keep their own state in step with a topic
    # (read model, timers, scores, feedback) where nothing waits on them within a second.
    # A longer wait means fewer empty polls and bigger batches, so fewer transactions and
    # offset commits per event; on the development broker it is also CPU the broker does
    # not spend answering polls (12 idle consumers: 56 % of a core at 100 ms, 29 % at 500).
    follower_fetch_max_wait_ms: int = Field(default=500, ge=1)
    # A busy follower (a read of at least follower_settle_min_batch records) reads on until
    # the oldest record it read is this old, all in one batch. A case's registration and
    # its dispatch, on two topics some hundreds of ms apart under load, then meet in one
    # batch more often (about half the cases in the pipeline benchmark, against one in
    # twenty without) and the case is folded and saved once for both. A quiet follower,
    # whose CPU nobody misses, is not held back (0: never).
    follower_settle_ms: int = Field(default=800, ge=0)
    follower_settle_min_batch: int = Field(default=200, ge=1)
    # A consumer's offsets reach the broker at most this often (0: after every batch).
    # Always after the batch's Postgres commit; a crash redelivers at most this much more,
    # and the inbox drops it (shared.offsets).
    commit_interval_ms: int = Field(default=500, ge=0)

    @model_validator(mode="after")
    def _security_is_coherent(self) -> KafkaSettings:
        """A half-set security configuration stops the service at start, naming the setting."""
        problems = security_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self


def security_problems(cfg: KafkaSettings) -> list[str]:
    """What is wrong with the SASL/TLS settings, each naming its environment variable."""
    protocol = cfg.security_protocol
    sasl = protocol.startswith("SASL_")
    tls = protocol in ("SSL", "SASL_SSL")
    problems = []
    given = {
        "KAFKA_SASL_MECHANISM": cfg.sasl_mechanism,
        "KAFKA_SASL_USERNAME": cfg.sasl_username,
        "KAFKA_SASL_PASSWORD": cfg.sasl_password,
    }
    for name, value in given.items():
        if sasl and not value:
            problems.append(f"KAFKA_SECURITY_PROTOCOL is {protocol}: set {name}")
        if not sasl and value:
            problems.append(
                f"{name} is set but KAFKA_SECURITY_PROTOCOL is {protocol}: "
                "use SASL_SSL (or SASL_PLAINTEXT) or unset it"
            )
    if protocol == "SASL_PLAINTEXT" and cfg.sasl_mechanism == "PLAIN":
        problems.append(
            "KAFKA_SASL_MECHANISM PLAIN over KAFKA_SECURITY_PROTOCOL SASL_PLAINTEXT would send "
            "the password in clear: use SCRAM-SHA-512 or SASL_SSL"
        )
    files = {
        "KAFKA_SSL_CAFILE": cfg.ssl_cafile,
        "KAFKA_SSL_CERTFILE": cfg.ssl_certfile,
        "KAFKA_SSL_KEYFILE": cfg.ssl_keyfile,
    }
    for name, path in files.items():
        if path is None:
            continue
        if not tls:
            problems.append(
                f"{name} is set but KAFKA_SECURITY_PROTOCOL is {protocol}: "
                "use SSL or SASL_SSL, or unset it"
            )
        elif not os.path.isfile(path) or not os.access(path, os.R_OK):
            problems.append(f"{name}: {path} is not a readable file")
    if cfg.ssl_keyfile and not cfg.ssl_certfile:
        problems.append(
            "KAFKA_SSL_KEYFILE is set without KAFKA_SSL_CERTFILE (the client certificate)"
        )
    return problems


def kafka_settings_with_batch(max_batch: int) -> KafkaSettings:
    """The environment's Kafka settings, with ``max_batch`` unless KAFKA_MAX_BATCH is set.

    For a service whose batch costs the same few statements whatever its
    size, so that it takes bigger batches than the shared default.
    """
    kafka = KafkaSettings()
    if "max_batch" in kafka.model_fields_set:
        return kafka
    return kafka.model_copy(update={"max_batch": max_batch})


#: How far a follower may run behind on a scaled clock, in simulated time.
FOLLOWER_LAG_SIMULATED_MS = 60_000


def follower_wait_for_clock(scale: float, wait_ms: int) -> int:
    """The followers' fetch wait on a clock running ``scale`` times faster than real time.

    On the development broker a follower runs up to its wait behind. At 1,200x a 500 ms
    wait is ten simulated minutes of stale read model, timers armed late and scores
    behind. The lag is kept within a simulated minute, but polls never come faster than
    every 100 ms (every consumer's pace before the forward path and followers were told
    apart). A sign-for racing its deadline is not this function's concern: supervision's
    timer settle covers whatever the follower wait is.
    """
    return max(100, follower_settle_for_clock(scale, wait_ms))


def follower_settle_for_clock(scale: float, settle_ms: int) -> int:
    """The busy followers' settle on a clock running ``scale`` times faster than real time:
    within a simulated minute, like the fetch wait, with no floor (it is no poll)."""
    return min(settle_ms, round(FOLLOWER_LAG_SIMULATED_MS / scale))


#: The follower settings a scaled clock shrinks unless they are set: name -> how.
_FOLLOWER_PACE_FOR_CLOCK = {
    "follower_fetch_max_wait_ms": follower_wait_for_clock,
    "follower_settle_ms": follower_settle_for_clock,
}


class ServiceSettings(BaseSettings):
    """Common to every service."""

    model_config = SettingsConfigDict(extra="ignore")

    service_name: str = "service"
    database_url: str = Field(
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        description="what the running service connects as: in production its runtime role "
        "(DML on its own schema only)",
    )
    database_migration_url: str | None = Field(
        default=None,
        description="what migrations run as: the schema's owner role (default: DATABASE_URL)",
    )
    # Defaults to the service's own schema; tests give each run its own.
    db_schema: str | None = None
    db_pool_min: int = Field(default=1, ge=1)
    db_pool_max: int = Field(default=10, ge=1)
    topic_prefix: str = ""
    http_host: str = "0.0.0.0"
    http_port: int = 8080
    # Larger request bodies are refused with a 413 before they are read into memory.
    http_max_body_bytes: int = Field(default=256 * 1024, ge=1024)
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
    api_keys: str = Field(
        default="",
        description="development API keys, 'kind:id:key,...' (kind: channel, department, "
        "centre), stored hashed at start; production keys are made with "
        "`python -m shared.apikeys`",
    )
    api_rate_per_second: float = Field(
        default=20.0, gt=0, description="per API key, across every replica of the service"
    )
    api_rate_burst: int = Field(default=40, ge=1, description="requests a key may send at once")
    # The inbox forgets an event id once no copy of its event can come back (shared.inbox):
    # never sooner than the longest a record can stay in a topic the service reads, or in
    # its dead-letter topic, plus a day; a topic kept forever keeps every id.
    inbox_prune: bool = Field(default=True, description="forget inbox ids no event can repeat")
    inbox_retention_days: float = Field(
        default=30.0, gt=0, description="keep inbox ids at least this long, whatever the topics"
    )
    inbox_prune_interval_seconds: float = Field(default=3600.0, gt=0)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)

    @field_validator("api_keys")
    @classmethod
    def _api_keys_parse(cls, spec: str) -> str:
        parse_dev_keys(spec)  # a malformed key list stops the service at start, naming the item
        return spec

    @model_validator(mode="after")
    def _followers_keep_up_with_the_clock(self) -> ServiceSettings:
        """On a scaled clock the follower wait and settle shrink with it, unless set explicitly."""
        kafka = self.kafka
        update: dict[str, int] = {}
        for name, for_clock in _FOLLOWER_PACE_FOR_CLOCK.items():
            if name not in kafka.model_fields_set:
                given = getattr(kafka, name)
                if (paced := for_clock(self.clock_scale, given)) != given:
                    update[name] = paced
        if update:
            self.kafka = kafka.model_copy(update=update)
        return self

    @property
    def dev_api_keys(self) -> list[tuple[Principal, str]]:
        return parse_dev_keys(self.api_keys)
