"""The page infrastructure over real HTTP: the one-time-code login (and choosing who one is),
the signed session cookie, CSRF, elderly mode that follows the patient, the staff login, the
surfaces kept apart, errors rendered per surface (page, HTMX fragment, login redirect), and the
EN/中文 switch that keeps the page's path and other query parameters."""

from __future__ import annotations

import html
import logging
import re
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest
from fastapi.testclient import TestClient

from carepoints.app import create_app
from carepoints.config import get_settings, reset_settings
from carepoints.kit.db import read_tx
from carepoints.kit.time import utc_now
from carepoints.pages.web import PATIENT, STAFF, lang_href, safe_next
from carepoints.patients import service as patients
from carepoints.security import otp
from tests.conftest import Db
from tests.helpers import enrol
from tests.pages.helpers import CSRF, PageClient, _cookie, csrf_of, patient_client, staff_client
from tests.security.conftest import Gateway


def _dev_code(phone: str) -> str | None:
    with read_tx() as session:
        return otp.dev_code(session, phone, utc_now(), get_settings())


def test_signed_out_visitors_go_to_the_login(db: Db) -> None:
    client = TestClient(create_app())
    r = client.get("/", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=/"
    r = client.get("/me/settings", headers={"HX-Request": "true"}, follow_redirects=False)
    assert r.status_code == 204
    assert r.headers["HX-Redirect"] == "/login?next=/me/settings"
    r = client.get("/login")
    assert r.status_code == 200
    assert "获取验证码" in r.text
    assert r.headers["content-security-policy"].startswith("default-src 'self'")
    cookie = r.headers["set-cookie"]
    assert "cp_patient=" in cookie
    assert "httponly" in cookie.lower()
    assert "samesite=lax" in cookie.lower()


def test_login_with_a_code_then_the_home_page(db: Db, sms: Gateway) -> None:
    pid = enrol(utc_now(), phone="13912345678")
    client = PageClient(create_app())
    client.csrf = csrf_of(client.get("/login?next=/me/settings").text)
    r = client.submit("/login/code", {"phone": "139 1234 5678", "next": "/me/settings"})
    assert r.status_code == 200
    assert 'name="code"' in r.text
    wrong = "000000" if sms.code_for("13912345678") != "000000" else "111111"
    bad = client.submit("/login", {"phone": "13912345678", "code": wrong, "next": "/me/settings"})
    assert bad.status_code == 401
    assert 'data-error="auth.code_invalid"' in bad.text
    assert _dev_code("13912345678") is None  # without CAREPOINTS_DEV_OTP no code is kept readable
    old_csrf = client.csrf
    r = client.submit("/login", {"phone": "13912345678", "code": sms.code_for("13912345678"), "next": "/me/settings"})
    assert r.status_code == 303, r.text[:400]
    assert r.headers["location"] == "/me/settings"
    home = client.get("/")
    assert home.status_code == 200
    assert "data-balance>100<" in home.text  # the welcome points
    client.csrf = csrf_of(home.text)
    assert client.csrf != old_csrf  # a fresh session at login (no fixation)
    assert client.submit("/logout").status_code == 303
    assert client.get("/", follow_redirects=False).status_code == 303
    assert pid


def test_a_second_code_within_the_minute_is_refused_on_the_form(db: Db, sms: Gateway) -> None:
    enrol(utc_now(), phone="13912340001")
    client = PageClient(create_app())
    client.csrf = csrf_of(client.get("/login").text)
    assert client.submit("/login/code", {"phone": "13912340001"}).status_code == 200
    first = sms.code_for("13912340001")
    again = client.submit("/login/code", {"phone": "139 1234 0001"})  # the same phone, written differently
    assert again.status_code == 429
    assert 'data-error="rate.limited"' in again.text
    assert 'action="/login/code"' in again.text  # the phone form again, with the message
    assert 'value="139 1234 0001"' in again.text
    assert sms.code_for("13912340001") == first  # no second code was sent
    assert client.submit("/login", {"phone": "13912340001", "code": first}).status_code == 303


def _logged(records: list[logging.LogRecord]) -> str:
    """Everything the log records carry: messages, arguments and extra fields."""
    return "\n".join(f"{r.getMessage()} {r.args!r} {vars(r)!r}" for r in records)


def test_a_page_login_logs_neither_the_code_nor_the_phone(db: Db, sms: Gateway,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    phone = "13912340002"
    enrol(utc_now(), phone=phone)
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="carepoints")
    client = PageClient(create_app())
    client.csrf = csrf_of(client.get("/login").text)
    client.submit("/login/code", {"phone": phone})
    code = sms.code_for(phone)
    assert client.submit("/login", {"phone": phone, "code": "000000" if code != "000000" else "111111"}
                         ).status_code == 401
    assert client.submit("/login", {"phone": phone, "code": code}).status_code == 303
    assert client.get("/").status_code == 200
    logged = _logged(caplog.records)
    assert "/login/code" in logged  # the requests were logged (at DEBUG, everything that logs does)
    assert code not in logged
    assert phone not in logged
    assert phone[3:] not in logged  # nor most of it


def test_secure_cookies_when_configured(db: Db, sms: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    """CAREPOINTS_COOKIE_SECURE=1 (behind a TLS proxy, requests arrive over http): the patient's and
    the staff member's session cookies are Secure, HTTP-only and SameSite=Lax, before and after sign-in."""
    phone = "13912340003"
    enrol(utc_now(), phone=phone)
    _, user = staff_client("nurse")
    plain = TestClient(create_app()).get("/login").headers["set-cookie"]
    assert "secure" not in plain.lower()  # off by default on http

    def flags(set_cookie: str, name: str) -> set[str]:
        assert set_cookie.startswith(f"{name}="), set_cookie
        return {part.strip().lower() for part in set_cookie.split(";")[1:]}

    def value(set_cookie: str) -> str:
        return set_cookie.split(";", 1)[0]

    monkeypatch.setenv("CAREPOINTS_COOKIE_SECURE", "1")
    reset_settings()
    try:
        # the browser would send a Secure cookie back over https only: here it is sent by hand over http
        client = TestClient(create_app())
        r = client.get("/login")
        cookie = r.headers["set-cookie"]
        assert {"secure", "httponly", "samesite=lax"} <= flags(cookie, PATIENT.cookie)
        csrf = csrf_of(r.text)
        client.cookies.clear()
        r = client.post("/login/code", data={"phone": phone, "csrf_token": csrf}, headers={"cookie": value(cookie)})
        assert r.status_code == 200, r.text[:500]
        r = client.post("/login", data={"phone": phone, "code": sms.code_for(phone), "csrf_token": csrf},
                        headers={"cookie": value(cookie)}, follow_redirects=False)
        assert r.status_code == 303, r.text[:500]
        assert {"secure", "httponly", "samesite=lax"} <= flags(r.headers["set-cookie"], PATIENT.cookie)

        client.cookies.clear()
        r = client.get("/staff/login")
        cookie = r.headers["set-cookie"]
        assert {"secure", "httponly", "samesite=lax"} <= flags(cookie, STAFF.cookie)
        client.cookies.clear()
        r = client.post("/staff/login", data={"username": user["username"], "password": user["password"],
                                              "csrf_token": csrf_of(r.text)},
                        headers={"cookie": value(cookie)}, follow_redirects=False)
        assert r.status_code == 303, r.text[:500]
        assert {"secure", "httponly", "samesite=lax"} <= flags(r.headers["set-cookie"], STAFF.cookie)
    finally:
        monkeypatch.delenv("CAREPOINTS_COOKIE_SECURE")
        reset_settings()


def test_the_login_page_says_how_long_a_code_lives(db: Db, monkeypatch: pytest.MonkeyPatch) -> None:
    client = PageClient(create_app())
    assert "6 位验证码,5 分钟内有效" in client.get("/login").text  # the default, 300 s
    monkeypatch.setattr(get_settings(), "otp_ttl_seconds", 600)
    assert "6 位验证码,10 分钟内有效" in client.get("/login").text
    assert "works for 10 minutes" in client.get("/login?lang=en").text
    assert "10分钟内有效" in otp.sms_text("123456", get_settings())  # what the SMS says


def test_several_patients_on_one_phone_choose_who_they_are(db: Db, sms: Gateway) -> None:
    now = utc_now()
    first = enrol(now, phone="13700000001", name="张三")
    second = enrol(now, phone="13700000001", name="张小三")
    client = PageClient(create_app())
    client.csrf = csrf_of(client.get("/login").text)
    client.submit("/login/code", {"phone": "13700000001"})
    code = sms.code_for("13700000001")
    r = client.submit("/login", {"phone": "13700000001", "code": code})
    assert r.status_code == 200
    assert f'value="{first}"' in r.text
    assert f'value="{second}"' in r.text
    assert "张三" not in r.text  # names masked
    r = client.submit("/login", {"phone": "13700000001", "code": code, "patient_id": second})
    assert r.status_code == 303
    assert client.get("/").status_code == 200


def test_posts_without_the_csrf_token_are_refused(db: Db) -> None:
    pid = enrol(utc_now())
    client = patient_client(pid)
    r = client.submit("/me/settings", {"elderly": "1"}, csrf=False)
    assert r.status_code == 403
    assert 'data-error="pages.csrf_failed"' in r.text
    r = client.submit("/me/settings", {"elderly": "1", "csrf_token": "forged"}, csrf=False)
    assert r.status_code == 403
    r = client.submit("/me/settings", {"elderly": "1"}, csrf=False, htmx=True)
    assert r.status_code == 403
    assert r.headers["HX-Retarget"] == "#flash"
    assert r.text.lstrip().startswith('<div class="cp-error"')
    with read_tx() as session:
        assert patients.preferences(session, pid) == (False, None)


def test_elderly_mode_and_language_follow_the_patient(db: Db, sms: Gateway) -> None:
    pid = enrol(utc_now(), phone="13600000002")
    client = patient_client(pid)
    assert 'class="elderly"' not in client.get("/").text
    r = client.submit("/me/settings", {"elderly": "1"})
    assert r.status_code == 303
    assert 'class="elderly"' in client.get("/").text
    client.submit("/me/settings", {"language": "en"})
    assert "My points" in client.get("/").text
    with read_tx() as session:
        assert patients.preferences(session, pid) == (True, "en")
    # another device: the login brings the settings along
    other = PageClient(create_app())
    other.csrf = csrf_of(other.get("/login").text)
    other.submit("/login/code", {"phone": "13600000002"})
    other.submit("/login", {"phone": "13600000002", "code": sms.code_for("13600000002")})
    page = other.get("/")
    assert 'class="elderly"' in page.text
    assert "My points" in page.text
    assert other.get("/?lang=zh").text.count("我的积分") == 1


def test_a_tampered_cookie_is_a_new_anonymous_session(db: Db) -> None:
    pid = enrol(utc_now())
    client = patient_client(pid)
    value = client.cookies.get(PATIENT.cookie)
    # flip a full-weight character of the signature (the last may carry padding bits)
    flipped = "A" if value[-2] != "A" else "B"
    client.cookies.set(PATIENT.cookie, value[:-2] + flipped + value[-1])
    assert client.cookies.get(PATIENT.cookie) != value
    assert client.get("/", follow_redirects=False).status_code == 303


def test_staff_login_and_the_surfaces_are_kept_apart(db: Db) -> None:
    desk, _ = staff_client("frontdesk")
    assert desk.get("/staff").status_code == 200
    r = desk.get("/admin")
    assert r.status_code == 403
    admin, _ = staff_client("admin")
    assert admin.get("/admin").status_code == 200
    # a patient token never opens a staff page, even in a (validly signed) staff cookie
    pid = enrol(utc_now())
    token, _ = otp.patient_token(pid, utc_now(), get_settings())
    patient = PageClient(create_app())
    patient.cookies.set(STAFF.cookie, _cookie(STAFF, token))
    r = patient.get("/staff")
    assert r.status_code == 403
    assert 'data-error="pages.staff_only"' in r.text
    # and a staff token is not a patient session
    staff_token = desk.cookies.get(STAFF.cookie)
    assert staff_token
    r = patient_client(pid).get("/")
    assert r.status_code == 200


def test_wrong_staff_password_is_shown_on_the_form(db: Db) -> None:
    _, user = staff_client("nurse")
    client = PageClient(create_app())
    client.csrf = csrf_of(client.get("/staff/login").text)
    r = client.submit("/staff/login", {"username": user["username"], "password": "wrong"})
    assert r.status_code == 401
    assert "cp-error" in r.text
    r = client.submit("/staff/login", {"username": user["username"], "password": "x"}, csrf=False)
    assert r.status_code == 403


def test_expired_patient_token_sends_to_login(db: Db) -> None:
    pid = enrol(utc_now())
    client = patient_client(pid, now=utc_now() - timedelta(days=1))
    r = client.get("/", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/login")


def test_errors_render_as_pages_with_their_status(db: Db) -> None:
    pid = enrol(utc_now())
    client = patient_client(pid)
    r = client.get("/me/no-such-page")
    assert r.status_code == 404
    assert "<!doctype html>" in r.text
    assert "未找到" in r.text
    r = client.get("/me/no-such-page?lang=en")
    assert "Not found" in r.text


def test_the_dev_inbox_only_in_dev_mode(db: Db, monkeypatch: pytest.MonkeyPatch) -> None:
    client = PageClient(create_app())
    assert client.get("/dev/inbox?phone=13500000000").status_code == 404
    if db.is_postgres:
        return  # dev codes are for the embedded SQLite database only
    monkeypatch.setattr(get_settings(), "dev_otp", True)
    enrol(utc_now(), phone="13500000000")
    client.csrf = csrf_of(client.get("/login").text)
    client.submit("/login/code", {"phone": "13500000000"})
    code = _dev_code("13500000000")
    assert code is not None
    r = client.get("/dev/inbox?phone=13500000000")
    assert r.status_code == 200
    assert f"data-code>{code}<" in r.text


def test_safe_next_stays_on_this_site() -> None:
    assert safe_next("/me/book", "/") == "/me/book"
    assert safe_next("https://evil.example/", "/") == "/"
    assert safe_next("//evil.example/x", "/") == "/"
    assert safe_next(None, "/staff") == "/staff"
    assert CSRF


_SWITCH = re.compile(r'<a class="cp-tool[^"]*"(?: data-no-read)? href="([^"]*)" hreflang="(zh|en)"')


def _switch(r: Any) -> tuple[str, list[tuple[str, str]], str]:
    """The header's language link on a page: (path, query pairs, the raw href as in the HTML)."""
    m = _SWITCH.search(r.text)
    assert m, r.text[:800]
    raw = m.group(1)
    parts = urlsplit(html.unescape(raw))
    return parts.path, parse_qsl(parts.query, keep_blank_values=True), raw


def test_the_language_link_keeps_the_path_and_the_other_query_parameters(db: Db) -> None:
    admin, _ = staff_client("admin")
    hostile = '<script>alert("x")</script>&lang=en'
    r = admin.get("/staff/patients", params={"by": "card", "q": hostile, "empty": ""})
    assert r.status_code == 200
    path, pairs, raw = _switch(r)
    assert path == "/staff/patients"
    assert pairs == [("by", "card"), ("q", hostile), ("empty", ""), ("lang", "en")]
    assert "<" not in raw
    assert '"' not in raw
    assert "&amp;" in raw  # the separators are HTML-escaped in the attribute
    # following it: English, the search kept, and the switch back keeps it too (lang replaced, not added)
    english = admin.get(html.unescape(raw))
    assert "Staff console" in english.text
    path, pairs, _ = _switch(english)
    assert path == "/staff/patients"
    assert pairs == [("by", "card"), ("q", hostile), ("empty", ""), ("lang", "zh")]
    # the programme admin and an error page (the path re-encoded), on the same header
    r = admin.get("/admin?tab=rules&lang=zh&tab=drafts")
    assert _switch(r)[:2] == ("/admin", [("tab", "rules"), ("tab", "drafts"), ("lang", "en")])
    r = admin.get("/staff/no such page?x=1")
    assert r.status_code == 404
    assert unquote(_switch(r)[0]) == "/staff/no such page"
    assert 'href="/staff/no%20such%20page?x=1&amp;lang=en"' in r.text
    # the patient pages
    patient = patient_client(enrol(utc_now()), lang="en")
    path, pairs, _ = _switch(patient.get("/me/points?kind=earned&lang=en"))
    assert (path, pairs) == ("/me/points", [("kind", "earned"), ("lang", "zh")])


def test_lang_href_builds_a_same_site_link() -> None:
    assert lang_href("/staff/care-list", "band=high&lang=zh", "en") == "/staff/care-list?band=high&lang=en"
    assert lang_href("/", "", "zh") == "/?lang=zh"
    assert lang_href("/me/a b", "q=%E5%BC%A0+%26", "en") == "/me/a%20b?q=%E5%BC%A0+%26&lang=en"
    assert lang_href("//evil.example/x", "a=1", "en") == "?a=1&lang=en"  # never another host
    assert lang_href("", "", "en") == "?lang=en"
