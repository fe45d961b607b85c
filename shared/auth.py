"""Who may call a service's HTTP writes: the ``X-API-Key`` header, its principal, its rate.

One FastAPI dependency per route, made by :func:`require`: no key is a 401,
an unknown or revoked key a 401, a key over its rate a 429 with
``Retry-After``, a key whose principal may not use the route a 403; each with
a Problem body naming the reason. What a principal may do *to a given case*
is the domain's decision (it needs the case); it raises :func:`forbidden`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from fastapi import FastAPI, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, Field

from shared.apikeys import Kind, Principal, key_hash, principal_for
from shared.metrics import HTTP_REFUSED
from shared.ratelimit import RateLimiter

log = logging.getLogger(__name__)

HEADER = "X-API-Key"
_scheme = APIKeyHeader(
    name=HEADER,
    scheme_name="ApiKey",
    description="a key made with `python -m shared.apikeys`; it names a channel, a department "
    "or a centre",
    auto_error=False,
)


class AuthReason(BaseModel):
    code: str
    field: str | None = None
    message: str


class AuthProblem(BaseModel):
    """Why a request was not let in: one readable message and the machine-readable reason."""

    message: str
    reasons: list[AuthReason] = Field(default_factory=list)


class Refused(Exception):
    """A request refused for who sent it; rendered as a Problem by :func:`install`."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        reason = {"code": self.code, "field": HEADER, "message": self.message}
        return JSONResponse(
            {"message": self.message, "reasons": [reason]},
            status_code=self.status,
            headers=self.headers,
        )


def forbidden(code: str, message: str) -> Refused:
    return Refused(403, code, message)


#: OpenAPI ``responses`` for a keyed route.
RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": AuthProblem, "description": "no API key, or an unknown or revoked one"},
    403: {"model": AuthProblem, "description": "the key's principal may not do this"},
    429: {
        "model": AuthProblem,
        "description": "the key is over its rate; retry after Retry-After seconds",
    },
}


class Authenticator:
    """Keys checked against the service's ``access_keys`` table, then against their rate."""

    def __init__(self, db: Callable[[], asyncpg.Pool], limiter: RateLimiter) -> None:
        self._db = db
        self.limiter = limiter

    async def authenticate(self, key: str | None) -> Principal:
        if not key:
            raise Refused(401, "api_key_missing", f"send an API key in the {HEADER} header")
        async with self._db().acquire() as conn:
            principal = await principal_for(conn, key)
            if principal is None:
                raise Refused(401, "api_key_invalid", "the API key is unknown or revoked")
            # Buckets are held by the key's hash, like the keys table: no raw key is stored.
            wait = await self.limiter.take(conn, key_hash(key))
        if wait > 0:
            retry = max(1, math.ceil(wait))
            raise Refused(
                429,
                "rate_limited",
                f"too many requests with this key; retry in {retry} s",
                {"Retry-After": str(retry)},
            )
        return principal


def require(auth: Callable[[], Authenticator], *kinds: Kind) -> Callable[..., Awaitable[Principal]]:
    """A FastAPI dependency: the request's principal, which must be one of ``kinds``."""
    allowed = ", ".join(kinds)

    async def principal(key: str | None = Security(_scheme)) -> Principal:
        found = await auth().authenticate(key)
        if found.kind not in kinds:
            raise forbidden(
                "wrong_principal",
                f"a {found.kind} key ({found}) may not do this; it takes a {allowed} key",
            )
        return found

    return principal


def install(app: FastAPI, service: str) -> None:
    """Render :class:`Refused` as a Problem with its status (and ``Retry-After``), counted."""

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> JSONResponse:
        HTTP_REFUSED.labels(service, str(exc.status), exc.code).inc()
        # Never the key itself: the path and why are enough to spot probing.
        log.info("refused %s %s: %s", request.method, request.url.path, exc.code)
        return exc.response()
