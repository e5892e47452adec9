"""Admissions (住院与手术) in Chromium: a patient on a 390 × 844 phone opens 住院与手术 from 我的, sees the
admission order, a day surgery with its same-day discharge note and a pre-visit exam with its
follow-up, chooses an admission date among the days with beds left and reads the pre-admission
instructions and the online change deadline (normal and elderly mode, the accessibility check,
nothing wider than the phone); a ward nurse on a desktop issues an order from the hub and confirms
today's arrival from the ward's day view. Screenshots for review."""

from __future__ import annotations

from datetime import time, timedelta
from typing import Any

from carepoints.audit.service import Actor
from carepoints.kit.db import write_tx
from carepoints.kit.time import utc_now
from carepoints.services.admissions import previsit, service, surgery
from carepoints.services.admissions.schemas import OrderCreate, PrevisitCreate, SurgeryCreate
from tests.e2e.conftest import Server
from tests.e2e.helpers import axe_check, capture, login_patient, login_staff, shot, submit
from tests.helpers import enrol
from tests.services.admissions.world import INSTRUCTIONS, Hospital, local_today

WARD = Actor("staff", "e2e-ward", "nurse")


def _order(h: Hospital, pid: str, key: str) -> str:
    with write_tx() as s:
        doc, _ = service.issue_order(s, OrderCreate(patient_id=pid, ward_id=h.ward, idempotency_key=key), WARD,
                                     utc_now())
    return str(doc["id"])


def test_a_patient_chooses_an_admission_date_on_a_phone(server: Server, phone: Any) -> None:
    h = Hospital()
    pid = enrol(utc_now(), phone="13900008901")
    oid = _order(h, pid, "e2e-adm-1")
    d = local_today() + timedelta(days=1)
    h.session(d, time(8), time(8, 30), exam=True)
    h.session(d, time(14), time(15))
    with write_tx() as s:
        surgery.request(s, SurgeryCreate(patient_id=pid, department_id=h.department, procedure="宫腔镜检查",
                                         kind="day", expected_minutes=45, idempotency_key="e2e-s"), WARD, utc_now())
        previsit.order(s, PrevisitCreate(patient_id=pid, clinician_id=h.clinician, resource_id=h.resource,
                                         exam="血常规", result_hours=2, idempotency_key="e2e-pv"), WARD, utc_now())
    login_patient(phone, server, "13900008901", pid, next_path="/me")
    phone.goto(f"{server.url}/me")
    submit(phone, "[data-nav-admissions]")
    order = phone.locator(f"[data-order='{oid}']")
    assert "普外一病区" in order.inner_text()
    assert "选择入院日期" in order.locator("[data-choose]").inner_text()
    assert "当天出院" in phone.locator("[data-same-day]").inner_text()
    assert phone.locator("[data-followup-time]").inner_text() == f"{d.isoformat()} 14:00"
    capture(phone, server, "admissions-patient-list")

    submit(phone, f"[data-order='{oid}'] a")
    day = (local_today() + timedelta(days=3)).isoformat()
    assert phone.locator(f"[data-day='{(local_today()).isoformat()}']").count() == 0  # inside the cut-off
    assert "余床 2" in phone.locator(f"[data-day='{day}']").inner_text()
    capture(phone, server, "admissions-patient-choose")
    submit(phone, f"[data-day='{day}']")
    assert "入院日期已预约" in phone.locator("#flash").inner_text()
    assert phone.locator("[data-date]").inner_text().startswith(day)
    assert phone.locator("[data-arrival]").inner_text() == "08:30"
    assert INSTRUCTIONS in phone.locator("[data-instructions]").inner_text()
    assert phone.locator("[data-cutoff]").count() == 1
    assert phone.locator(f"[data-day='{day}'][aria-current='date']").count() == 1
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width
    capture(phone, server, "admissions-patient-booked")


def test_a_ward_nurse_issues_an_order_and_confirms_an_arrival(server: Server, desktop: Any) -> None:
    h = Hospital()
    enrol(utc_now(), phone="13900008902")
    arriving = enrol(utc_now(), phone="13900008903")
    today_order = _order(h, arriving, "e2e-adm-2")
    with write_tx() as s:
        service.book_date(s, today_order, local_today(), WARD, utc_now())
    login_staff(desktop, server, "nurse")
    desktop.goto(f"{server.url}/staff/admissions")
    desktop.fill("#f-o-patient", "13900008902")
    desktop.select_option("#f-o-ward_id", h.ward)
    submit(desktop, "[data-issue-order] button[type=submit]")
    assert "住院证已开具" in desktop.locator("[data-done='order']").inner_text()
    axe_check(desktop)
    shot(desktop, "admissions-staff-hub")
    desktop.goto(f"{server.url}/staff/admissions/wards/{h.ward}")
    row = desktop.locator(f"tr[data-order='{today_order}']")
    assert "*" in row.inner_text()  # the name masked
    axe_check(desktop)
    shot(desktop, "admissions-staff-ward-day")
    submit(desktop, f"tr[data-order='{today_order}'] [data-admit]")
    assert "已办理入院" in desktop.locator("#flash").inner_text()
    assert desktop.locator(f"tr[data-order='{today_order}'][data-status='admitted']").count() == 1
    shot(desktop, "admissions-staff-admitted")


def test_pg_smoke_the_patient_books_a_date(pg_server: Server, phone: Any) -> None:
    h = Hospital()
    pid = enrol(utc_now(), phone="13900008904")
    oid = _order(h, pid, "e2e-adm-pg")
    login_patient(phone, pg_server, "13900008904", pid, next_path=f"/me/admissions/{oid}")
    phone.goto(f"{pg_server.url}/me/admissions/{oid}")
    day = (local_today() + timedelta(days=4)).isoformat()
    submit(phone, f"[data-day='{day}']")
    assert phone.locator("[data-date]").inner_text().startswith(day)
