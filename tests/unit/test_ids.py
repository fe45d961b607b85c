"""Events dispatch publishes in answer to a consumed event get ids derived from it,
so rebuilding dispatch's state from the topics republishes the same ids."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from shared.ids import _b32, derived_event_id, new_ulid

ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
AT = datetime(2026, 3, 10, 2, tzinfo=UTC)


def test_the_same_cause_gives_the_same_id() -> None:
    cause = new_ulid()
    assert derived_event_id(cause, 0, AT) == derived_event_id(cause, 0, AT)


def test_ids_differ_by_cause_and_by_position() -> None:
    cause, other = new_ulid(), new_ulid()
    ids = {
        derived_event_id(cause, 0, AT),
        derived_event_id(cause, 1, AT),
        derived_event_id(other, 0, AT),
    }
    assert len(ids) == 3


def test_ids_are_ulid_shaped_and_sort_by_event_time() -> None:
    earlier = derived_event_id("cause-b", 0, AT)
    later = derived_event_id("cause-a", 0, AT + timedelta(milliseconds=1))
    assert ULID.match(earlier) and ULID.match(later)
    assert earlier < later
    # The time part is the event time, in the same layout as shared.ids.new_ulid.
    assert earlier[:10] == new_ulid(now_ms=int(AT.timestamp() * 1000))[:10]


def test_a_derived_id_is_stable_across_releases() -> None:
    # Replays compare ids with those published by earlier releases: the encoding must not move.
    assert derived_event_id("01M7KGZ4R0EVENT00000000007", 2, AT) == "01KKAQHX8037KF07QHT7TEYWCH"


@given(st.integers(min_value=0, max_value=2**130), st.integers(min_value=0, max_value=27))
def test_base32_is_crockford_most_significant_first(value: int, length: int) -> None:
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    expected = "".join(alphabet[(value >> (5 * i)) & 31] for i in reversed(range(length)))
    assert _b32(value, length) == expected
