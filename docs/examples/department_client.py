"""A department's own system on the case stream, with nothing but a stock Kafka client.

It follows the cases dispatched to one department, choosing them by the
``department`` header without parsing anything else, and signs for each one by
publishing a ``case.accepted`` CloudEvent to ``feedback``. It uses only aiokafka
and the standard library: none of this project's code, as a department's IT
team would write it.

    python docs/examples/department_client.py --bootstrap kafka:9092 --department sanitation
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

Event = dict[str, Any]


async def follow(
    bootstrap: str,
    department: str,
    on_event: Callable[[Event], Awaitable[bool]],
    topics: tuple[str, ...] = ("assignments", "supervision"),
    prefix: str = "",
) -> None:
    """Hand each event about ``department``'s cases to ``on_event`` until it returns False.

    One consumer group per department system: several instances of the system
    share the work, and the committed offsets remember where it stopped.
    Offsets are committed after ``on_event`` returns, so nothing is skipped if
    the system crashes; ``on_event`` must therefore tolerate seeing an event
    twice (use the CloudEvent ``id``).
    """
    consumer = AIOKafkaConsumer(
        *(prefix + t for t in topics),
        bootstrap_servers=bootstrap,
        group_id=f"{prefix}department-{department}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=1000)
            for records in batch.values():
                for record in records:
                    headers = {k: v.decode() for k, v in record.headers}
                    if headers.get("department") != department:
                        continue  # not ours: decided from the header alone
                    # Structured mode: the record value is the whole CloudEvent.
                    if not await on_event(json.loads(record.value)):
                        await consumer.commit()
                        return
            await consumer.commit()
    finally:
        await consumer.stop()


async def sign_for(bootstrap: str, case: Event, actor_id: str, prefix: str = "") -> Event:
    """Publish ``case.accepted`` (签收) for a dispatched case; returns the CloudEvent sent."""
    data = case["data"]
    event = {
        "specversion": "1.0",
        "id": uuid.uuid4().hex,
        "source": f"department/{data['department']}",
        "type": "case.accepted",
        "time": datetime.now(UTC).isoformat(),
        "subject": data["case_id"],
        "datacontenttype": "application/json",
        "data": {
            "case_id": data["case_id"],
            "department": data["department"],
            "area": data.get("area"),
            "actor_id": actor_id,
            "actor_role": "department",
            "note": "signed for by the department's system",
        },
    }
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            prefix + "feedback",
            json.dumps(event, ensure_ascii=False).encode(),
            key=data["case_id"].encode(),
            headers=[
                ("content-type", b"application/cloudevents+json"),
                ("ce_type", b"case.accepted"),
                ("ce_id", event["id"].encode()),
                ("department", data["department"].encode()),
            ],
        )
    finally:
        await producer.stop()
    return event


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--department", required=True)
    parser.add_argument("--prefix", default="")
    args = parser.parse_args()

    async def on_event(event: Event) -> bool:
        print(event["type"], event["subject"], event["time"])
        if event["type"] == "case.dispatched":
            await sign_for(
                args.bootstrap, event, actor_id=f"{args.department}-desk", prefix=args.prefix
            )
        return True

    await follow(args.bootstrap, args.department, on_event, prefix=args.prefix)


if __name__ == "__main__":
    asyncio.run(main())
