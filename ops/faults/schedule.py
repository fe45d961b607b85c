"""Which faults a run injects, and when: a pure function of a seed.

Moments are shares of the reports submitted (0.3 = once 30 % of the run's
reports are on the topic), not wall-clock seconds, so a plan means the same on
a fast machine and a slow one. Faults run one after another in plan order.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any, Literal

FaultKind = Literal["kill", "freeze", "postgres", "rewind", "poison"]

SERVICES = ("intake", "dispatch", "supervision", "scoring")

#: (service, topic) pairs whose consumer group a rewind may move backwards.
REWINDABLE = (
    ("intake", "reports"),
    ("dispatch", "cases"),
    ("supervision", "assignments"),
    ("scoring", "feedback"),
)

#: Topics a deliberate poison message goes to, and the shapes of poison sent to each.
POISON_TOPICS = ("reports", "cases", "feedback")
POISON_SHAPES = ("garbage", "not_an_envelope", "unknown_type")


@dataclass(frozen=True)
class Fault:
    at: float  # share of the run's reports submitted before the fault starts
    kind: FaultKind
    target: str  # a service, "broker", "postgres", or a topic for poison
    seconds: float = 0.0  # how long a freeze lasts, or a killed service stays down
    topic: str = ""  # the topic whose group a rewind moves back
    share_back: float = 0.0  # how far back a rewind goes: share of the committed offset

    def describe(self) -> str:
        if self.kind == "kill":
            return f"SIGKILL {self.target}, restart after {self.seconds:.1f}s"
        if self.kind == "freeze":
            return f"SIGSTOP the broker for {self.seconds:.0f}s, then SIGCONT"
        if self.kind == "postgres":
            return "restart PostgreSQL (immediate stop, start on the same data)"
        if self.kind == "rewind":
            return (
                f"stop {self.target}, move its group on {self.topic} back by "
                f"{self.share_back:.0%} of its committed offsets, restart"
            )
        return f"produce {len(POISON_SHAPES)} poison messages onto {self.target}"

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Plan:
    seed: int
    faults: tuple[Fault, ...]

    def kinds(self) -> set[str]:
        return {f.kind for f in self.faults}


def plan(
    seed: int,
    *,
    kills_per_service: int = 2,
    freeze_seconds: float = 20.0,
    postgres_restarts: int = 1,
    rewinds: int = 1,
    first: float = 0.05,
    last: float = 0.85,
) -> Plan:
    """Every fault of one run, in the order they happen.

    Each service is killed ``kills_per_service`` times; the broker is frozen
    once; PostgreSQL restarted ``postgres_restarts`` times; ``rewinds`` consumer
    groups moved back; poison sent once to each of ``POISON_TOPICS``. The
    faults get equal slots between ``first`` and ``last`` and a random moment
    inside their slot, so two faults never share a moment.
    """
    if not 0 <= first < last <= 1:
        raise ValueError(f"first={first} and last={last} must satisfy 0 <= first < last <= 1")
    if kills_per_service < 1 or freeze_seconds <= 0 or postgres_restarts < 1 or rewinds < 1:
        raise ValueError("a fault run needs every fault kind at least once")
    rng = random.Random(seed)
    pending: list[Fault] = []
    for service in SERVICES:
        pending += [
            Fault(0, "kill", service, seconds=round(rng.uniform(0.2, 3.0), 1))
            for _ in range(kills_per_service)
        ]
    pending.append(Fault(0, "freeze", "broker", seconds=freeze_seconds))
    pending += [Fault(0, "postgres", "postgres") for _ in range(postgres_restarts)]
    for _ in range(rewinds):
        service, topic = rng.choice(REWINDABLE)
        pending.append(
            Fault(0, "rewind", service, topic=topic, share_back=round(rng.uniform(0.3, 1.0), 2))
        )
    pending += [Fault(0, "poison", topic) for topic in POISON_TOPICS]
    rng.shuffle(pending)
    width = (last - first) / len(pending)
    faults = tuple(
        Fault(
            at=round(first + i * width + rng.uniform(0.1, 0.9) * width, 4),
            kind=f.kind,
            target=f.target,
            seconds=f.seconds,
            topic=f.topic,
            share_back=f.share_back,
        )
        for i, f in enumerate(pending)
    )
    return Plan(seed, faults)


def rewound(committed: dict[int, int], share_back: float) -> dict[int, int]:
    """Committed offsets per partition moved back by ``share_back`` of themselves (never < 0)."""
    if not 0 < share_back <= 1:
        raise ValueError(f"share_back={share_back} must be in (0, 1]")
    return {p: max(0, offset - round(offset * share_back)) for p, offset in committed.items()}
