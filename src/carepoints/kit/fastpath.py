"""A lean ASGI route for the hottest endpoints.

Event ingest answers in well under a millisecond of its own work, and the
framework's routing, dependency solving and middleware stack cost more
than that per request (profiled under single-event load: the event loop
thread was saturated by them). `FastPath` sits in front of the app and
hands exactly the listed `(method, path)` pairs to a plain async handler;
everything else, including the same path with another method, goes on to
the app. The FastAPI route of each such path stays the documented
(OpenAPI) and tested equivalent: both call the same handler code.

Handlers receive the request headers (lower-case names) and the body, and
return a `JSON` response; an `AppError` becomes its error response and
anything else a logged 500, as the app's own error handlers do."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.types import ASGIApp, Receive, Scope, Send

from carepoints.kit.errors import AppError, PayloadTooLargeError
from carepoints.kit.web import JSON, crash_response, error_response

Handler = Callable[[Mapping[str, str], bytes], Awaitable[JSON]]
MAX_BODY = 16 * 1024 * 1024  # a batch of 1000 events with long review texts fits many times over



class FastPath:
    def __init__(self, app: ASGIApp, routes: Mapping[tuple[str, str], Handler], max_body: int = MAX_BODY) -> None:
        self.app = app
        self.routes = dict(routes)
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self.routes.get((scope.get("method", ""), scope.get("path", ""))) \
            if scope["type"] == "http" else None
        if handler is None:
            await self.app(scope, receive, send)
            return
        try:
            body = await self._body(receive)
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            response = await handler(headers, body)
        except AppError as exc:
            response = error_response(exc)
        except Exception as exc:
            response = crash_response(exc, scope["method"], scope["path"])
        await response(scope, receive, send)

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
