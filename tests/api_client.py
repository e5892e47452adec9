"""The `api` fixture: the app in-process over HTTP (TestClient) on the `db`
database, with an admin API key and helpers for authorised requests.

Register it with `pytest_plugins = ["tests.api_client"]` in a test module and
import `Api` only under TYPE_CHECKING (the helpers are reachable through the
fixture), so that pytest imports this module as a plugin and rewrites its
asserts."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi.testclient import TestClient
from starlette.types import ASGIApp

from carepoints.app import create_asgi
from carepoints.kit.db import write_tx
from carepoints.kit.time import utc_now
from carepoints.security import service as security
from tests.conftest import Db
from tests.helpers import assert_ledger_intact

CST = ZoneInfo("Asia/Shanghai")
PREFIX = "/api/v1"

_phones = itertools.count(1)


def local_now() -> datetime:
    """The real clock in the hospital's time zone (the endpoints use the real clock)."""
    return utc_now().astimezone(CST)


def patient_body(**extra: Any) -> dict[str, Any]:
    n = next(_phones)
    body: dict[str, Any] = {
        "name": "张三丰", "phone": f"138{n:04d}5678",
        "consent": {"version": "1.0", "accepted_at": (utc_now() - timedelta(days=1)).isoformat()},
    }
    body.update(extra)
    return body


def make_key(role: str, name: str = "test") -> str:
    """Create an API key in its own committed transaction; returns the secret."""
    with write_tx() as session:
        _kid, secret = security.create_api_key(session, name, role, utc_now())
    return secret


def make_staff(username: str, password: str, role: str) -> str:
    with write_tx() as session:
        return security.create_staff(session, username, password, role, utc_now())


class Api:
    """Authorised requests against the in-process app. Paths without a leading
    `/api/` or `/` root (e.g. "/events") are taken relative to /api/v1."""

    def __init__(self, app: ASGIApp, key: str) -> None:
        self.app = app
        self.key = key
        self.client = TestClient(app)

    now = staticmethod(local_now)
    patient_body = staticmethod(patient_body)
    make_key = staticmethod(make_key)
    make_staff = staticmethod(make_staff)

    def new_client(self) -> TestClient:
        """A separate client for another thread."""
        return TestClient(self.app)

    @staticmethod
    def url(path: str) -> str:
        if path.startswith(("/api/", "/healthz", "/readyz", "/metrics", "/openapi.json", "/docs")):
            return path
        return PREFIX + path

    def headers(self, key: str | None = None, auth: bool = True) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"} if auth else {}

    def request(self, method: str, path: str, body: Any = None, *, key: str | None = None, auth: bool = True,
                client: TestClient | None = None, **kwargs: Any) -> httpx.Response:
        c = client or self.client
        if isinstance(body, bytes | str):
            kwargs["content"] = body
            kwargs.setdefault("headers", {})["Content-Type"] = "application/json"
        elif body is not None:
            kwargs["json"] = body
        headers = {**self.headers(key, auth), **kwargs.pop("headers", {})}
        response: httpx.Response = c.request(method, self.url(path), headers=headers, **kwargs)
        return response

    def post(self, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, body, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    # --- domain shortcuts ------------------------------------------------------------

    def enrol(self, **extra: Any) -> str:
        r = self.post("/patients", patient_body(**extra))
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    def points(self, pid: str) -> dict[str, Any]:
        r = self.get(f"/patients/{pid}/points")
        assert r.status_code == 200, r.text
        return dict(r.json())

    def balance(self, pid: str) -> int:
        return int(self.points(pid)["balance"])

    def send(self, ev: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """One event that must be accepted (201 or 200 duplicate); its outcome."""
        r = self.post("/events", ev, **kwargs)
        assert r.status_code in (200, 201), r.text
        return dict(r.json())

    def batch(self, evs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        r = self.post("/events", {"events": evs})
        assert r.status_code == 200, r.text
        outcomes: list[dict[str, Any]] = r.json()["outcomes"]
        assert len(outcomes) == len(evs)
        return outcomes

    def entries(self, pid: str) -> list[dict[str, Any]]:
        """Every ledger entry of the patient, newest first (follows `next`)."""
        out: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 100}
            if cursor:
                params["cursor"] = cursor
            r = self.get(f"/patients/{pid}/points/entries", params=params)
            assert r.status_code == 200, r.text
            doc = r.json()
            out.extend(doc["items"])
            cursor = doc["next"]
            if not cursor:
                return out


@pytest.fixture
def api(db: Db) -> Iterator[Api]:
    """The app over HTTP on a fresh database, authorised with an admin API key.
    After the test, the ledger must still verify."""
    yield Api(create_asgi(), make_key("admin", "test-admin"))
    assert_ledger_intact()
