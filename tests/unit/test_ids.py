"""Events dispatch publishes in answer to a consumed event get ids derived from it,
so rebuilding dispatch's state from the topics republishes the same ids."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from shared.ids import derived_event_id, new_ulid

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
