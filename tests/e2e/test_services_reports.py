"""Reports (检查检验报告) in Chromium: a patient on a 390 × 844 phone in elderly mode sees the new report
in the list, opens it and reads an abnormal value with ↑偏高 and its reference range (the
accessibility check passes, nothing is wider than the phone); a clinician on a desktop sees a report
held back for a critical value in the patient summary, opens and releases it, after which the patient
sees it. Screenshots for review."""

from __future__ import annotations

from typing import Any

from carepoints.audit.service import Actor
from carepoints.kit.db import write_tx
from carepoints.kit.time import utc_now
from carepoints.services.reports import service
from carepoints.services.reports.schemas import ReportIn
from tests.e2e.conftest import Server
from tests.e2e.helpers import axe_check, login_patient, login_staff, px, set_elderly, shot, submit
from tests.helpers import enrol
from tests.services.reports.kit import critical, report


def _push(doc: dict[str, Any]) -> str:
    with write_tx() as session:
        stored, _ = service.ingest(session, ReportIn.model_validate(doc), Actor.system("e2e-lis"), utc_now())
    return str(stored["id"])


def test_a_patient_reads_a_report_on_a_phone_in_elderly_mode(server: Server, phone: Any) -> None:
    pid = enrol(utc_now(), phone="13900008801")
    rid = _push(report(pid))
    login_patient(phone, server, "13900008801", pid, next_path="/me")
    set_elderly(phone, server, True)
    phone.goto(f"{server.url}/me")
    assert phone.locator("body.elderly").count() == 1
    submit(phone, "[data-nav-reports]")
    item = phone.locator(f"[data-report='{rid}']")
    assert "血常规 / CBC" in item.inner_text()
    assert item.locator("[data-new]").inner_text().strip() == "新"
    assert "有异常" in item.locator("[data-abnormal]").inner_text()
    axe_check(phone)
    shot(phone, "reports-patient-list-elderly")
    submit(phone, f"[data-report='{rid}'] a")
    wbc = phone.locator("[data-result='6690-2']")
    assert wbc.locator("[data-value]").inner_text() == "11.2"
    assert wbc.locator("[data-flag-words]").inner_text() == "↑偏高"
    assert wbc.locator("[data-range]").inner_text() == "参考范围 3.5–9.5 10*9/L"
    assert phone.locator("[data-result='718-7'] [data-flag-words]").inner_text() == "↓偏低"
    assert "结果异常不一定代表疾病" in phone.locator("[data-note]").inner_text()
    assert phone.locator("[data-conclusion]").inner_text() == "请结合临床"
    assert px(phone, "[data-result='6690-2'] [data-value]") >= 28
    assert phone.locator("[data-read-aloud]").count() == 1
    axe_check(phone)
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width
    shot(phone, "reports-patient-detail-elderly")
    phone.goto(f"{server.url}/me/reports")
    assert phone.locator(f"[data-report='{rid}'] [data-new]").count() == 0


def test_a_clinician_releases_a_held_critical_report(server: Server, desktop: Any, phone: Any) -> None:
    pid = enrol(utc_now(), phone="13900008802")
    rid = _push(critical(pid))
    login_patient(phone, server, "13900008802", pid, next_path="/me/reports")
    phone.goto(f"{server.url}/me/reports")
    assert phone.locator("[data-empty]").count() == 1  # held back: not shown first to the patient

    login_staff(desktop, server, "clinician")
    desktop.goto(f"{server.url}/staff/patients/{pid}")
    row = desktop.locator(f"[data-reports] tr[data-report='{rid}']")
    assert row.get_attribute("data-held") is not None
    assert "危急值" in row.inner_text()
    axe_check(desktop)
    shot(desktop, "reports-staff-summary")
    submit(desktop, f"tr[data-report='{rid}'] a")
    assert "↑↑危急 偏高" in desktop.locator("[data-result='2823-3']").inner_text()
    assert desktop.locator("[data-held] [data-release]").count() == 1
    axe_check(desktop)
    shot(desktop, "reports-staff-held")
    submit(desktop, "[data-release]")
    assert "已审核并发布给患者" in desktop.locator("#flash").inner_text()
    assert desktop.locator("[data-released]").count() == 1
    assert desktop.locator("[data-release]").count() == 0
    shot(desktop, "reports-staff-released")

    phone.goto(f"{server.url}/me/reports")
    submit(phone, f"[data-report='{rid}'] a")
    flag = phone.locator("[data-result='2823-3'] [data-flag-words]").inner_text()
    assert flag == "↑↑危急 偏高"
    shot(phone, "reports-patient-critical")


def test_pg_smoke_the_patient_reads_a_report(pg_server: Server, phone: Any) -> None:
    pid = enrol(utc_now(), phone="13900008803")
    rid = _push(report(pid))
    login_patient(phone, pg_server, "13900008803", pid, next_path="/me/reports")
    phone.goto(f"{pg_server.url}/me/reports/{rid}")
    assert phone.locator("[data-result='6690-2'] [data-flag-words]").inner_text() == "↑偏高"
