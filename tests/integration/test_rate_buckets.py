"""API rate limits per key, in Postgres: one bucket however many replicas serve the key."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from shared.db import create_pool
from shared.migrations import migrate
from shared.ratelimit import RateLimiter, TokenBucket

START = datetime(2026, 12, 7, tzinfo=UTC)


@pytest.fixture
async def pools(database_url: str, db: asyncpg.Connection) -> AsyncIterator[list[asyncpg.Pool]]:
    """Two pools on one schema: two replicas of a service."""
    schema = f"rate_{uuid.uuid4().hex[:8]}"
    await migrate(db, schema, None)
    made = [await create_pool(database_url, schema, min_size=1, max_size=4) for _ in range(2)]
    try:
        yield made
    finally:
        for pool in made:
            await pool.close()
        await db.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


async def _take(pool: asyncpg.Pool, limiter: RateLimiter, key: str) -> float:
    async with pool.acquire() as conn:
        return await limiter.take(conn, key)


async def test_the_statement_counts_as_the_token_bucket_does(pools):
    """Random requests of three keys at random instants, some going back in time: every
    answer is the model's (allowed, or the same wait). Steps of quarter seconds at 2 a
    second: sums a float holds exactly, so neither side rounds across a whole token."""
    rng = random.Random(7)
    now = [START]
    limiter = RateLimiter(rate=2.0, burst=3, clock=lambda: now[0])
    models: dict[str, TokenBucket] = {}
    for _ in range(300):
        now[0] += timedelta(seconds=rng.choice([0, 0, 0.25, 0.5, 0.75, 2, -0.5]))
        key = rng.choice("abc")
        at = (now[0] - START).total_seconds()
        model = models.setdefault(key, TokenBucket.full(2.0, 3, at))
        expected = model.take(at)
        got = await _take(pools[0], limiter, key)
        assert got == pytest.approx(expected, abs=1e-6), (key, at)
    assert {m.tokens >= 0 for m in models.values()} == {True}


async def test_replicas_draw_on_one_bucket(pools):
    now = [START]
    first, second = (RateLimiter(rate=1.0, burst=2, clock=lambda: now[0]) for _ in pools)
    assert await _take(pools[0], first, "k") == 0.0
    assert await _take(pools[1], second, "k") == 0.0
    assert await _take(pools[0], first, "k") == pytest.approx(1.0), "the burst is spent"
    assert await _take(pools[1], second, "k") == pytest.approx(1.0), "on either replica"
    assert await _take(pools[1], second, "other") == 0.0, "another key has its own"
    now[0] += timedelta(seconds=1)
    assert await _take(pools[1], second, "k") == 0.0


async def test_concurrent_requests_of_a_key_never_overspend(pools):
    now = [START]
    limiter = RateLimiter(rate=0.001, burst=5, clock=lambda: now[0])
    waits = await asyncio.gather(*(_take(pools[i % 2], limiter, "hot") for i in range(20)))
    assert sum(1 for w in waits if w == 0.0) == 5


async def test_by_default_the_database_clock_refills(pools):
    limiter = RateLimiter(rate=50.0, burst=1)
    assert await _take(pools[0], limiter, "k") == 0.0
    wait = await _take(pools[1], limiter, "k")
    assert 0 < wait <= 0.02
    await asyncio.sleep(0.05)
    assert await _take(pools[0], limiter, "k") == 0.0
