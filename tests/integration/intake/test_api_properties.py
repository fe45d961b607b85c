"""Property: no input to intake's HTTP API yields a 500, whatever the body, form, query or path.

The app runs against a started runtime (real Postgres and broker), so the
inputs travel all the way: validation, registration, SQL, the outbox.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from shared.reference import load_reference
from tests.fuzz.budget import examples
from tests.fuzz.problems import check
from tests.integration.keys import dev_key

STATUSES: Counter[str] = Counter()
PROPERTY = settings(
    max_examples=examples(60),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Inside the sample city's grid, and a margin outside it.
LATS = st.floats(min_value=31.28, max_value=31.34, allow_nan=False)
LONGS = st.floats(min_value=120.59, max_value=120.65, allow_nan=False)
CENTRES = [cell.centre for cell in load_reference().cells]
# JSON bodies may carry anything JSON can, lone surrogates and NULs included; a form is
# UTF-8, which cannot.
TEXT = st.text(st.characters(exclude_categories=()), max_size=40)
FORM_TEXT = st.text(max_size=40)
# httpx refuses NaN and infinities in JSON; the raw-bytes property sends them.
FLOATS = st.floats(allow_nan=False, allow_infinity=False)
json_scalars = st.none() | st.booleans() | st.integers() | FLOATS | TEXT
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(strategy, json_values)


reports = st.fixed_dictionaries(
    {
        "channel": maybe(st.sampled_from(["hotline_12345", "inspector", "citizen_app", "ghost"])),
        "external_id": maybe(st.text(min_size=1, max_size=20)),
        "category_code": maybe(st.sampled_from(["C0101", "E0104", "E0505", "E0301", "Z1"])),
        "location": maybe(
            st.fixed_dictionaries(
                {},
                optional={
                    "lat": maybe(LATS),
                    "long": maybe(LONGS),
                    "grid_code": maybe(st.sampled_from(["32050800100101", "32050899999999"])),
                    "address": TEXT,
                },
            )
        ),
    },
    optional={
        "description": maybe(TEXT),
        "attributes": maybe(st.dictionaries(TEXT, json_values, max_size=3)),
        "media_urls": maybe(st.lists(st.just("https://m.example.org/x.jpg") | TEXT, max_size=2)),
        "reported_at": maybe(st.datetimes().map(lambda d: d.isoformat() + "+08:00")),
        "reporter": maybe(st.fixed_dictionaries({}, optional={"name": TEXT, "phone": TEXT})),
        "component_id": maybe(st.text(alphabet="0123456789", min_size=16, max_size=16)),
    },
)

# Mostly valid reports (so registration, duplicates and rejections all run), a field or two off.
likely_reports = st.fixed_dictionaries(
    {
        "channel": st.sampled_from(["hotline_12345", "inspector", "citizen_app"]),
        "external_id": st.text(alphabet="abcdef0123456789", min_size=8, max_size=12),
        "category_code": st.sampled_from(["E0104", "E0105", "E0203", "C0101"]),
        "location": st.sampled_from(CENTRES).map(lambda c: {"lat": c[0], "long": c[1]}),
        "media_urls": st.just(["https://m.example.org/x.jpg"]),
    },
    optional={
        "description": TEXT,
        "attributes": st.dictionaries(st.sampled_from(["cover_damage", "x"]), json_values),
        "reporter": st.fixed_dictionaries({}, optional={"name": TEXT, "phone": TEXT}),
    },
)

feedback = st.fixed_dictionaries(
    {
        "type": maybe(st.sampled_from(["accepted", "handled", "returned", "rated", "verified"])),
        "actor_id": maybe(st.just("ws-1")),
    },
    optional={
        "department": maybe(st.sampled_from(["sanitation", "parks", "nobody"])),
        "reason": maybe(TEXT),
        "rating": maybe(st.sampled_from(["satisfied", "meh"])),
        "note": maybe(TEXT),
        "lookback": json_values,
        "media_urls": json_values,
    },
)

form_fields = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "service_code",
                "lat",
                "long",
                "address_string",
                "address_id",
                "description",
                "media_url",
                "attribute[cover_damage]",
                "attribute[x][]",
                "first_name",
                "phone",
                "external_id",
                "api_key",
            ]
        )
        | FORM_TEXT,
        st.sampled_from(["C0101", "31.31", "120.61", "nan", "1e400", "32050800100101", "missing"])
        | FORM_TEXT,
    ),
    max_size=10,
)


def _json(body: Any) -> dict[str, Any]:
    # httpx would encode as UTF-8, which cannot carry a lone surrogate; JSON's \u escapes can.
    return {
        "content": json.dumps(body).encode(),
        "headers": {"content-type": "application/json"},
    }


def _record(response: httpx.Response, surface: str = "intake") -> None:
    # No 5xx, and every 4xx names its field or reason (the fuzz suite's rule).
    STATUSES[str(check(response, surface))] += 1


_CENTRE = load_reference().cell("32050800200201").centre
#: One report that files and one that cannot, so every run reaches registration and
#: rejection, whatever the random draws (the last test below checks that it did).
_FILABLE = {
    "channel": "citizen_app",
    "external_id": "property-filable",
    "category_code": "E0405",
    "location": {"lat": _CENTRE[0], "long": _CENTRE[1]},
    "media_urls": ["https://media.example.org/a.jpg"],
}
_UNFILABLE = {
    **_FILABLE,
    "external_id": "property-unfilable",
    "category_code": "C0101",
    "media_urls": [],
}


@PROPERTY
@given(body=st.one_of(likely_reports, likely_reports, reports, json_values))
@example(body=_FILABLE)
@example(body=_UNFILABLE)
async def test_post_reports_never_500(stack, body):
    _record(await stack.http.post("/v1/reports", **_json(body)), "intake POST /v1/reports")


@PROPERTY
@given(
    raw=st.binary(max_size=200)
    | st.sampled_from(
        [
            b'{"channel": "inspector", "location": {"lat": NaN, "long": Infinity}}',
            b'{"attributes": {"a": NaN}}',
            b"[" * 5000,
            b'"\\ud800"',
        ]
    )
)
async def test_post_reports_with_any_bytes_never_500(stack, raw):
    response = await stack.http.post(
        "/v1/reports", content=raw, headers={"content-type": "application/json"}
    )
    _record(response, "intake POST raw")


@PROPERTY
@given(case_id=st.text(max_size=30) | st.just("01M7KGZ4R0AAAAAAAAAAAAAAC1"), body=feedback)
async def test_case_routes_never_500(stack, case_id, body):
    path = quote(case_id, safe="")
    _record(await stack.http.get(f"/v1/cases/{path}"), "intake GET /v1/cases/{id}")
    _record(
        await stack.http.post(f"/v1/cases/{path}/events", **_json(body)),
        "intake POST /v1/cases/{id}/events",
    )


@PROPERTY
@given(fields=form_fields, fmt=st.sampled_from(["json", "xml", "csv"]), with_key=st.booleans())
async def test_open311_post_never_500(stack, fields, fmt, with_key):
    if with_key:
        fields = [("api_key", dev_key("channel", "open311")), *fields]
    response = await stack.http.post(
        f"/open311/v2/requests.{fmt}",
        content=urlencode(fields),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    _record(response, "intake open311 POST requests")


@PROPERTY
@given(
    params=st.lists(
        st.tuples(
            st.sampled_from(
                ["service_request_id", "service_code", "start_date", "end_date", "status"]
            )
            | FORM_TEXT,
            st.sampled_from(["open", "closed,open", "2026-11-17T00:00:00Z", "E0104"]) | FORM_TEXT,
        ),
        max_size=5,
    ),
    segment=FORM_TEXT,
    fmt=st.sampled_from(["json", "xml"]) | FORM_TEXT,
)
async def test_open311_reads_never_500(stack, params, segment, fmt):
    query = urlencode(params)
    _record(
        await stack.http.get(f"/open311/v2/requests.{quote(fmt, safe='')}?{query}"),
        "intake open311 GET requests",
    )
    piece, form = quote(segment, safe=""), quote(fmt, safe="")
    for path in (f"requests/{piece}.{form}", f"services/{piece}.{form}", f"discovery.{form}"):
        _record(await stack.http.get(f"/open311/v2/{path}"), "intake open311 GET")


def test_the_properties_reached_the_registration_and_not_only_the_validation():
    # Run after the properties above (file order): they must have filed, merged or rejected
    # some reports, or they only ever tested the schema.
    assert STATUSES["400"] > 0 and STATUSES["404"] > 0
    assert STATUSES["201"] > 0, STATUSES
    assert STATUSES["422"] > 0, STATUSES
