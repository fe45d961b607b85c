"""Building a case's events for scoring tests: one case's story told event by event.

Each method returns an envelope as the real producer would send it (the
owning service's event, its event time), built from the contract's own
examples with the fields that matter to scoring overridden.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from itertools import count
from typing import Any

from shared.events import Envelope
from shared.events.examples import example_event

CST = timezone(timedelta(hours=8))

#: Cells of the sample city, one per street office (块).
CELL_PINGJIANG = "32050800100101"  # street-pingjiang, community 320508001001
CELL_PINGJIANG_2 = "32050800100201"  # street-pingjiang, community 320508001002
CELL_CANGLANG = "32050800200101"  # street-canglang, community 320508002001
CELL_JINCHANG = "32050800300101"  # street-jinchang
CELL_SHUANGTA = "32050800400101"  # street-shuangta
AREA_OF = {
    CELL_PINGJIANG: "street-pingjiang",
    CELL_PINGJIANG_2: "street-pingjiang",
    CELL_CANGLANG: "street-canglang",
    CELL_JINCHANG: "street-jinchang",
    CELL_SHUANGTA: "street-shuangta",
}

_ids = count(1)


def at(day: int, hour: float = 9.0, month: int = 11) -> datetime:
    """An instant in 2026 in Shanghai time: ``at(3, 14.5)`` is 3 November 14:30."""
    return datetime(2026, month, day, tzinfo=CST) + timedelta(hours=hour)


def new_id(prefix: str = "E") -> str:
    return f"{prefix}{next(_ids):08d}"


@dataclass
class Story:
    """The events of one case; ``department`` follows redispatches."""

    case_id: str
    grid: str = CELL_PINGJIANG
    department: str = "sanitation"
    dispatch_number: int = 0
    sign_for: datetime | None = None
    handle: datetime | None = None
    reworks: int = 0
    events: list[Envelope] = field(default_factory=list)

    @property
    def area(self) -> str:
        return AREA_OF.get(self.grid, self.grid[:9])

    def _add(self, event_type: str, time: datetime, **data: Any) -> Envelope:
        env = example_event(event_type, event_id=new_id(), time=time, **data)
        self.events.append(env)
        return env

    def _who(self) -> dict[str, Any]:
        return {"case_id": self.case_id, "department": self.department, "area": self.area}

    def registered(self, when: datetime) -> Envelope:
        return self._add(
            "case.registered",
            when,
            case_id=self.case_id,
            report_id=f"R{self.case_id}",
            external_id=f"X{self.case_id}",
            grid_code=self.grid,
            community=self.grid[:12],
            street=self.grid[:9],
            district=self.grid[:6],
            area=self.area,
            registered_at=when.isoformat(),
            reported_at=when.isoformat(),
        )

    def merged(self, when: datetime, master: str) -> Envelope:
        return self._add(
            "case.merged",
            when,
            case_id=self.case_id,
            master_case_id=master,
            report_id=f"R{self.case_id}",
            external_id=f"X{self.case_id}",
            grid_code=self.grid,
            area=self.area,
        )

    def _dispatch(
        self,
        event_type: str,
        when: datetime,
        sign_for: timedelta,
        handle: timedelta,
        **extra: Any,
    ) -> Envelope:
        self.dispatch_number += 1
        self.sign_for, self.handle = when + sign_for, when + handle
        return self._add(
            event_type,
            when,
            **self._who(),
            grid_code=self.grid,
            dispatch_number=self.dispatch_number,
            dispatched_at=when.isoformat(),
            deadlines={
                "sign_for": self.sign_for.isoformat(),
                "handle": self.handle.isoformat(),
                "verify_limit": "PT30M",
                "clock": "natural",
            },
            rework_count=self.reworks,
            **extra,
        )

    def dispatched(
        self,
        when: datetime,
        department: str | None = None,
        sign_for: timedelta = timedelta(hours=1),
        handle: timedelta = timedelta(hours=6),
    ) -> Envelope:
        self.department = department or self.department
        return self._dispatch("case.dispatched", when, sign_for, handle)

    def redispatched(
        self,
        when: datetime,
        department: str | None = None,
        reason: str = "return",
        sign_for: timedelta = timedelta(hours=1),
        handle: timedelta = timedelta(hours=6),
    ) -> Envelope:
        previous = self.department
        self.department = department or self.department
        return self._dispatch(
            "case.redispatched",
            when,
            sign_for,
            handle,
            reason=reason,
            previous_department=previous,
            is_rework=reason == "rework",
        )

    def accepted(self, when: datetime) -> Envelope:
        return self._add("case.accepted", when, **self._who())

    def handled(self, when: datetime) -> Envelope:
        return self._add("case.handled", when, **self._who())

    def overdue(
        self, when: datetime, timer: str = "handle", deadline: datetime | None = None
    ) -> Envelope:
        """The light fired at ``when``, for a limit that passed at ``deadline`` (``when`` if None)."""
        return self._add(
            "case.overdue",
            when,
            **self._who(),
            timer=timer,
            deadline=(deadline or when).isoformat(),
            dispatch_number=max(1, self.dispatch_number),
        )

    def warned(self, when: datetime) -> Envelope:
        return self._add(
            "case.warned",
            when,
            **self._who(),
            deadline=when.isoformat(),
            dispatch_number=max(1, self.dispatch_number),
        )

    def verification_failed(self, when: datetime) -> Envelope:
        return self._add("case.verification_failed", when, **self._who(), actor_role="inspector")

    def rework_ordered(self, when: datetime) -> Envelope:
        self.reworks += 1
        return self._add("case.rework_ordered", when, **self._who(), rework_count=self.reworks)

    def failed_and_reworked(self, when: datetime) -> list[Envelope]:
        """Verification failed, supervision orders rework, dispatch gives a fresh deadline."""
        return [
            self.verification_failed(when),
            self.rework_ordered(when + timedelta(minutes=1)),
            self.redispatched(when + timedelta(minutes=2), reason="rework"),
        ]

    def verified(self, when: datetime) -> Envelope:
        return self._add("case.verified", when, **self._who(), actor_role="inspector")

    def closed(self, when: datetime, handled_at: datetime) -> Envelope:
        assert self.handle is not None
        return self._add(
            "case.closed",
            when,
            **self._who(),
            on_time=handled_at <= self.handle,
            handled_at=handled_at.isoformat(),
            verified_at=when.isoformat(),
            handle_deadline=self.handle.isoformat(),
            rework_count=self.reworks,
            dispatch_number=max(1, self.dispatch_number),
            grid_code=self.grid,
        )

    def handled_verified_closed(self, handled_at: datetime) -> list[Envelope]:
        verified_at = handled_at + timedelta(minutes=20)
        return [
            self.handled(handled_at),
            self.verified(verified_at),
            self.closed(verified_at + timedelta(minutes=1), handled_at),
        ]

    def rated(self, when: datetime, rating: str) -> Envelope:
        return self._add(
            "case.rated", when, **self._who(), actor_role="callback_centre", rating=rating
        )

    def rebounded(self, when: datetime, previous_case_id: str, department: str) -> Envelope:
        """This (new) case is the same problem back at the place of ``previous_case_id``."""
        return self._add(
            "case.rebounded",
            when,
            case_id=self.case_id,
            department=department,
            area=self.area,
            place_key=f"C0101:{self.grid}",
            count=1,
            previous_case_id=previous_case_id,
            grid_code=self.grid,
            bureau_notice=False,
        )


def rejected(report_id: str, when: datetime) -> Envelope:
    return example_event("report.rejected", event_id=new_id(), time=when, report_id=report_id)
