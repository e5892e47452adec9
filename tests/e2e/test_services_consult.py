"""Online consultation (在线咨询) in Chromium: a patient on a 390 × 844 phone reads the notice first,
asks a department; an adviser on a desktop takes it from the queue and answers; the answer appears
on the phone without a reload (HTMX polling), the patient's picture reaches the adviser the same way;
the patient closes and rates. Screenshots in normal and elderly mode (the accessibility check passes,
nothing is wider than the phone). A PostgreSQL smoke run of the live update."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from carepoints.audit.service import Actor
from carepoints.kit.db import write_tx
from carepoints.kit.time import utc_now
from carepoints.scheduling import service as sch
from carepoints.scheduling.schemas import DepartmentCreate, InstitutionCreate
from carepoints.services.consult import service
from carepoints.services.consult.schemas import AdviserSet, Profession, ThreadOpen
from tests.e2e.conftest import Server
from tests.e2e.helpers import axe_check, capture, login_patient, login_staff, shot, submit
from tests.helpers import enrol
from tests.services.consult.kit import open_body, png

LIVE_MS = 12_000  # two polls (5 s) and some


def _department(code: str) -> str:
    now = utc_now()
    with write_tx() as s:
        inst = sch.create_institution(s, InstitutionCreate(code=f"i{code}", name_zh="第一人民医院",
                                                           name_en="First People's Hospital"), now)
        return str(sch.create_department(s, DepartmentCreate(institution_id=inst["id"], code=code, name_zh="内分泌科",
                                                              name_en="Endocrinology"), now)["id"])


def _roster(staff_id: str, department: str) -> None:
    with write_tx() as s:
        service.set_adviser(s, staff_id, AdviserSet(department_id=department, profession=Profession.clinician,
                                                    display_name="王医生", title="主治医师"),
                            Actor.system("e2e"), utc_now())


def _no_reload_marker(page: Any) -> None:
    page.evaluate("window.__stayed = 1")


def _stayed(page: Any) -> bool:
    return bool(page.evaluate("window.__stayed === 1"))


def test_a_patient_asks_and_the_answer_arrives_without_reloading(server: Server, phone: Any, desktop: Any,
                                                                  tmp_path: Path) -> None:
    department = _department("endo1")
    pid = enrol(utc_now(), phone="13900008901")
    login_patient(phone, server, "13900008901", pid, next_path="/me/consult")
    user = login_staff(desktop, server, "clinician")
    _roster(user["id"], department)

    phone.goto(f"{server.url}/me/consult")
    submit(phone, "[data-new-consult]")
    notice = phone.locator("[data-disclaimer]").inner_text()
    assert "不能替代面诊" in notice
    assert "不做诊断" in notice
    assert phone.locator("[data-disclaimer] a[href='tel:120']").count() == 1
    assert phone.locator("[data-ask]").count() == 0
    capture(phone, server, "consult-patient-notice")
    submit(phone, "[data-accept]")
    phone.select_option("#f-target", f"department:{department}")
    phone.fill("#f-subject", "血糖控制")
    phone.fill("#f-text", "最近餐后血糖偏高,饮食上要注意什么?")
    submit(phone, "[data-send]")
    assert phone.locator("[data-state]").first.get_attribute("data-state") == "open"
    tid = phone.locator("[data-thread]").get_attribute("data-thread")
    _no_reload_marker(phone)

    desktop.goto(f"{server.url}/staff/consult")
    row = desktop.locator(f"tr[data-thread='{tid}']")
    assert "待接诊" in row.inner_text()
    axe_check(desktop)
    shot(desktop, "consult-staff-queue")
    submit(desktop, f"tr[data-thread='{tid}'] a")
    submit(desktop, "[data-claim]")
    desktop.fill("#f-text", "建议少食多餐,主食定量,少吃甜食;请按时监测血糖。")
    submit(desktop, "[data-send]")
    _no_reload_marker(desktop)

    answer = phone.locator("[data-seq='2']")
    answer.wait_for(timeout=LIVE_MS)  # the adviser's answer, polled in
    assert "少食多餐" in answer.inner_text()
    assert "王医生" in answer.inner_text()
    assert _stayed(phone), "the page reloaded"
    assert phone.locator("#consult-state").get_attribute("data-state") == "answered"

    picture = tmp_path / "box.png"
    picture.write_bytes(png(120, 90))
    phone.fill("#f-text", "这是我在吃的药")
    phone.set_input_files("#f-file", str(picture))
    submit(phone, "[data-send]")
    assert phone.locator("[data-seq='3'] img[data-image]").count() == 1
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width
    capture(phone, server, "consult-patient-thread")

    mine = desktop.locator("[data-seq='3']")
    mine.wait_for(timeout=LIVE_MS)  # the patient's picture reaches the adviser the same way
    assert "这是我在吃的药" in mine.inner_text()
    assert mine.locator("img[data-image]").evaluate("img => img.complete && img.naturalWidth") == 120
    assert _stayed(desktop), "the console reloaded"
    axe_check(desktop)
    shot(desktop, "consult-staff-thread")

    phone.goto(f"{server.url}/me/consult/{tid}")
    submit(phone, "[data-close]")
    assert phone.locator("[data-rating]").count() == 1
    phone.check("input[name=stars][value='4']")
    phone.fill("#f-comment", "回复很及时")
    submit(phone, "[data-rate]")
    assert phone.locator("[data-rated='4']").count() == 1
    capture(phone, server, "consult-patient-rated")


def test_pg_smoke_an_answer_arrives_without_reloading(pg_server: Server, phone: Any) -> None:
    department = _department("endo2")
    pid = enrol(utc_now(), phone="13900008902")
    from tests.e2e.helpers import staff_user

    adviser = staff_user("clinician")
    _roster(adviser["id"], department)
    with write_tx() as s:
        doc, _ = service.open_thread(s, ThreadOpen.model_validate(open_body(pid, department_id=department)),
                                     Actor("patient", pid, "patient"), utc_now())
    login_patient(phone, pg_server, "13900008902", pid, next_path=f"/me/consult/{doc['id']}")
    phone.goto(f"{pg_server.url}/me/consult/{doc['id']}")
    _no_reload_marker(phone)
    with write_tx() as s:
        service.post_as_staff(s, doc["id"], Actor("staff", adviser["id"], "clinician"), utc_now(), text="请按时服药")
    phone.locator("[data-seq='2']").wait_for(timeout=LIVE_MS)
    assert "请按时服药" in phone.locator("[data-seq='2']").inner_text()
    assert _stayed(phone)
