"""Booking in Chromium on a phone: department → clinician (QR code) → session → book, the
appointment and its cancel, the cut-off explained, a full session's waitlist, my appointments
and my waitlist, a freed slot offered from the waitlist and confirmed; every page captured in
normal and elderly mode with the accessibility check and elderly mode's sizes, none wider than
the phone. A short smoke run on PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from carepoints.config import get_settings
from carepoints.kit.db import write_tx
from carepoints.kit.time import utc_now
from carepoints.scheduling import service as sch
from carepoints.scheduling import waitlist
from carepoints.scheduling.schemas import CancelIn, WaitlistJoin
from tests.e2e.conftest import Server
from tests.e2e.helpers import capture, login_patient, shot, submit
from tests.helpers import enrol
from tests.pages.test_patient_booking import Hospital, book


def fits(page: Any) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, page.url


def soon_full(h: Hospital, clinician: int) -> dict[str, Any]:
    """A one-slot session of `clinician` in about an hour (inside waitlist_confirm_hours: a freed
    slot is offered to the first waiting patient, to confirm), its slot taken by someone else."""
    local = utc_now().astimezone(get_settings().tz) + timedelta(minutes=70)
    start = local.replace(minute=(local.minute // 10) * 10, second=0, microsecond=0)
    if (start + timedelta(minutes=10)).date() != start.date():  # near midnight: 00:30 the next morning
        start = (start + timedelta(days=1)).replace(hour=0, minute=30)
    sess = h.session(start.date(), start.time(), (start + timedelta(minutes=10)).time(), minutes=10,
                     clinician=clinician)
    sess["taken"] = book(enrol(utc_now()), sess["id"])
    return sess


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

    # a slot freed within waitlist_confirm_hours is offered: the patient confirms it in time
    offered = soon_full(h, clinician=1)
    with write_tx() as s:
        entry, _ = waitlist.join(s, offered["id"], WaitlistJoin(patient_id=pid, idempotency_key="e2e-offer"),
                                 utc_now())
        sch.cancel(s, offered["taken"]["id"], CancelIn(by="hospital"), utc_now())
    phone.goto(f"{server.url}/me/waitlist/{entry['id']}")
    assert "有号了" in phone.locator("main").inner_text()
    assert phone.locator("[data-deadline]").count() == 1
    fits(phone)
    capture(phone, server, "booking-waitlist-offer")
    submit(phone, "[data-confirm]")
    assert "/me/appointments/" in phone.url
    assert "已预约" in phone.locator("main").inner_text()
    shot(phone, "booking-waitlist-confirmed")

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
