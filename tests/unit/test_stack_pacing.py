"""make run's scaled clock keeps followers within a simulated minute of the forward path."""

from __future__ import annotations

from datetime import datetime

from ops.stack import City, follower_fetch_wait_ms

WAIT = "KAFKA_FOLLOWER_FETCH_MAX_WAIT_MS"


def test_the_follower_wait_shrinks_with_the_clock_but_not_below_100_ms():
    assert follower_fetch_wait_ms(1, 500) == 500, "the real clock keeps the service default"
    assert follower_fetch_wait_ms(60, 500) == 500
    assert follower_fetch_wait_ms(300, 500) == 200  # a simulated minute
    assert follower_fetch_wait_ms(1200, 500) == 100  # make run's default scale
    assert follower_fetch_wait_ms(20_000, 500) == 100


def _env(monkeypatch, scale: float, **given: str) -> dict[str, str]:
    monkeypatch.delenv(WAIT, raising=False)
    city = City(
        scale=scale, start=datetime.fromisoformat("2026-11-02T08:00:00+08:00"), partitions=12
    )
    city.env.update(given)
    return city.service_env("supervision", anchor=0.0)


def test_each_service_is_started_with_it_unless_told_otherwise(monkeypatch):
    assert _env(monkeypatch, 1200)[WAIT] == "100"
    assert _env(monkeypatch, 1)[WAIT] == "500"
    assert _env(monkeypatch, 1200, **{WAIT: "750"})[WAIT] == "750"
    monkeypatch.setenv(WAIT, "333")
    city = City(
        scale=1200, start=datetime.fromisoformat("2026-11-02T08:00:00+08:00"), partitions=12
    )
    assert city.service_env("intake", anchor=0.0)[WAIT] == "333"
