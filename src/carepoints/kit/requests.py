"""Request context: the request id, request metrics and the access log.

Every HTTP request gets an id: the caller's `X-Request-Id` when it is a
plausible one (at most 64 characters of [A-Za-z0-9._-]), else a new UUIDv7.
It is kept in a context variable (the JSON log formatter adds it to every
line logged while the request runs), in `scope["state"]["request_id"]` (for
the audit middleware) and echoed as the `X-Request-Id` response header.

After the answer, one access-log line at info (method, route template,
status, duration, request id; never the raw path, query string, body or
headers, which can carry ids of patients or PII) and the request metrics.
`RequestContext` does this for the FastAPI app; `kit.fastpath` does the same
inline for its lean routes."""

from __future__ import annotations

import logging
import re
from contextvars import ContextVar
from time import perf_counter

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from carepoints.kit import metrics
from carepoints.kit.ids import new_id

REQUEST_ID: ContextVar[str | None] = ContextVar("carepoints_request_id", default=None)
HEADER = b"x-request-id"
_VALID = re.compile(r"[A-Za-z0-9._-]{1,64}")

access_log = logging.getLogger("carepoints.access")
_ACCESS = "%s %s %d %.1fms"


def accept_request_id(value: str | bytes | None) -> str:
    """The caller's request id when it is a valid one, else a new id."""
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if value and _VALID.fullmatch(value):
        return value
    return new_id()


def route_template(scope: Scope) -> str:
    """The matched route's template (`/api/v1/patients/{patient_id}`), or "other".
    FastAPI resolves the routes of included routers lazily and puts the route itself
    (its path without the routers' prefixes) in scope["route"] and the route as included
    (the full template) in its own part of the scope; Starlette has only scope["route"]."""
    fastapi = scope.get("fastapi")
    for candidate in ((fastapi.get("effective_route_context") if isinstance(fastapi, dict) else None),
                      scope.get("route")):
        if candidate is None:
            continue
        path = getattr(candidate, "path_format", None) or getattr(candidate, "path", None)
        if isinstance(path, str) and path:
            return path
    return metrics.OTHER


def finish(probe: metrics.RouteMetrics, status: int, started: float, request_id: str, log: bool) -> None:
    """Record one answered request: metrics, then the access-log line."""
    seconds = perf_counter() - started
    probe.record(status, seconds)
    if log and access_log.isEnabledFor(logging.INFO):
        # The record is built here rather than by `access_log.info(..., extra=...)`, which looks
        # up the caller's frame and file name for every line: a third of the line's cost.
        ms = seconds * 1000.0
        record = logging.LogRecord(access_log.name, logging.INFO, __file__, 0, _ACCESS, (
            probe.method, probe.route, status, ms), None)
        record.__dict__.update(method=probe.method, route=probe.route, status=status,
                               duration_ms=round(ms, 3), request_id=request_id)
        access_log.handle(record)


class RequestContext:
    """ASGI middleware: request id, request metrics and the access log (see module)."""

    def __init__(self, app: ASGIApp, access: bool = True) -> None:
        self.app = app
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        incoming = next((v for k, v in scope["headers"] if k == HEADER), None)
        request_id = accept_request_id(incoming)
        raw_id = request_id.encode("ascii")
        scope.setdefault("state", {})["request_id"] = request_id
        token = REQUEST_ID.set(request_id)
        status = 500  # unless an answer starts: an exception the app's last handler answers

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (HEADER, raw_id)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            finish(metrics.route(scope.get("method", ""), route_template(scope)), status, started, request_id,
                   self.access)
            REQUEST_ID.reset(token)
