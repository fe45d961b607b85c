"""Consumers on a case's forward path poll tight; followers poll slowly and take bigger batches.

No broker or database: the services are built, their subscriptions registered with a
faststream broker that never connects, and the consumer arguments each would start with
are read back.
"""

from __future__ import annotations

from faststream.kafka import KafkaBroker

from services.dispatch.app import build as build_dispatch
from services.dispatch.settings import Settings as DispatchSettings
from services.intake.app import build as build_intake
from services.intake.settings import Settings as IntakeSettings
from services.scoring.app import build as build_scoring
from services.scoring.settings import Settings as ScoringSettings
from services.supervision.app import build as build_supervision
from services.supervision.settings import Settings as SupervisionSettings
from shared.consumer import ConsumerContext, subscribe
from shared.runtime import ServiceRuntime
from shared.settings import KafkaSettings

# Distinct from each other and from the defaults, so a swapped or ignored setting shows.
KAFKA = KafkaSettings(fetch_max_wait_ms=17, follower_fetch_max_wait_ms=733)


def _waits(broker: KafkaBroker) -> dict[str, int]:
    # faststream keeps the aiokafka consumer's arguments until it starts (pinned version).
    return {
        s.group_id: s._connection_args["fetch_max_wait_ms"]  # type: ignore[attr-defined]
        for s in broker.subscribers
    }


async def _never(tx: object, events: object) -> None:
    raise AssertionError("nothing is consumed here")


def test_a_follower_polls_with_the_follower_wait_and_the_forward_path_with_its_own():
    broker = KafkaBroker("127.0.0.1:1")
    ctx = ConsumerContext(service="probe", pool=None, kafka=KAFKA)  # type: ignore[arg-type]
    subscribe(broker, ctx, "reports", "forward", _never)
    subscribe(broker, ctx, "scores", "follower", _never, follower=True)
    assert _waits(broker) == {"forward": 17, "follower": 733}


def test_the_defaults_keep_the_forward_path_under_the_follower_wait():
    defaults = KafkaSettings()
    assert defaults.fetch_max_wait_ms <= 25, "a forward hop's latency floor on the dev broker"
    assert defaults.follower_fetch_max_wait_ms >= 250


def _services() -> list[ServiceRuntime]:
    kafka = {"kafka": KAFKA}
    return [
        build_intake(IntakeSettings(**kafka)),
        build_dispatch(DispatchSettings(**kafka)),
        build_supervision(SupervisionSettings(**kafka)),
        # Reference data is read at start, not when building.
        build_scoring(ScoringSettings(reference_data_dir="/no/such/folder", **kafka)),
    ]


def test_only_a_report_becoming_a_case_and_a_case_reaching_its_department_are_forward():
    waits: dict[str, int] = {}
    for runtime in _services():
        ctx = ConsumerContext(
            service=runtime.settings.service_name,
            pool=None,  # type: ignore[arg-type]
            kafka=KAFKA,
            topic_prefix=runtime.settings.topic_prefix,
        )
        runtime.subscribe_all(ctx)
        waits |= _waits(runtime.broker)
    forward = {group for group, wait in waits.items() if wait == 17}
    followers = {group for group, wait in waits.items() if wait == 733}
    assert forward == {"intake", "dispatch.cases"}
    assert followers == {
        "intake.followers",
        "dispatch.followers",
        "supervision",
        "scoring",
    }
