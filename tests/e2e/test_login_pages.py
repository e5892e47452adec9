"""Signing in as a patient (phone + code, choosing who one is) and as staff, in Chromium;
elderly mode's large type, big targets and read-aloud; screenshots for review."""

from __future__ import annotations

from typing import Any

from carepoints.kit.time import utc_now
from tests.e2e.conftest import Server
from tests.e2e.helpers import axe_check, capture, login_patient, login_staff, px, set_elderly, shot, submit
from tests.helpers import enrol


def test_patient_login_and_elderly_mode(server: Server, phone: Any) -> None:
    now = utc_now()
    enrol(now, phone="13812340001", name="王秀英", birth_date="1950-03-02")
    second = enrol(now, phone="13812340001", name="王小明", birth_date="1980-05-06")
    phone.goto(f"{server.url}/")
    assert phone.url.endswith("/login?next=/")
    login_patient(phone, server, "13812340001", shots="login")
    assert phone.locator("button[name=patient_id]").count() == 2
    submit(phone, f"button[name=patient_id][value='{second}']")
    assert phone.locator("[data-balance]").inner_text() == "100"
    assert px(phone, "body") >= 16
    capture(phone, server, "home-first")
    # elderly mode: large type, 44 px targets, the read-aloud button speaks the main content
    set_elderly(phone, server, True)
    assert px(phone, "body") >= 18
    for selector in (".cp-tabbar a", "[data-read-aloud]", ".cp-tool"):
        box = phone.locator(selector).first.bounding_box()
        assert box is not None
        assert box["height"] >= 44
    phone.click("[data-read-aloud]")
    spoken = phone.evaluate("window.__cpLastSpoken || ''")
    assert "我的积分" in spoken
    axe_check(phone)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    set_elderly(phone, server, False)
    phone.goto(f"{server.url}/?lang=en")
    assert "My points" in phone.locator("main").inner_text()


def test_staff_login(server: Server, desktop: Any) -> None:
    desktop.goto(f"{server.url}/staff")
    assert "/staff/login" in desktop.url
    shot(desktop, "staff-login")
    login_staff(desktop, server, "frontdesk")
    assert desktop.url.rstrip("/").endswith("/staff")
    shot(desktop, "staff-home")


def test_admin_login(server: Server, desktop: Any) -> None:
    login_staff(desktop, server, "admin")
    assert desktop.url.rstrip("/").endswith("/admin")
    shot(desktop, "admin-home")


def test_patient_login_on_postgresql(pg_server: Server, phone: Any) -> None:
    enrol(utc_now(), phone="13812340009", name="李四")
    login_patient(phone, pg_server, "13812340009")
    assert phone.locator("[data-balance]").inner_text() == "100"
    shot(phone, "home-pg")
