"""API keys for tests: a development key for every channel, department and the centre.

Services under test are started with :data:`DEV_API_KEYS` (``API_KEYS``);
:class:`KeyFromBody` puts the key a real caller would hold on each request
that has none: the report's channel, the feedback's department (or the centre
for verification and ratings), the centre for a manual dispatch. A test that
is about keys sends the header itself.
"""

from __future__ import annotations

import json
from collections.abc import Generator

import httpx

from shared.auth import HEADER
from shared.reference import load_reference

CENTRE = "command-centre"
CENTRE_FEEDBACK = {"verified", "verification_failed", "rated"}


def dev_key(kind: str, principal_id: str) -> str:
    return f"dev-{kind}-{principal_id}"


def _spec() -> str:
    ref = load_reference()
    pairs = [("channel", c.id) for c in ref.channels]
    pairs += [("department", d.id) for d in ref.departments]
    pairs.append(("centre", CENTRE))
    return ",".join(f"{kind}:{pid}:{dev_key(kind, pid)}" for kind, pid in pairs)


DEV_API_KEYS = _spec()


def as_(kind: str, principal_id: str = CENTRE) -> dict[str, str]:
    """Headers of a request sent with the development key of ``kind:principal_id``."""
    return {HEADER: dev_key(kind, principal_id)}


def key_for(path: str, body: object) -> str | None:
    """The development key the caller of ``path`` with ``body`` would hold, if it is plain."""
    if not isinstance(body, dict):
        return None
    if path.endswith("/v1/reports") and isinstance(body.get("channel"), str):
        return dev_key("channel", body["channel"])
    if path.endswith("/dispatch"):
        return dev_key("centre", CENTRE)
    if path.endswith("/events"):
        if isinstance(body.get("type"), str) and body["type"] in CENTRE_FEEDBACK:
            return dev_key("centre", CENTRE)
        if isinstance(body.get("department"), str):
            return dev_key("department", body["department"])
    return None


class KeyFromBody(httpx.Auth):
    requires_request_body = True

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if HEADER not in request.headers and request.method == "POST":
            try:
                body = json.loads(request.content or b"null")
            except (ValueError, RecursionError):  # any bytes: the service answers, not this
                body = None
            key = key_for(request.url.path, body)
            # Only a key a header can carry: a made-up id in a fuzzed body may not be ASCII.
            if key is not None and key.isascii() and key.isprintable():
                request.headers[HEADER] = key
        yield request
