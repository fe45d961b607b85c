"""What the simulated city does next: pure decisions from (behaviour, event, now, random).

Nothing here touches the broker: :mod:`ops.simulator.run` turns these decisions
into events on ``reports`` and ``feedback`` at the simulated instants.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from shared.reference import ReferenceData
from shared.reference.catalogue import Category

Action = Literal["accept", "handle", "return", "request_extension", "verify", "rate", "dispatch"]


@dataclass(frozen=True)
class Temperament:
    accept_share: tuple[float, float]
    handle_share: tuple[float, float]
    return_probability: float
    verification_failure: float
    extension_probability: float


@dataclass(frozen=True)
class Hotspot:
    """A place where the same problem keeps coming back: the centre of a grid cell."""

    category: str
    cell: str
    share: float


@dataclass(frozen=True)
class Behaviour:
    reports_per_day: float
    hourly_rhythm: tuple[float, ...]
    channel_mix: dict[str, float]
    hotspots: tuple[Hotspot, ...]
    duplicate_share: float
    temperaments: dict[str, Temperament]
    inspector_minutes: tuple[float, float]
    dispatcher_minutes: tuple[float, float]
    callback_hours: tuple[float, float]
    ratings: dict[str, dict[str, float]]
    rated_share: float

    def temperament(self, department: str) -> Temperament:
        return self.temperaments.get(department, self.temperaments["default"])

    def reports_per_hour(self, hour: int) -> float:
        return self.reports_per_day * self.hourly_rhythm[hour] / sum(self.hourly_rhythm)


def load_behaviour(path: Path) -> Behaviour:
    raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    rhythm = tuple(float(x) for x in raw["hourly_rhythm"])
    if len(rhythm) != 24 or min(rhythm) < 0 or sum(rhythm) <= 0:
        raise ValueError(f"{path.name}: hourly_rhythm must be 24 non-negative weights")
    temperaments = {
        name: Temperament(
            accept_share=(t["accept_share"][0], t["accept_share"][1]),
            handle_share=(t["handle_share"][0], t["handle_share"][1]),
            return_probability=t["return_probability"],
            verification_failure=t["verification_failure"],
            extension_probability=t["extension_probability"],
        )
        for name, t in raw["department_temperaments"].items()
    }
    if "default" not in temperaments:
        raise ValueError(f"{path.name}: department_temperaments needs a 'default'")
    return Behaviour(
        reports_per_day=float(raw["reports_per_day"]),
        hourly_rhythm=rhythm,
        channel_mix={k: float(v) for k, v in raw["channel_mix"].items()},
        hotspots=tuple(Hotspot(**h) for h in raw["hotspots"]),
        duplicate_share=float(raw["duplicate_share"]),
        temperaments=temperaments,
        inspector_minutes=(raw["inspector_minutes"][0], raw["inspector_minutes"][1]),
        dispatcher_minutes=(raw["dispatcher_minutes"][0], raw["dispatcher_minutes"][1]),
        callback_hours=(raw["callback_hours"][0], raw["callback_hours"][1]),
        ratings=raw["ratings"],
        rated_share=float(raw["rated_share"]),
    )


@dataclass(frozen=True)
class ReportPlan:
    """One report a channel will submit."""

    channel: str
    category: Category
    lat: float
    lon: float
    attributes: dict[str, str]
    photo: bool
    with_contact: bool


@dataclass
class ReportGenerator:
    """Draws reports with the city's rhythm, channel mix, hotspots and repeats."""

    ref: ReferenceData
    behaviour: Behaviour
    rng: random.Random
    recent: list[tuple[str, float, float]] = field(default_factory=list)

    def count_in(self, start: datetime, span: timedelta) -> int:
        """How many reports arrive in [start, start+span): Poisson at the hour's rate."""
        local = start.astimezone(self.ref_tz)
        rate = self.behaviour.reports_per_hour(local.hour) * span.total_seconds() / 3600
        return _poisson(self.rng, rate)

    @property
    def ref_tz(self) -> Any:
        from zoneinfo import ZoneInfo

        return ZoneInfo(self.ref.calendar.timezone)

    def draw(self) -> ReportPlan:
        b = self.behaviour
        channel = _weighted(self.rng, b.channel_mix)
        roll = self.rng.random()
        hotspot_total = sum(h.share for h in b.hotspots)
        if roll < hotspot_total:
            spot = _pick_hotspot(self.rng, b.hotspots, roll)
            category = self.ref.category(spot.category)
            cell = self.ref.cell(spot.cell)
            if category is None or cell is None:
                raise ValueError(f"simulation.json: hotspot {spot} is not in the catalogue or grid")
            lat, lon = _jitter(self.rng, *cell.centre, metres=3)
        elif roll < hotspot_total + b.duplicate_share and self.recent:
            code, base_lat, base_lon = self.rng.choice(self.recent)
            category = self.ref.category(code)
            assert category is not None
            lat, lon = _jitter(self.rng, base_lat, base_lon, metres=2)
        else:
            category = self.rng.choice(self.ref.categories)
            cell = self.rng.choice(self.ref.cells)
            lat = self.rng.uniform(cell.min_lat, cell.max_lat)
            lon = self.rng.uniform(cell.min_lon, cell.max_lon)
        self.recent.append((category.code, lat, lon))
        del self.recent[:-200]
        attributes = {
            a.code: (self.rng.choice(a.values).key if a.values else "1")
            for a in category.filing.attributes
            if a.required
        }
        return ReportPlan(
            channel=channel,
            category=category,
            lat=lat,
            lon=lon,
            attributes=attributes,
            photo="photo" in category.filing.required_fields or channel != "hotline_12345",
            with_contact=channel.startswith("hotline")
            or channel == "wechat_photo"
            or "contact" in category.filing.required_fields,
        )


@dataclass(frozen=True)
class Step:
    """Something the city will do about a case at an instant."""

    at: datetime
    action: Action
    case_id: str
    department: str
    detail: str = ""


def on_dispatched(
    behaviour: Behaviour,
    rng: random.Random,
    *,
    case_id: str,
    department: str,
    dispatched_at: datetime,
    sign_for: datetime,
    handle: datetime,
    tier: str,
    is_rework: bool,
    reason: str | None,
) -> list[Step]:
    """A department's answer to a (re)dispatch: return it, or sign for it and fix it."""
    t = behaviour.temperament(department)
    steps: list[Step] = []
    if reason == "extension":
        return steps  # the work already under way continues; the clock just moved
    if not is_rework and rng.random() < t.return_probability:
        at = dispatched_at + (sign_for - dispatched_at) * rng.uniform(0.1, 0.8)
        return [Step(at, "return", case_id, department, "not our responsibility")]
    if not is_rework:
        accept_at = dispatched_at + (sign_for - dispatched_at) * rng.uniform(*t.accept_share)
        steps.append(Step(accept_at, "accept", case_id, department))
    else:
        accept_at = dispatched_at
    handle_at = dispatched_at + (handle - dispatched_at) * rng.uniform(*t.handle_share)
    handle_at = max(handle_at, accept_at + timedelta(minutes=1))
    if tier == "engineering" and not is_rework and rng.random() < t.extension_probability:
        ask_at = accept_at + (handle_at - accept_at) * 0.3
        steps.append(Step(ask_at, "request_extension", case_id, department, "materials on order"))
    steps.append(Step(handle_at, "handle", case_id, department))
    return steps


def on_handled(
    behaviour: Behaviour, rng: random.Random, *, case_id: str, department: str, handled_at: datetime
) -> Step:
    """The inspector goes to look; the sloppy departments' work fails more often."""
    t = behaviour.temperament(department)
    at = handled_at + timedelta(minutes=rng.uniform(*behaviour.inspector_minutes))
    verdict = "failed" if rng.random() < t.verification_failure else "passed"
    return Step(at, "verify", case_id, department, verdict)


def on_closed(
    behaviour: Behaviour,
    rng: random.Random,
    *,
    case_id: str,
    department: str,
    closed_at: datetime,
    on_time: bool,
) -> Step | None:
    """The call-back centre asks the reporter; late work pleases fewer people."""
    if rng.random() >= behaviour.rated_share:
        return None
    at = closed_at + timedelta(hours=rng.uniform(*behaviour.callback_hours))
    rating = _weighted(rng, behaviour.ratings["on_time" if on_time else "late"])
    return Step(at, "rate", case_id, department, rating)


def on_escalated(
    behaviour: Behaviour, rng: random.Random, *, case_id: str, escalated_at: datetime, owner: str
) -> Step:
    """A human dispatcher picks the case from the queue and assigns the owner department."""
    at = escalated_at + timedelta(minutes=rng.uniform(*behaviour.dispatcher_minutes))
    return Step(at, "dispatch", case_id, owner)


def _weighted(rng: random.Random, weights: dict[str, float]) -> str:
    total = sum(weights.values())
    roll = rng.random() * total
    for key, w in weights.items():
        roll -= w
        if roll < 0:
            return key
    return next(reversed(weights))


def _pick_hotspot(rng: random.Random, spots: tuple[Hotspot, ...], roll: float) -> Hotspot:
    for spot in spots:
        if roll < spot.share:
            return spot
        roll -= spot.share
    return spots[-1]


def _jitter(rng: random.Random, lat: float, lon: float, metres: float) -> tuple[float, float]:
    dlat = rng.uniform(-metres, metres) / 111_195
    dlon = rng.uniform(-metres, metres) / (111_195 * math.cos(math.radians(lat)))
    return lat + dlat, lon + dlon


def _poisson(rng: random.Random, rate: float) -> int:
    if rate <= 0:
        return 0
    if rate > 50:  # normal approximation; exact enough for report volumes
        return max(0, round(rng.gauss(rate, math.sqrt(rate))))
    limit, k, p = math.exp(-rate), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1
