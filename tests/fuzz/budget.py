"""How hard the fuzz suite tries: a few examples in `make test`, more with FUZZ_EXAMPLES=N."""

from __future__ import annotations

import os
from collections import Counter

from hypothesis import HealthCheck, settings

#: Counted per surface by the tests, printed at the end of the session (the closing note).
COUNTS: Counter[str] = Counter()


def examples(default: int) -> int:
    scale = os.environ.get("FUZZ_EXAMPLES")
    return int(scale) if scale else default


def fuzz_settings(default: int) -> settings:
    return settings(
        max_examples=examples(default),
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
    )
