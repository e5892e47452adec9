"""Page tests over real HTTP through the app (TestClient) on SQLite and PostgreSQL: clients
signed in as a patient or a staff member the way the login pages sign them in (a token in the
surface's signed cookie), with the page's CSRF token at hand."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pyotp
from fastapi.testclient import TestClient

from carepoints.app import create_app
from carepoints.config import get_settings
from carepoints.kit.db import write_tx
from carepoints.kit.time import utc_now
from carepoints.pages.web import PATIENT, _serializer
from carepoints.security import otp, service, staff

_CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')
CSRF = "test-csrf-token-0123456789"


class PageClient(TestClient):
    """A TestClient that sends the session's CSRF token with every form post (`csrf=False` to leave it out)."""

    csrf = CSRF

    def submit(self, url: str, data: dict[str, Any] | None = None, *, csrf: bool = True,
               htmx: bool = False, **kw: Any) -> Any:
        body = dict(data or {})
        if csrf:
            body.setdefault("csrf_token", self.csrf)
        headers = dict(kw.pop("headers", {}) or {})
        if htmx:
            headers["HX-Request"] = "true"
        return self.post(url, data=body, headers=headers, follow_redirects=kw.pop("follow_redirects", False), **kw)


def _cookie(surface: Any, token: str, **values: Any) -> str:
    return str(_serializer(surface).dumps({"c": CSRF, "l": "zh", "t": token, **values}))


def patient_client(patient_id: str, *, acting_for: str | None = None, lang: str = "zh",
                   elderly: bool = False, now: datetime | None = None) -> PageClient:
    """A client signed in as the patient (as after the one-time-code login)."""
    token, _ = otp.patient_token(patient_id, now or utc_now(), get_settings())
    client = PageClient(create_app())
    client.cookies.set(PATIENT.cookie, _cookie(PATIENT, token, l=lang, e=elderly, a=acting_for))
    return client


def staff_user(role: str, username: str | None = None,
               password: str = "correct horse battery") -> dict[str, Any]:  # noqa: S107 - a test user
    """A staff user (an admin also gets an authenticator secret): {id, username, password, totp}."""
    now = utc_now()
    username = username or f"{role}-{now.timestamp():.6f}".replace(".", "")
    with write_tx() as session:
        uid = service.create_staff(session, username, password, role, now)
        totp = staff.enrol_totp(session, uid, username, get_settings().secret_key) if staff.needs_totp(role) else None
    return {"id": uid, "username": username, "password": password, "totp": totp}


def staff_client(role: str, **kw: Any) -> tuple[PageClient, dict[str, Any]]:
    """A client signed in through the staff login page as a new user of `role`."""
    user = staff_user(role, **kw)
    client = PageClient(create_app())
    page = client.get("/staff/login")
    token = _CSRF.search(page.text)
    assert token, page.text[:500]
    client.csrf = token.group(1)
    data = {"username": user["username"], "password": user["password"], "csrf_token": client.csrf}
    if user["totp"]:
        data["otp"] = pyotp.TOTP(_totp_secret(user["totp"])).now()
    r = client.post("/staff/login", data=data, follow_redirects=False)
    assert r.status_code == 303, r.text[:800]
    client.csrf = _csrf_of(client, "/staff")
    return client, user


def _totp_secret(enrolled: str) -> str:
    """enrol_totp answers an otpauth:// URI or the bare secret."""
    m = re.search(r"secret=([A-Z2-7]+)", enrolled)
    return m.group(1) if m else enrolled


def _csrf_of(client: TestClient, url: str) -> str:
    r = client.get(url)
    m = _CSRF.search(r.text)
    assert m, r.text[:500]
    return m.group(1)


def csrf_of(html: str) -> str:
    m = _CSRF.search(html)
    assert m, html[:500]
    return m.group(1)
