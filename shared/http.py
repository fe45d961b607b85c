"""What every service's HTTP side shares: /healthz, /readyz, /metrics, and a body-size limit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ReadinessCheck = Callable[[], Awaitable[dict[str, bool]]]


def add_operational_routes(app: FastAPI, readiness: ReadinessCheck) -> None:
    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        # Alive: the event loop answers. Dependencies are /readyz's business.
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> Response:
        checks = await readiness()
        ready = all(checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status_code=200 if ready else 503,
        )

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


#: Renders the 413 in the service's own problem shape: (ASGI scope, the limit) -> response.
TooLarge = Callable[[Scope, int], Response]


class _BodyTooLarge(Exception):
    """Raised from ``receive`` once a streamed body passes the limit."""


def _too_large(scope: Scope, limit: int) -> Response:
    return JSONResponse(
        {
            "detail": {
                "code": "body_too_large",
                "field": "body",
                "message": f"request body exceeds the limit of {limit} bytes",
            }
        },
        status_code=413,
    )


class BodyLimit:
    """Refuses a request body over ``limit`` bytes with a 413, before it is all read.

    A declared ``Content-Length`` over the limit is refused without reading a
    byte; a body without one (chunked) is counted as it streams and refused the
    moment it passes the limit, so no handler ever holds more than the limit in
    memory. Whatever the app answered to the truncated body is discarded.
    """

    def __init__(self, app: ASGIApp, limit: int, render: TooLarge | None = None) -> None:
        self.app = app
        self.limit = limit
        self.render = render or _too_large

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await self.render(scope, self.limit)(scope, receive, send)
                return
        seen = 0
        overflow = False
        started = False

        async def counting_receive() -> Message:
            nonlocal seen, overflow
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    overflow = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if overflow:
                return  # the app's answer to a body it never fully got
            started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except _BodyTooLarge:
            pass
        except Exception:
            if not overflow:
                raise
        if overflow and not started:
            await self.render(scope, self.limit)(scope, receive, send)


def limit_request_bodies(app: FastAPI, limit: int, render: TooLarge | None = None) -> None:
    """Cap every request body of ``app`` at ``limit`` bytes (HTTP_MAX_BODY_BYTES)."""
    app.add_middleware(BodyLimit, limit=limit, render=render)
