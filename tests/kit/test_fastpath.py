"""kit.fastpath: the lean ASGI route in front of the app, and its equivalence
with the documented FastAPI route of POST /api/v1/events."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from carepoints.app import create_app
from carepoints.kit.errors import ConflictError
from carepoints.kit.fastpath import FastPath
from carepoints.kit.web import JSON
from tests.helpers import bp, event

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]


def _inner() -> FastAPI:
    app = FastAPI()

    @app.get("/hello")
    def hello() -> dict[str, str]:
        return {"hello": "world"}

    @app.get("/echo")
    def echo() -> dict[str, str]:
        return {"from": "app"}

    return app


async def _echo(headers: Mapping[str, str], body: bytes) -> JSON:
    return JSON({"length": len(body), "auth": headers.get("authorization")}, status_code=202)


async def _conflict(_headers: Mapping[str, str], _body: bytes) -> JSON:
    raise ConflictError()


_ROW = "(张三, 13800001111)"  # what a database error can quote


async def _boom(_headers: Mapping[str, str], _body: bytes) -> JSON:
    raise RuntimeError("Failing row contains " + _ROW)


def _client(max_body: int = 1024) -> TestClient:
    routes = {("POST", "/echo"): _echo, ("POST", "/conflict"): _conflict, ("POST", "/boom"): _boom}
    return TestClient(FastPath(_inner(), routes, max_body=max_body), raise_server_exceptions=False)


def test_listed_routes_reach_the_handler_with_headers_and_body() -> None:
    r = _client().post("/echo", content=b"x" * 100, headers={"Authorization": "Bearer k"})
    assert r.status_code == 202
    assert r.json() == {"length": 100, "auth": "Bearer k"}
    assert r.headers["content-type"] == "application/json"


def test_everything_else_goes_on_to_the_app() -> None:
    c = _client()
    assert c.get("/hello").json() == {"hello": "world"}
    assert c.get("/echo").json() == {"from": "app"}  # same path, another method: the app's
    assert c.post("/nowhere").status_code == 404


def test_app_errors_render_as_their_error_response() -> None:
    r = _client().post("/conflict", content=b"{}")
    assert r.status_code == 409
    assert r.json()["error"] == "resource.conflict"


def test_a_body_over_the_limit_is_413() -> None:
    r = _client(max_body=1024).post("/echo", content=b"x" * 1025)
    assert r.status_code == 413
    assert r.json()["error"] == "request.too_large"
    assert _client(max_body=1024).post("/echo", content=b"x" * 1024).status_code == 202


def test_a_crash_is_a_500_that_quotes_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        r = _client().post("/boom", content=b"{}")
    assert r.status_code == 500
    assert r.json()["error"] == "internal.error"
    assert "13800001111" not in r.text
    assert "13800001111" not in caplog.text
    assert "RuntimeError" in caplog.text


def _route_only_client() -> TestClient:
    """The FastAPI app without the fast path in front: the documented route."""
    return TestClient(create_app())


def test_the_fast_path_and_the_route_answer_alike(api: Api) -> None:
    route = _route_only_client()
    pid = api.enrol()
    at = api.now() - timedelta(hours=1)
    cases = [
        ("single", event(pid, "health.measurement", at, bp(), key="a")),
        ("replay", event(pid, "health.measurement", at, bp(), key="a")),
        ("conflict", event(pid, "health.measurement", at, bp(sys_=150), key="a")),
        ("invalid", {"type": "health.measurement"}),
        ("batch", {"events": [event(pid, "health.measurement", at, bp(), key="b"), {"type": "nope"}]}),
    ]
    for label, body in cases:
        fast = api.post("/events", body)
        # the route runs second and so sees the fast path's events as replays
        slow = api.post("/events", body, client=route)
        assert fast.status_code in (200, 201, 409, 422), (label, fast.text)
        expected = 200 if fast.status_code == 201 else fast.status_code
        assert slow.status_code == expected, label
        assert _as_replay(slow.json()) == _as_replay(fast.json()), label


def _as_replay(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {k: True if k == "duplicate" else _as_replay(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_as_replay(v) for v in doc]
    return doc


def test_the_fast_path_authenticates_like_every_endpoint(api: Api) -> None:
    ev = event(api.enrol(), "health.measurement", api.now() - timedelta(hours=1), bp())
    r = api.post("/events", ev, auth=False)
    assert r.status_code == 401
    assert r.json()["error"] == "auth.unauthenticated"
    assert r.headers["www-authenticate"] == "Bearer"
    assert api.post("/events", ev, key="cp_wrong").status_code == 401
    api.make_staff("auditor1", "pw-123456789", "auditor")  # may read, not write events
    token = api.post("/auth/token", {"username": "auditor1", "password": "pw-123456789"},
                     auth=False).json()["access_token"]
    r = api.post("/events", ev, key=token)
    assert r.status_code == 403, r.text
    assert r.json()["error"] == "auth.forbidden"


def test_the_route_stays_documented(api: Api) -> None:
    doc = api.get("/openapi.json", auth=False).json()
    assert "post" in doc["paths"]["/api/v1/events"]
