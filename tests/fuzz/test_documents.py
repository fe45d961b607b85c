"""Hostile documents: oversized bodies on every service, XML attacks and floods on Open311.

Each must be refused with a specific 4xx, quickly, without the body being held
in memory (traced with tracemalloc) and without a row written. Intake takes no
XML request bodies (Open311 POST is form-encoded), so an XML document is
refused by its content type before any parser could expand an entity.
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import AsyncIterator
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.auth import HEADER
from tests.fuzz.budget import fuzz_settings
from tests.fuzz.conftest import OPEN311_KEY, SERVICES, Service
from tests.fuzz.problems import check, reasons_of
from tests.integration.keys import CENTRE, dev_key

CHUNK = b"x" * 65_536

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<service_request><service_code>&lol9;</service_code><api_key>dev-channel-open311</api_key></service_request>"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<service_request><service_code>C0101</service_code><description>&xxe;</description></service_request>"""
XXE_PARAMETER = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY % remote SYSTEM "http://127.0.0.1:1/evil.dtd"> %remote;]><r/>"""
DTD = b"""<?xml version="1.0"?><!DOCTYPE r SYSTEM "http://127.0.0.1:1/r.dtd"><r>1</r>"""
DEEP = b"<a>" * 100_000 + b"</a>" * 100_000
ATTACKS = {
    "billion laughs": BILLION_LAUGHS,
    "external entity": XXE,
    "parameter entity": XXE_PARAMETER,
    "external DTD": DTD,
    "deeply nested": DEEP,
}


async def stream(total: int) -> AsyncIterator[bytes]:
    """A chunked body of ``total`` bytes that is never whole in memory."""
    sent = 0
    while sent < total:
        yield CHUNK
        sent += len(CHUNK)


#: The key each service's write endpoint's real caller holds.
WRITE_KEY = {
    "intake": dev_key("channel", "citizen_app"),
    "dispatch": dev_key("centre", CENTRE),
    "supervision": dev_key("centre", CENTRE),
    "scoring": dev_key("centre", CENTRE),
}


def write_path(name: str) -> str:
    return {
        "intake": "/v1/reports",
        "dispatch": "/v1/cases/01M7KGZ4R0AAAAAAAAAAAAAAC1/dispatch",
        "supervision": "/v1/overdue",
        "scoring": "/v1/scores",
    }[name]


@pytest.mark.parametrize("name", SERVICES)
async def test_a_declared_oversized_body_is_413_before_it_is_read(offline, name):
    service: Service = offline[name]
    limit = service.runtime.settings.http_max_body_bytes
    before = await service.row_counts(plumbing=True)
    async with service.http() as http:
        response = await http.post(
            write_path(name),
            content=b"{" + b" " * limit + b"}",
            headers={"content-type": "application/json"},
        )
    assert check(response, f"{name} oversized body") == 413
    assert any(str(limit) in r for r in reasons_of(response)), reasons_of(response)
    assert await service.row_counts(plumbing=True) == before


@pytest.mark.parametrize("name", SERVICES)
async def test_a_streamed_flood_is_cut_off_at_the_limit_without_holding_it(offline, name):
    service: Service = offline[name]
    total = 32 * 1024 * 1024
    async with service.http() as http:
        tracemalloc.start()
        started = time.perf_counter()
        try:
            response = await http.post(
                write_path(name),
                content=stream(total),
                headers={"content-type": "application/json", HEADER: WRITE_KEY[name]},
                # The suite's key-from-body auth reads a body whole to find the key; this
                # request carries its key, and its body must stay a stream.
                auth=None,
            )
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    elapsed = time.perf_counter() - started
    status = check(response, f"{name} streamed flood")
    # A read-only service refuses the method without reading the body at all.
    assert status == (413 if name in ("intake", "dispatch") else 405), status
    # The app saw at most the limit plus a chunk; 32 MiB held anywhere would show here.
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes while refusing a {total}-byte body"
    assert elapsed < 5, elapsed


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize("attack", sorted(ATTACKS))
@pytest.mark.parametrize(
    "content_type", ["application/xml", "text/xml", "application/x-www-form-urlencoded"]
)
async def test_open311_refuses_xml_attacks_quickly(offline, attack, fmt, content_type):
    service: Service = offline["intake"]
    document = ATTACKS[attack]
    before = await service.row_counts(plumbing=True)
    async with service.http() as http:
        tracemalloc.start()
        started = time.perf_counter()
        try:
            response = await http.post(
                f"/open311/v2/requests.{fmt}",
                content=document,
                headers={"content-type": content_type},
            )
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    elapsed = time.perf_counter() - started
    status = check(response, f"intake open311 xml {attack}")
    assert 400 <= status < 500
    if content_type != "application/x-www-form-urlencoded":
        assert status in (413, 415), status  # refused by type (or size), never parsed
    assert b"root:" not in response.content  # nothing of /etc/passwd came back
    assert elapsed < 2, f"{attack}: {elapsed:.2f}s"
    assert peak < 16 * 1024 * 1024, f"{attack}: peak {peak} bytes"
    assert await service.row_counts(plumbing=True) == before


@pytest.mark.parametrize("attack", sorted(ATTACKS))
async def test_the_native_api_refuses_xml_attacks(offline, attack):
    service: Service = offline["intake"]
    before = await service.row_counts(plumbing=True)
    async with service.http() as http:
        for content_type in ("application/xml", "application/json"):
            response = await http.post(
                "/v1/reports", content=ATTACKS[attack], headers={"content-type": content_type}
            )
            assert 400 <= check(response, f"intake /v1/reports xml {attack}") < 500
    assert await service.row_counts(plumbing=True) == before


xml_names = st.sampled_from(["service_request", "service_code", "api_key", "lat", "a", "x:y"])


@st.composite
def xml_documents(draw: st.DrawFn) -> bytes:
    """Random XML-ish documents: declarations, DTDs, entities, nesting, odd bytes."""
    depth = draw(st.integers(min_value=0, max_value=3_000))
    name = draw(xml_names)
    entities = draw(
        st.lists(
            st.tuples(st.text("abc", min_size=1, max_size=3), st.text(max_size=20)), max_size=3
        )
    )
    dtd = "".join(f'<!ENTITY {n} "{v}">' for n, v in entities)
    parts = [
        draw(
            st.sampled_from(
                ['<?xml version="1.0"?>', '<?xml version="1.1" encoding="utf-16"?>', ""]
            )
        ),
        f"<!DOCTYPE {name} [{dtd}]>" if entities else "",
        f"<{name}>" * depth,
        draw(st.text(max_size=50)),
        "".join(f"&{n};" for n, _ in entities),
        f"</{name}>" * depth,
    ]
    return "".join(parts).encode() + draw(st.binary(max_size=20))


@fuzz_settings(40)
@given(
    document=xml_documents(),
    fmt=st.sampled_from(["json", "xml"]),
    content_type=st.sampled_from(
        ["text/xml", "application/xml", "application/x-www-form-urlencoded", ""]
    ),
    with_key=st.booleans(),
)
async def test_open311_any_xml_document_is_a_specific_4xx(
    offline, document, fmt, content_type, with_key
):
    service: Service = offline["intake"]
    if with_key:
        document = urlencode({"api_key": OPEN311_KEY}).encode() + b"&" + document
    before = await service.row_counts(plumbing=True)
    headers = {"content-type": content_type} if content_type else {}
    async with service.http() as http:
        started = time.perf_counter()
        response = await http.post(f"/open311/v2/requests.{fmt}", content=document, headers=headers)
    assert time.perf_counter() - started < 2
    status = check(response, "intake open311 xml documents")
    assert status >= 400, response.text[:300]
    assert await service.row_counts(plumbing=True) == before
