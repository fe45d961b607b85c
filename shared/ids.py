"""Event ids: unique and sortable by creation time (ULID layout, Crockford base32)."""

from __future__ import annotations

import hashlib
import os
import time
from datetime import datetime

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
#: Every 10-bit value as its two characters: half the steps of one character at a time.
_PAIRS = tuple(a + b for a in _ALPHABET for b in _ALPHABET)


def _b32(value: int, length: int) -> str:
    """The low ``5 * length`` bits of ``value`` as ``length`` characters, most significant first."""
    pairs, odd = divmod(length, 2)
    head = _ALPHABET[(value >> (10 * pairs)) & 31] if odd else ""
    return head + "".join(
        [_PAIRS[(value >> shift) & 1023] for shift in range(10 * pairs - 10, -1, -10)]
    )


def new_ulid(now_ms: int | None = None) -> str:
    """A 26-character ULID: 48 bits of wall-clock milliseconds, 80 random bits.

    Wall clock, not the simulation clock: the id orders *creation*, while the
    CloudEvents ``time`` carries the event time the domain reasons about.
    """
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    rand = int.from_bytes(os.urandom(10), "big")
    return _b32(ms, 10) + _b32(rand, 16)


def derived_event_id(cause_id: str, index: int, at: datetime) -> str:
    """The id of the ``index``-th event that the event ``cause_id`` led to: the same every time.

    ULID-shaped like every other id (48 bits of milliseconds, here the event
    time, then 80 bits, here a hash of the cause), so that rebuilding a
    service's state by replaying its topics publishes the very same ids and
    every downstream inbox drops them as already seen.
    """
    millis = int(at.timestamp() * 1000)
    digest = int.from_bytes(hashlib.sha256(f"{cause_id}/{index}".encode()).digest()[:10], "big")
    return _b32(millis, 10) + _b32(digest, 16)
