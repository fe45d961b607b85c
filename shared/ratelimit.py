"""Rate limiting per API key: a token bucket each, refilled at ``rate`` per second up to ``burst``.

The buckets live in the service's database (``rate_buckets``), so every replica of a
service draws on the same one: with a per-process bucket, N replicas behind a load
balancer gave a key N times its rate, and more as an autoscaler added replicas. One
statement a request takes the token or says how long to wait, under the row's lock, so
concurrent requests of a key on any replica are counted one after the other; the
database's clock refills it, so the replicas' clocks do not have to agree.

:class:`TokenBucket` is the same arithmetic in Python: the model the statement is tested
against (``tests/integration/test_rate_buckets.py``), and the unit tests' bucket.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from shared.db import Connection


@dataclass
class TokenBucket:
    rate: float  # tokens per second
    burst: float  # the most a bucket holds
    tokens: float
    updated: float  # the clock reading of the last refill

    @classmethod
    def full(cls, rate: float, burst: float, now: float) -> TokenBucket:
        return cls(rate, burst, burst, now)

    def take(self, now: float, cost: float = 1.0) -> float:
        """Spend ``cost`` tokens: 0.0 when allowed, else the seconds until it would be."""
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        self.updated = max(self.updated, now)
        if self.tokens >= cost:
            self.tokens -= cost
            return 0.0
        return (cost - self.tokens) / self.rate


# The refill, as TokenBucket.take: never over the burst, and a clock that goes back mints
# nothing. EXCLUDED.refilled_at is this request's instant.
_TAKE = """
INSERT INTO rate_buckets AS b (key_hash, tokens, refilled_at, allowed)
VALUES ($1, $3::float8 - 1, coalesce($4::timestamptz, now()), true)
ON CONFLICT (key_hash) DO UPDATE SET
    tokens = least($3::float8, b.tokens + $2::float8
                   * greatest(0, extract(epoch FROM EXCLUDED.refilled_at - b.refilled_at)))
             - CASE WHEN least($3::float8, b.tokens + $2::float8
                   * greatest(0, extract(epoch FROM EXCLUDED.refilled_at - b.refilled_at))) >= 1
                    THEN 1 ELSE 0 END,
    allowed = least($3::float8, b.tokens + $2::float8
                    * greatest(0, extract(epoch FROM EXCLUDED.refilled_at - b.refilled_at))) >= 1,
    refilled_at = greatest(b.refilled_at, EXCLUDED.refilled_at)
RETURNING tokens, allowed
"""


class RateLimiter:
    """One bucket per key hash, in the service's database, shared by its replicas."""

    def __init__(
        self, rate: float, burst: float, clock: Callable[[], datetime] | None = None
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        # None: the database's clock (production); a test passes its own.
        self.clock = clock

    async def take(self, conn: Connection, key: str) -> float:
        """0.0 when ``key`` may make a request now, else the seconds to wait."""
        now = self.clock() if self.clock is not None else None
        row = await conn.fetchrow(_TAKE, key, self.rate, self.burst, now)
        assert row is not None
        if row["allowed"]:
            return 0.0
        return (1 - float(row["tokens"])) / self.rate
