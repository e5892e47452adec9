"""A lean ASGI route for the hottest endpoints.

Event ingest answers in well under a millisecond of its own work, and the
framework's routing, dependency solving and middleware stack cost more
than that per request (profiled under single-event load: the event loop
thread was saturated by them). `FastPath` sits in front of the app and
hands exactly the listed `(method, path)` pairs to a plain async handler;
everything else, including the same path with another method, goes on to
the app. The FastAPI route of each such path stays the documented
(OpenAPI) and tested equivalent: both call the same handler code.

Handlers receive the request headers (lower-case names; a signed request
also gets the pseudo-header `:target`, see `request_target`) and the body, and
return a `JSON` response; an `AppError` becomes its error response and
anything else a logged 500, as the app's own error handlers do. Request id,
request metrics and the access log as `kit.requests.RequestContext` gives
the app, with each route's metric children bound here once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from time import perf_counter

from starlette.types import ASGIApp, Receive, Scope, Send

from carepoints.kit import metrics, requests
from carepoints.kit.errors import AppError, PayloadTooLargeError
from carepoints.kit.web import JSON, crash_response, error_response

Handler = Callable[[Mapping[str, str], bytes], Awaitable[JSON]]
MAX_BODY = 16 * 1024 * 1024  # a batch of 1000 events with long review texts fits many times over
SIGNED_HEADER = "x-carepoints-signature"


def request_target(scope: Scope) -> str:
    """The request target as sent: the raw (not percent-decoded) path, plus "?query" if any."""
    raw = scope.get("raw_path") or scope["path"].encode("utf-8")
    path = bytes(raw).split(b"?", 1)[0].decode("latin-1")
    query = bytes(scope.get("query_string", b"")).decode("latin-1")
    return f"{path}?{query}" if query else path



class FastPath:
    def __init__(self, app: ASGIApp, routes: Mapping[tuple[str, str], Handler], max_body: int = MAX_BODY,
                 *, access_log: bool = True) -> None:
        self.app = app
        self.routes = dict(routes)
        self.max_body = max_body
        self.access_log = access_log
        self.probes = {key: metrics.route(*key) for key in self.routes}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self.routes.get((scope.get("method", ""), scope.get("path", ""))) \
            if scope["type"] == "http" else None
        if handler is None:
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if SIGNED_HEADER in headers:  # a signed request (security.signing) also signs its target
            headers[":target"] = request_target(scope)
        request_id = requests.accept_request_id(headers.get("x-request-id"))
        token = requests.REQUEST_ID.set(request_id)
        try:
            body = await self._body(receive)
            response = await handler(headers, body)
        except AppError as exc:
            response = error_response(exc)
        except Exception as exc:
            response = crash_response(exc, scope["method"], scope["path"])
        response.raw_headers.append((requests.HEADER, request_id.encode("ascii")))
        try:
            await response(scope, receive, send)
        finally:
            requests.finish(self.probes[(scope["method"], scope["path"])], response.status_code, started,
                            request_id, self.access_log)
            requests.REQUEST_ID.reset(token)

    async def _body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _ClientGoneError()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise PayloadTooLargeError()
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


class _ClientGoneError(AppError):
    code = "request.disconnected"
    status_code = 400
    message = "客户端已断开 / The client disconnected"
