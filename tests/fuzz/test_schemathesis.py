"""schemathesis against every service's OpenAPI document, in-process (ASGI) on the real Postgres.

Each operation of each document gets schemathesis-made requests, valid ones
(positive) and invalid ones (negative); every response must not be a server
error, must have a status the document declares, its declared content type,
and a body that conforms to the declared schema; an invalid request must be
refused. The requests go through the fuzz suite's client (its headers), to the
started services of the ``offline`` fixture.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import given
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from shared.auth import HEADER
from shared.openapi import document
from tests.fuzz.budget import COUNTS, fuzz_settings
from tests.fuzz.conftest import SERVICES, Service

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def operations() -> list[tuple[str, str, st.SearchStrategy]]:
    found = []
    for service in SERVICES:
        doc = document(service)
        assert doc is not None
        schema = schemathesis.openapi.from_dict(doc)
        for result in schema.get_all_operations():
            operation = result.ok()
            # Valid and invalid requests in one run: an operation whose parameters are
            # free text has no invalid ones, and its negative draws are simply rejected.
            cases = st.one_of(
                operation.as_strategy(GenerationMode.POSITIVE),
                operation.as_strategy(GenerationMode.NEGATIVE),
            )
            found.append((service, operation.label, cases))
    return found


OPERATIONS = operations()


@pytest.mark.parametrize(
    ("name", "label", "cases"), OPERATIONS, ids=[f"{s}:{label}" for s, label, _ in OPERATIONS]
)
@fuzz_settings(40)
@given(data=st.data())
async def test_every_operation_conforms_to_its_document(offline, name, label, cases, data):
    service: Service = offline[name]
    case = data.draw(cases, label="case")
    kwargs = case.as_transport_kwargs(base_url=f"http://{name}.test")
    # From the requests-style arguments schemathesis makes to httpx's.
    # A key schemathesis makes up would stop every case at authentication; the suite's
    # client puts on the key the endpoint's real caller holds (keys: tests/integration).
    dropped = {"connection", HEADER.lower()}
    headers = {k: v for k, v in kwargs["headers"].items() if k.lower() not in dropped}
    cookies = kwargs.pop("cookies", None) or {}
    if cookies:
        headers["cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    kwargs["headers"] = headers
    if isinstance(kwargs.get("data"), bytes | str):
        kwargs["content"] = kwargs.pop("data")
    async with service.http() as http:
        response = await http.request(**kwargs)
    negative = case.meta is not None and case.meta.generation.mode is GenerationMode.NEGATIVE
    checks = [*CHECKS, negative_data_rejection] if negative else CHECKS
    case.validate_response(response, checks=checks)
    COUNTS[f"schemathesis {name} {label} {'negative' if negative else 'positive'}"] += 1
