"""A service on a scaled clock keeps its followers within a simulated minute of the forward path."""

from __future__ import annotations

from shared.settings import (
    KafkaSettings,
    ServiceSettings,
    follower_settle_for_clock,
    follower_wait_for_clock,
)

WAIT = "KAFKA_FOLLOWER_FETCH_MAX_WAIT_MS"


def test_the_follower_wait_shrinks_with_the_clock_but_not_below_100_ms():
    assert follower_wait_for_clock(1, 500) == 500, "the real clock keeps the service default"
    assert follower_wait_for_clock(60, 500) == 500
    assert follower_wait_for_clock(300, 500) == 200  # a simulated minute
    assert follower_wait_for_clock(1200, 500) == 100  # make run's default scale
    assert follower_wait_for_clock(20_000, 500) == 100


def _wait(monkeypatch, scale: float, **kafka: int) -> int:
    monkeypatch.delenv(WAIT, raising=False)
    settings = ServiceSettings(clock_scale=scale, kafka=KafkaSettings(**kafka))
    return settings.kafka.follower_fetch_max_wait_ms


def test_every_service_on_a_scaled_clock_gets_it_unless_told_otherwise(monkeypatch):
    assert _wait(monkeypatch, 1200) == 100
    assert _wait(monkeypatch, 1) == 500
    assert _wait(monkeypatch, 1200, follower_fetch_max_wait_ms=750) == 750
    monkeypatch.setenv(WAIT, "333")
    monkeypatch.setenv("CLOCK_SCALE", "1200")
    assert ServiceSettings().kafka.follower_fetch_max_wait_ms == 333
    monkeypatch.delenv(WAIT)
    assert ServiceSettings().kafka.follower_fetch_max_wait_ms == 100, (
        "CLOCK_SCALE as make run sets it"
    )


def test_the_shared_kafka_settings_are_not_changed_in_place(monkeypatch):
    monkeypatch.delenv(WAIT, raising=False)
    kafka = KafkaSettings()
    ServiceSettings(clock_scale=1200, kafka=kafka)
    assert kafka.follower_fetch_max_wait_ms == 500


def test_the_busy_followers_settle_shrinks_with_the_clock_too(monkeypatch):
    assert follower_settle_for_clock(1, 800) == 800
    assert follower_settle_for_clock(1200, 800) == 50, "within a simulated minute, no floor"
    monkeypatch.delenv("KAFKA_FOLLOWER_SETTLE_MS", raising=False)
    assert ServiceSettings(clock_scale=1200).kafka.follower_settle_ms == 50
    assert ServiceSettings(clock_scale=1).kafka.follower_settle_ms == 800
    told = KafkaSettings(follower_settle_ms=700)
    assert ServiceSettings(clock_scale=1200, kafka=told).kafka.follower_settle_ms == 700


def test_the_services_that_fold_several_topics_take_batches_of_4000(monkeypatch):
    from services.scoring.settings import Settings as ScoringSettings
    from services.supervision.settings import Settings as SupervisionSettings

    monkeypatch.delenv("KAFKA_MAX_BATCH", raising=False)
    assert SupervisionSettings().kafka.max_batch == 4000
    assert ScoringSettings().kafka.max_batch == 4000
    monkeypatch.setenv("KAFKA_MAX_BATCH", "300")
    assert SupervisionSettings().kafka.max_batch == 300, "the environment still decides"
