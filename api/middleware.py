"""Request size limits and structured access logs (never with tokens)."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("orchestrator.access")
REQUESTS = Counter(
    "orchestrator_http_requests_total", "HTTP requests", ["method", "route", "status"]
)
LATENCY = Histogram(
    "orchestrator_http_request_seconds", "HTTP request latency", ["method", "route"]
)


class BodyLimit:
    """413 for bodies over `limit` bytes, whether announced by Content-Length or streamed.

    A streamed (chunked) body is counted as the app reads it; past the limit, reading fails,
    and whatever the app answers to a body it could not read (FastAPI: 400) is dropped for the
    413 — unless the app had already started its answer before reading that far.
    """

    def __init__(self, app: ASGIApp, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _too_large(send, self.limit)
            return
        seen = 0
        exceeded = started = False

        async def limited() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                exceeded = True
                raise _TooLarge
            return message

        async def answer(message: Message) -> None:
            nonlocal started
            if exceeded and not started:
                return  # the app's answer to the body it could not read: 413 instead
            started = True
            await send(message)

        try:
            await self.app(scope, limited, answer)
        except Exception:
            if not exceeded or started:
                raise
        if exceeded and not started:
            await _too_large(send, self.limit)


class _TooLarge(Exception):
    pass


async def _too_large(send: Send, limit: int) -> None:
    body = json.dumps(
        {
            "type": "about:blank",
            "title": "Content Too Large",
            "status": 413,
            "detail": f"the request body is limited to {limit} bytes",
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class AccessLog:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            state: Any = scope.get("state", {})
            log_request(scope, _route(scope), status, start, state.get("subject"))


def log_request(scope: Scope, route: str, status: int, start: float, user: str | None) -> None:
    """Count a request in the metrics and write its access log line."""
    elapsed = time.perf_counter() - start
    REQUESTS.labels(scope["method"], route, str(status)).inc()
    LATENCY.labels(scope["method"], route).observe(elapsed)
    if access_log.isEnabledFor(logging.INFO):  # the JSON only if it is logged
        access_log.info(
            json.dumps(
                {
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "ms": round(elapsed * 1000, 1),
                    "user": user,
                    "client": (scope.get("client") or ("-",))[0],
                }
            )
        )


def _route(scope: Scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", "unmatched")
