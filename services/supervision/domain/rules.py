"""The rules supervision decides by, and time counted the way a case's clock counts it.

A case's clock is ``working`` (the work calendar: working hours, weekends,
holidays, make-up days) or ``natural`` (urgent cases), as its dispatch says.
Every span a timer waits — a warning share of the handling limit, the
verification limit, a notice interval, what is left of a limit when a case is
parked — is counted on that clock.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from shared.calendar import WorkCalendar
from shared.reference.supervision import NoticeLevel, SupervisionRules
from shared.reference.time_limits import Duration, TimeUnit

ClockKind = Literal["working", "natural"]

_ZERO = timedelta(0)


@dataclass(frozen=True)
class Rules:
    """Everything a decision needs besides the case: the rule data and the work calendar."""

    supervision: SupervisionRules
    calendar: WorkCalendar

    @property
    def warning_share(self) -> float:
        return self.supervision.warning_share

    def rung(self, level: int) -> NoticeLevel | None:
        """The notice ladder's rung at ``level``, or None past its top."""
        return self.supervision.notice(level)

    # -- time on a case's clock -------------------------------------------------

    def span(self, clock: ClockKind, start: datetime, end: datetime) -> timedelta:
        """Time from ``start`` to ``end`` as the clock counts it (negative if ``end`` is earlier)."""
        if clock == "working":
            return self.calendar.working_time_between(start, end)
        return end - start

    def advance(self, clock: ClockKind, start: datetime, span: timedelta) -> datetime:
        """The instant ``span`` of clock time after ``start``."""
        if clock == "working":
            return self.calendar.add_working_time(start, max(span, _ZERO))
        return self.calendar.add_natural_time(start, max(span, _ZERO))

    def share_of(self, clock: ClockKind, start: datetime, end: datetime, share: float) -> datetime:
        """The instant ``share`` of the limit running from ``start`` to ``end`` is used up.

        The yellow light of a handling limit (80% by default) is this instant
        with ``end`` the handling deadline: the limit is read back from the
        deadline, so an extended or area-class specific limit gets its own share.
        """
        limit = max(self.span(clock, start, end), _ZERO)
        return self.calendar.deadline(
            start, _as_limit(clock, limit), urgent=clock == "natural", share=share
        )

    def notice_due(self, clock: ClockKind, anchor: datetime, rung: NoticeLevel) -> datetime:
        """When ``rung`` is due, counted from ``anchor`` (the deadline, or the previous notice).

        Intervals written in working units count natural time for an urgent
        case, as its limits do.
        """
        return self.calendar.deadline(anchor, rung.interval, urgent=clock == "natural")

    def lookback_due(self, closed_at: datetime) -> datetime:
        """When a sampled closed case is due for its look-back: N natural days after closing."""
        return self.calendar.add_natural_time(
            closed_at, timedelta(days=self.supervision.lookback.after_days)
        )

    def in_lookback_sample(self, case_id: str) -> bool:
        """Whether ``case_id`` is in the look-back sample.

        Decided by a hash of the id, not a random draw, so a replay of the
        topics samples exactly the same cases.
        """
        return sample_point(case_id) < self.supervision.lookback.sample_share


def sample_point(case_id: str) -> float:
    """A stable point in [0, 1) for ``case_id``: the first 8 bytes of its SHA-256."""
    digest = hashlib.sha256(case_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _as_limit(clock: ClockKind, span: timedelta) -> Duration:
    minutes = max(span, _ZERO) / timedelta(minutes=1)
    unit = TimeUnit.WORKING_MINUTES if clock == "working" else TimeUnit.MINUTES
    return Duration(value=minutes, unit=unit)
