"""What a refusal must look like: a 4xx whose body says which field or what reason, never a 5xx.

Each service has its problem shape: intake ``{message, reasons[]}``, Open311
a list of ``{code, description}`` (or ``<errors>`` in XML), dispatch
``{detail: {code, field, message}}``, FastAPI's validation ``{detail: [{loc,
msg}]}`` and plain ``{detail: "..."}`` for an unknown case or route.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

import httpx

from tests.fuzz.budget import COUNTS


def reasons_of(response: httpx.Response) -> list[str]:
    """The reasons a 4xx gives, as text; empty if it gives none."""
    kind = response.headers.get("content-type", "")
    if "xml" in kind:
        root = ET.fromstring(response.content)
        return [d.text or "" for d in root.iter("description")]
    body: Any = json.loads(response.content)
    if isinstance(body, list):  # Open311 errors
        return [str(e.get("description") or "") for e in body if isinstance(e, dict)]
    if not isinstance(body, dict):
        return []
    if "message" in body:  # intake's Problem
        found = [str(body["message"])]
        for reason in body.get("reasons") or []:
            found.append(f"{reason.get('code')} {reason.get('field')}: {reason.get('message')}")
        return found
    detail = body.get("detail")
    if isinstance(detail, str):
        return [detail]
    if isinstance(detail, dict):  # dispatch's Problem
        return [f"{detail.get('code')} {detail.get('field')}: {detail.get('message')}"]
    if isinstance(detail, list):  # FastAPI validation
        return [
            f"{'.'.join(str(p) for p in d.get('loc', ()))}: {d.get('msg')}"
            for d in detail
            if isinstance(d, dict)
        ]
    return []


def check(response: httpx.Response, surface: str) -> int:
    """Fail on a 5xx or on a 4xx without a specific reason; count the status per surface."""
    status = response.status_code
    assert status < 500, f"{surface}: HTTP {status}: {response.text[:500]}"
    if status >= 400:
        reasons = [r for r in reasons_of(response) if r.strip()]
        assert reasons, f"{surface}: HTTP {status} without a reason: {response.text[:500]}"
        if status in (400, 413, 415, 422):
            # A validation refusal names the field or the limit, not just "bad request".
            assert any(len(r) > 12 for r in reasons), (surface, status, reasons)
    COUNTS[f"http {surface} {status}"] += 1
    return status
