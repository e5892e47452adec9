"""The staff front desk in Chromium (desktop): find a patient and open the summary, register them
on site, check another in with priority (HTMX row swap), enter a paper sheet line, verify a coupon and a
clinician's follow-up booking, with screenshots of each; the console on a 390 × 844 phone (a
compact top bar, the language switch keeping the search); a PostgreSQL smoke run of a coupon
verification."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

from carepoints.kit.time import utc_now
from tests.e2e.conftest import Server
from tests.e2e.helpers import axe_check, login_staff, px, shot, submit
from tests.pages.test_staff_desk import book, hospital, patient, today_session
from tests.rewards.kit import add_reward, redeem


def test_front_desk_flows(server: Server, desktop: Any) -> None:
    now = utc_now()
    first, second = patient(now, 21), patient(now, 22)
    ids = hospital()
    sess = today_session(ids["clinician"])
    booked = book(second, sess["id"], now)
    add_reward(now, code="e2e-ct", names={"zh": "CT检查券", "en": "CT coupon"}, points=10)
    code = redeem(first, "e2e-ct", now)["coupon_code"]
    login_staff(desktop, server, "frontdesk")

    desktop.goto(f"{server.url}/staff/patients")
    desktop.select_option("#f-by", "card")
    desktop.fill("#f-q", "CARD0021")
    submit(desktop, "[data-lookup] button[type=submit]")
    assert desktop.locator(f"[data-results] tr[data-patient='{first}']").count() == 1
    shot(desktop, "desk-patients")
    submit(desktop, f"tr[data-patient='{first}'] a")
    assert desktop.locator("[data-balance]").count() == 1
    axe_check(desktop)
    shot(desktop, "desk-patient")

    submit(desktop, f"a[href='/staff/register?patient={first}']")
    desktop.select_option("#f-session_id", sess["id"])
    submit(desktop, "[data-register] button[type=submit]")
    assert desktop.locator("[data-registered][data-status=checked_in]").count() == 1
    shot(desktop, "desk-register")

    desktop.goto(f"{server.url}/staff/checkin")
    desktop.fill("#f-q", "13812340022")
    submit(desktop, "[data-find] button[type=submit]")
    row = desktop.locator(f"tr[data-appointment='{booked['id']}']")
    row.locator("input[name=priority]").check()  # 优先: a disabled patient (not old enough for it by age)
    row.locator("button[type=submit]").click()  # HTMX: the row is swapped
    desktop.wait_for_selector(f"tr[data-appointment='{booked['id']}'][data-status=checked_in]")
    assert desktop.locator("[data-on-time]").count() == 1
    assert desktop.locator(f"tr[data-appointment='{booked['id']}'] [data-priority]").inner_text() == "优先"
    axe_check(desktop)
    shot(desktop, "desk-checkin")

    desktop.goto(f"{server.url}/staff/offline")
    desktop.fill("#f-patient", "13812340021")
    desktop.select_option("#f-behaviour", "lecture.attended")
    desktop.fill("#f-sheet_ref", "2026-讲座-01")
    desktop.fill("#f-ref", "L-01")
    submit(desktop, "[data-offline] button[type=submit]")
    assert desktop.locator("[data-outcome]").count() == 1
    axe_check(desktop)
    shot(desktop, "desk-offline")

    desktop.goto(f"{server.url}/staff/coupons")
    desktop.fill("#f-code", code)  # a QR scanner types the code
    desktop.press("#f-code", "Enter")
    desktop.wait_for_selector(f"[data-verified='{code}']")
    axe_check(desktop)
    shot(desktop, "desk-coupons")
    desktop.fill("#f-code", code)
    submit(desktop, "[data-verify] button[type=submit]")
    assert desktop.locator("[data-error='rewards.coupon_used']").count() == 1
    shot(desktop, "desk-coupon-used")


def console_fits_a_phone(page: Any) -> None:
    """The console's top bar on a phone: at most 130 px tall, the title on one line, every control in
    it at least 44 × 44 px and none overlapping another; the menu one row that scrolls sideways,
    below the bar; the page no wider than the screen."""
    header = page.locator("header.cp-top").bounding_box()
    assert header["height"] <= 130, header
    title = page.eval_on_selector(".cp-top h1 a", """a => {
        const range = document.createRange(); range.selectNodeContents(a);
        const r = range.getBoundingClientRect();
        return {lines: range.getClientRects().length, height: r.height, text: a.textContent}; }""")
    assert title["text"].strip()
    assert title["height"] <= 2 * px(page, ".cp-top h1 a", "lineHeight"), title
    assert title["lines"] == 1, title
    boxes = []
    for control in page.locator("header.cp-top a, header.cp-top button, header.cp-top .cp-top-who").all():
        box = control.bounding_box()
        assert box is not None
        boxes.append(box)
        if control.evaluate("e => e.matches('a, button')"):  # a touch target
            assert min(box["width"], box["height"]) >= 44, (control.inner_text(), box)
        assert 0 <= box["x"] <= box["x"] + box["width"] <= 390 + 0.5, (control.inner_text(), box)
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            apart = (a["x"] + a["width"] <= b["x"] + 0.5 or b["x"] + b["width"] <= a["x"] + 0.5
                     or a["y"] + a["height"] <= b["y"] + 0.5 or b["y"] + b["height"] <= a["y"] + 0.5)
            assert apart, (a, b)
    menu = page.locator("nav.cp-side").bounding_box()
    assert menu["y"] >= header["y"] + header["height"] - 0.5
    assert menu["height"] <= 60, menu
    assert page.eval_on_selector("nav.cp-side", "n => getComputedStyle(n).overflowX") == "auto"
    for link in page.locator("nav.cp-side a").all():
        assert link.bounding_box()["height"] >= 44
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_console_on_a_phone(server: Server, phone: Any) -> None:
    pid = patient(utc_now(), 25)
    login_staff(phone, server, "frontdesk")
    phone.goto(f"{server.url}/staff")
    shot(phone, "desk-phone-home")
    console_fits_a_phone(phone)
    axe_check(phone)
    phone.goto(f"{server.url}/staff/patients?by=card&q=CARD0025")
    assert phone.locator(f"[data-results] tr[data-patient='{pid}']").count() == 1
    shot(phone, "desk-phone-patients")
    console_fits_a_phone(phone)
    submit(phone, "header a.cp-tool[lang=en]")  # the language switch keeps the search
    parts = urlsplit(phone.url)
    assert parts.path == "/staff/patients"
    assert parse_qsl(parts.query) == [("by", "card"), ("q", "CARD0025"), ("lang", "en")]
    assert "Staff console" in phone.locator(".cp-top h1").inner_text()
    assert phone.locator(f"[data-results] tr[data-patient='{pid}']").count() == 1
    shot(phone, "desk-phone-patients-en")
    console_fits_a_phone(phone)


def test_follow_up_booking(server: Server, desktop: Any) -> None:
    now = utc_now()
    patient(now, 23)
    user = login_staff(desktop, server, "clinician")
    mine = hospital(user["id"])
    sess = today_session(mine["clinician"])
    desktop.goto(f"{server.url}/staff/followup-booking")
    desktop.fill("#f-patient", "13812340023")
    desktop.select_option("#f-session_id", sess["id"])
    submit(desktop, "[data-followup] button[type=submit]")
    assert desktop.locator("[data-booked]").count() == 1
    axe_check(desktop)
    shot(desktop, "desk-followup")


def test_pg_smoke_verify(pg_server: Server, desktop: Any) -> None:
    now = utc_now()
    pid = patient(now, 24)
    add_reward(now, code="pg-desk", points=10)
    code = redeem(pid, "pg-desk", now)["coupon_code"]
    login_staff(desktop, pg_server, "frontdesk")
    desktop.goto(f"{pg_server.url}/staff/coupons")
    desktop.fill("#f-code", code)
    submit(desktop, "[data-verify] button[type=submit]")
    assert desktop.locator(f"[data-verified='{code}']").count() == 1
