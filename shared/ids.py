"""Event ids: unique and sortable by creation time (ULID layout, Crockford base32)."""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _b32(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_ulid(now_ms: int | None = None) -> str:
    """A 26-character ULID: 48 bits of wall-clock milliseconds, 80 random bits.

    Wall clock, not the simulation clock: the id orders *creation*, while the
    CloudEvents ``time`` carries the event time the domain reasons about.
    """
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    rand = int.from_bytes(os.urandom(10), "big")
    return _b32(ms, 10) + _b32(rand, 16)
