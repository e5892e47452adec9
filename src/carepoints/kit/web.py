"""HTTP plumbing shared by every domain: JSON responses, the error handlers
that render AppError (and framework errors) as {"error", "detail", "fields"?},
and the authentication dependency."""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from carepoints.kit.errors import AppError, UnauthenticatedError

log = logging.getLogger("carepoints")


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    raise TypeError


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, default=_default, option=orjson.OPT_NON_STR_KEYS)


def error_response(err: AppError) -> JSON:
    headers = {"WWW-Authenticate": "Bearer"} if err.status_code == 401 else {}
    headers.update(getattr(err, "response_headers", None) or {})  # e.g. Retry-After of a 429
    return JSON(err.to_dict(), status_code=err.status_code, headers=headers or None)


def crash_response(exc: BaseException, method: str, path: str) -> JSON:
    """500 for an unexpected exception. Its text can quote row values (PostgreSQL's
    "Failing row contains …"): the log names its type and where it happened, never its message."""
    frames = "".join(traceback.format_tb(exc.__traceback__))
    log.error("unhandled %s on %s %s\n%s", type(exc).__name__, method, path, frames)
    return JSON({"error": "internal.error", "detail": "服务器内部错误 / Internal error"}, status_code=500)


_HTTP_CODES = {404: ("resource.not_found", "未找到 / Not found"),
               405: ("request.method_not_allowed", "不支持该方法 / Method not allowed"),
               401: ("auth.unauthenticated", "需要登录 / Authentication required")}


Render = Callable[[dict[str, Any], int, dict[str, str] | None, Request], Response]
_surfaces: list[tuple[str, Render]] = []


def error_surface(prefix: str, render: Render) -> None:
    """Errors of requests under `prefix` are rendered by `render(body, status, headers, request)`
    (body = {"error", "detail", "fields"?}) instead of as JSON: one handler per surface
    (FHIR answers OperationOutcome, pages an error page or an HTMX fragment). `prefix` "/"
    covers the root path only."""
    if all(p != prefix for p, _ in _surfaces):
        _surfaces.append((prefix, render))


def _render(request: Request, response: JSON) -> Response:
    path = request.url.path
    for prefix, render in _surfaces:
        if path == prefix or path.startswith(prefix + "/"):
            headers = {k: v for k, v in response.headers.items()
                       if k.lower() in ("www-authenticate", "retry-after")} or None
            return render(orjson.loads(response.body), response.status_code, headers, request)
    return response


def install_error_handlers(app: FastAPI) -> None:
    async def app_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, AppError)  # noqa: S101
        return _render(request, error_response(exc))

    async def invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)  # noqa: S101
        fields = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", ""))} for e in exc.errors()]
        return _render(request, JSON({"error": "request.invalid", "detail": "请求格式不正确 / The request is malformed",
                                      "fields": fields}, status_code=422))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)  # noqa: S101
        code, detail = _HTTP_CODES.get(exc.status_code, ("request.error", str(exc.detail)))
        return _render(request, JSON({"error": code, "detail": detail}, status_code=exc.status_code))

    async def crash(request: Request, exc: Exception) -> Response:
        return _render(request, crash_response(exc, request.method, request.url.path))

    app.add_exception_handler(AppError, app_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, crash)


def bearer(request: Request) -> str:
    return bearer_credential(request.headers.get("authorization", ""))


def bearer_credential(header: str) -> str:
    """The credential of an `Authorization: Bearer …` header value."""
    scheme, _, credential = header.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise UnauthenticatedError()
    return credential.strip()


class TTLCache:
    """A small per-process cache for credential checks (seconds-long TTL)."""

    def __init__(self, ttl: float, size: int = 1024) -> None:
        self.ttl, self.size = ttl, size
        self._data: dict[str, tuple[float, Any]] = {}

    def get(self, key: str) -> Any:
        hit = self._data.get(key)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def put(self, key: str, value: Any) -> None:
        if len(self._data) >= self.size:
            self._data.clear()
        self._data[key] = (time.monotonic() + self.ttl, value)


