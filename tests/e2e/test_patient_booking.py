"""Booking in Chromium on a phone: department → clinician (QR code) → session → book, the
appointment and its cancel, the cut-off explained, a full session's waitlist, my appointments
and my waitlist; every page captured in normal and elderly mode with the accessibility check,
none wider than the phone. A short smoke run on PostgreSQL."""

from __future__ import annotations

from typing import Any

from carepoints.kit.time import utc_now
from tests.e2e.conftest import Server
from tests.e2e.helpers import capture, login_patient, submit
from tests.helpers import enrol
from tests.pages.test_patient_booking import Hospital, book


def fits(page: Any) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, page.url


def test_book_cancel_and_waitlist(server: Server, phone: Any) -> None:
    h = Hospital()
    free = h.ahead(5, hour=9, slots=2)
    full = h.ahead(5, hour=14, slots=1)
    pid = enrol(utc_now(), phone="13812345001", name="张桂芳", birth_date="1948-04-01")
    book(enrol(utc_now()), full["id"])
    near = h.soon()
    near_appt = book(pid, near["id"])

    login_patient(phone, server, "13812345001", next_path="/me/book")
    assert phone.url.endswith("/me/book")
    assert "心内科" in phone.locator("main").inner_text()
    fits(phone)
    capture(phone, server, "booking-departments")

    submit(phone, f"[data-department='{h.department}']")
    assert "王医生0" in phone.locator("main").inner_text()
    fits(phone)
    capture(phone, server, "booking-department")

    submit(phone, f"[data-clinician='{h.clinicians[0]}']")
    phone.click(".cp-bk-qr summary")
    assert phone.locator(".cp-qr svg").is_visible()
    phone.evaluate("window.scrollTo(0, 0)")
    fits(phone)
    capture(phone, server, "booking-clinician")

    submit(phone, f"[data-session='{free['id']}'] a.cp-btn")
    assert "就诊前2小时内不能在线取消" in phone.locator("main").inner_text()
    fits(phone)
    capture(phone, server, "booking-confirm")

    submit(phone, "[data-book]")
    assert "/me/appointments/" in phone.url
    assert phone.locator("[data-seq]").inner_text() == "1"
    assert "预约成功" in phone.locator("#flash").inner_text()
    fits(phone)
    capture(phone, server, "booking-appointment")

    submit(phone, "[data-cancel]")
    assert "已取消预约" in phone.locator("#flash").inner_text()
    assert phone.locator("[data-cancel]").count() == 0
    capture(phone, server, "booking-cancelled")

    phone.goto(f"{server.url}/me/appointments/{near_appt['id']}")
    assert "就诊前2小时内不能在线取消,请联系医院" in phone.locator("main").inner_text()
    assert phone.locator("[data-cancel]").count() == 0
    capture(phone, server, "booking-cutoff")

    phone.goto(f"{server.url}/me/book/clinicians/{h.clinicians[0]}")
    submit(phone, f"[data-session='{full['id']}'] button")
    assert "/me/waitlist/" in phone.url
    assert "已加入候补" in phone.locator("#flash").inner_text()
    assert phone.locator("[data-position]").inner_text() == "1"
    fits(phone)
    capture(phone, server, "booking-waitlist-entry")

    phone.goto(f"{server.url}/me/waitlist")
    assert phone.locator("[data-entry]").count() == 1
    fits(phone)
    capture(phone, server, "booking-waitlist")

    phone.goto(f"{server.url}/me/appointments")
    assert phone.locator("[data-appointment]").count() == 2
    fits(phone)
    capture(phone, server, "booking-appointments")

    phone.goto(f"{server.url}/me/book/clinicians/{h.clinicians[0]}?lang=en")
    assert "You are on the waitlist" in phone.locator(f"[data-session='{full['id']}']").inner_text()
    assert "Step 3" in phone.locator("main").inner_text()
    fits(phone)
    capture(phone, server, "booking-clinician-en")


def test_booking_on_postgresql(pg_server: Server, phone: Any) -> None:
    h = Hospital()
    sess = h.ahead(4)
    enrol(utc_now(), phone="13812345009", name="李四")
    login_patient(phone, pg_server, "13812345009", next_path=f"/me/book/sessions/{sess['id']}")
    submit(phone, "[data-book]")
    assert phone.locator("[data-seq]").inner_text() == "1"
    phone.goto(f"{pg_server.url}/me/appointments")
    assert phone.locator("[data-appointment]").count() == 1
