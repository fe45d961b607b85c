"""No citizen's name or phone leaves intake: the four services run a few cases end to end on
the real broker, then every topic (dead-letter topics too) is read back byte for byte.

The contract test (tests/contract/test_privacy_and_routing.py) proves no event *type* has a
field for contact data; this one proves no published *byte* carries it, in any of the
encodings a leak would take: UTF-8, JSON's ``\\u`` escapes, UTF-16, GBK, URL and base64.
The only records allowed to hold contact data are the ones the test itself put on
``reports`` as a channel (and their verbatim copies in ``reports.dlq``).
"""

from __future__ import annotations

import base64
import json
import uuid
from urllib.parse import quote, urlencode

import asyncpg
import httpx
from aiokafka.admin import AIOKafkaAdminClient

from services.dispatch.app import build as build_dispatch
from services.dispatch.settings import Settings as DispatchSettings
from services.intake.app import build as build_intake
from services.scoring.app import build as build_scoring
from shared.db import ident
from shared.dbroles import owner_role, runtime_role
from shared.events.envelope import PoisonMessage, decode, encode
from shared.kafka import client_options, ensure_topics
from shared.reference import load_reference
from shared.topics import all_topics
from tests.integration.conftest import service_settings
from tests.integration.helpers import as_role, eventually, produce, read_topic
from tests.integration.intake.conftest import cell, intake_settings, report, submitted
from tests.integration.keys import KeyFromBody, as_, dev_key
from tests.integration.scoring.conftest import scoring_settings
from tests.integration.supervision import support

#: Contact data as citizens give it; each must never be published by a service.
HTTP_CITIZEN = {"name": "欧阳娜娜", "phone": "13987654321"}
OPEN311_CITIZEN = {"first_name": "Zhuge", "last_name": "Kongmingxyz", "phone": "13876543210",
                   "email": "kongming.zhuge@example.org"}  # fmt: skip
KAFKA_CITIZEN = {"name": "司马懿文", "phone": "13765432109"}
REJECTED_CITIZEN = {"name": "诸葛亮明", "phone": "13654321098"}
POISON_CITIZEN = {"name": "上官婉儿", "phone": "13543210987"}


def secrets_of_citizens() -> list[str]:
    values = [*HTTP_CITIZEN.values(), *KAFKA_CITIZEN.values(), *REJECTED_CITIZEN.values()]
    values += [*POISON_CITIZEN.values(), *OPEN311_CITIZEN.values()]
    values.append(f"{OPEN311_CITIZEN['first_name']} {OPEN311_CITIZEN['last_name']}")
    return values


def encodings(value: str) -> set[bytes]:
    """The byte patterns ``value`` takes in the encodings a leak would plausibly use."""
    escaped = json.dumps(value)[1:-1]  # \u escapes for non-ASCII
    found = {
        value.encode(),
        escaped.encode(),
        escaped.upper().replace("\\U", "\\u").encode(),
        value.encode("utf-16-le"),
        value.encode("utf-16-be"),
        quote(value).encode(),
        quote(value, safe="").lower().encode(),
        base64.b64encode(value.encode()).rstrip(b"="),
    }
    try:
        found.add(value.encode("gbk"))
    except UnicodeEncodeError:
        pass
    return {p for p in found if len(p) >= 4}


def test_the_scan_recognises_every_encoding() -> None:
    name = HTTP_CITIZEN["name"]
    leaks = [
        json.dumps({"n": name}).encode(),  # ensure_ascii: \\u6b27...
        json.dumps({"n": name}, ensure_ascii=False).encode(),
        name.encode("gbk"),
        f"name={quote(name)}".encode(),
        base64.b64encode(name.encode()),
    ]
    for leak in leaks:
        assert any(p in leak for p in encodings(name)), leak


def _leaks(blob: bytes, patterns: dict[str, set[bytes]]) -> list[str]:
    return [value for value, forms in patterns.items() if any(p in blob for p in forms)]


async def test_no_topic_carries_a_citizens_name_or_phone(
    prefix: str, database_url: str, bootstrap: str
) -> None:
    ref = load_reference()
    topics = all_topics(prefix, partitions=1, dlq_partitions=1)

    # Each service runs as its least-privileged runtime role, as in production.
    def runs_as(service: str) -> str:
        return as_role(database_url, runtime_role(f"{prefix}{service}"))

    owner = {"database_migration_url": database_url}
    intake_s = intake_settings(prefix, runs_as("intake"), bootstrap, **owner)
    await ensure_topics(intake_s.kafka, {t.name: t.partitions for t in topics})
    dispatch_s = DispatchSettings.model_validate(
        service_settings("dispatch", prefix, runs_as("dispatch"), bootstrap, **owner).model_dump()
    )
    runtimes = [
        build_intake(intake_s),
        build_dispatch(dispatch_s),
        support.runtime(prefix, runs_as("supervision"), bootstrap, **owner),
        build_scoring(scoring_settings(prefix, runs_as("scoring"), bootstrap, **owner)),
    ]
    for runtime in runtimes:
        await runtime.start()
    produced: list[bytes] = []
    try:
        intake = runtimes[0]
        assert intake.app is not None
        transport = httpx.ASGITransport(app=intake.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://intake", auth=KeyFromBody()
        ) as http:
            # 1. A citizen's app report over the native API, with a call-back contact.
            lat, long = cell(ref, "32050800200201").centre
            filed = await http.post(
                "/v1/reports",
                json={
                    "channel": "citizen_app",
                    "external_id": f"privacy-{uuid.uuid4().hex[:8]}",
                    "category_code": "E0405",
                    "description": "共享单车乱停放",
                    "location": {"lat": lat, "long": long},
                    "media_urls": ["https://media.example.org/a.jpg"],
                    "reporter": HTTP_CITIZEN,
                },
            )
            assert filed.status_code == 201, filed.text
            case_id = filed.json()["case_id"]
            # 2. An Open311 client's request with the citizen's name, phone and e-mail.
            lat2, long2 = cell(ref, "32050800400301").centre
            form = {
                "api_key": dev_key("channel", "open311"),
                "service_code": "C0114",
                "lat": str(lat2),
                "long": str(long2),
                "description": "street light out",
                "media_url": "https://media.example.org/lamp.jpg",
                "attribute[lamp_problem]": "out",
                **OPEN311_CITIZEN,
            }
            posted = await http.post(
                "/open311/v2/requests.json",
                content=urlencode(form),
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
            assert posted.status_code == 201, posted.text
            # 3-5. A hotline gateway's reports on Kafka: filed, rejected, and not a report at all.
            kafka_report = report(grid_code="32050800300301", reporter=KAFKA_CITIZEN)
            rejected = report(
                category_code="C0101", grid_code="32050800300302", media_urls=[],
                reporter=REJECTED_CITIZEN,
            )  # fmt: skip
            for data in (kafka_report, rejected):
                envelope = submitted(data)
                produced.append(encode(envelope))
                await produce(intake_s.kafka, prefix + "reports", [envelope])
            poison = json.dumps(
                {"specversion": "1.0", "type": "report.submitted", "id": "p-1",
                 "data": {"reporter": POISON_CITIZEN}},
                ensure_ascii=False,
            ).encode()  # fmt: skip
            produced.append(poison)
            await produce(intake_s.kafka, prefix + "reports", [poison])

            # The case travels: dispatched, signed for, handled, verified, closed.
            async def assigned():
                return [
                    e for e in await _events(intake_s, prefix + "assignments")
                    if e.subject == case_id
                ]  # fmt: skip

            (dispatched,) = await eventually(assigned, bool, what="case dispatched")
            department = dispatched.data.department
            url = f"/v1/cases/{case_id}/events"
            for body, key in (
                ({"type": "accepted", "actor_id": "d-1"}, as_("department", department)),
                ({"type": "handled", "actor_id": "d-1"}, as_("department", department)),
                ({"type": "verified", "actor_id": "inspector-07"}, as_("centre")),
            ):
                await eventually(
                    lambda: http.get(f"/v1/cases/{case_id}"),
                    lambda r: r.json()["department"] == department,
                    what="intake knows the dispatch",
                )
                sent = await http.post(url, json=body, headers=key)
                assert sent.status_code == 202, sent.text

        async def closed():
            return [
                e for e in await _events(intake_s, prefix + "supervision")
                if e.subject == case_id and e.type == "case.closed"
            ]  # fmt: skip

        await eventually(closed, bool, what="supervision closed the case")

        async def rejected_and_dead_lettered():
            cases = await _events(intake_s, prefix + "cases")
            dlq = await read_topic(intake_s.kafka, prefix + "reports.dlq", seconds=1)
            return [e.type for e in cases if e.type == "report.rejected"], dlq

        await eventually(
            rejected_and_dead_lettered,
            lambda found: bool(found[0]) and bool(found[1]),
            what="the rejection and the dead letter",
        )
        for runtime in runtimes:
            async with runtime.db.acquire() as conn:
                assert await conn.fetchval("SELECT current_user") == runtime_role(runtime.schema)
    finally:
        for runtime in reversed(runtimes):
            await runtime.stop()
        await drop_schemas_and_roles(database_url, [r.schema for r in runtimes])

    # Every topic the services use, each read back from the start.
    admin = AIOKafkaAdminClient(**client_options(intake_s.kafka))
    await admin.start()
    try:
        present = {t for t in await admin.list_topics() if t.startswith(prefix)}
    finally:
        await admin.close()
    assert {t.name for t in topics} <= present
    patterns = {value: encodings(value) for value in secrets_of_citizens()}
    counts: dict[str, int] = {}
    leaks: list[str] = []
    for topic in sorted(present):
        records = await read_topic(intake_s.kafka, topic, seconds=2)
        counts[topic.removeprefix(prefix)] = len(records)
        for record in records:
            blob = b"".join(
                [record.key or b"", record.value or b""]
                + [k.encode() + v for k, v in record.headers]
            )
            found = _leaks(blob, patterns)
            channel_input = topic in (prefix + "reports", prefix + "reports.dlq")
            if found and not (channel_input and record.value in produced):
                leaks.append(f"{topic}@{record.offset}: {found}")
            if found and channel_input and topic.endswith(".dlq"):
                # A dead letter is the channel's message verbatim; its error headers
                # (which a service writes) must not quote it.
                header_blob = b"".join(v for _, v in record.headers)
                assert not _leaks(header_blob, patterns), (topic, record.headers)
    assert leaks == [], f"contact data published: {leaks}"
    # Not vacuous: the scan read the traffic it was meant to.
    for topic in ("reports", "reports.dlq", "cases", "assignments", "feedback", "supervision"):
        assert counts.get(topic, 0) >= 1, (topic, counts)


async def drop_schemas_and_roles(database_url: str, schemas: list[str]) -> None:
    admin = await asyncpg.connect(database_url)
    try:
        for schema in schemas:
            await admin.execute(f"DROP SCHEMA IF EXISTS {ident(schema)} CASCADE")
            for role in (runtime_role(schema), owner_role(schema)):
                await admin.execute(f"DROP ROLE IF EXISTS {ident(role)}")
    finally:
        await admin.close()


async def _events(settings, topic: str):
    out = []
    for record in await read_topic(settings.kafka, topic, seconds=1):
        try:
            out.append(decode(record.value))
        except PoisonMessage:
            continue
    return out
