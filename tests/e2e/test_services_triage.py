"""Triage guidance (智能导诊) in Chromium: a patient on a 390 px phone in elderly mode types a
red-flag description and sees the urgent panel first (the 120 call link above everything
else), then types 咳嗽发热三天 and sees 呼吸内科 with the reason and a booking link that opens
the booking page; the admin on a desktop adds a patient's phrase to a term, and the patient's
next triage follows it. Screenshots of every step; the accessibility check in elderly mode."""

from __future__ import annotations

from typing import Any

from carepoints.kit.time import utc_now
from tests.e2e.conftest import Server
from tests.e2e.helpers import axe_check, login_patient, login_staff, set_elderly, shot, submit
from tests.helpers import enrol
from tests.services.triage.world import TriageHospital


def fits(page: Any) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, page.url


def ask(page: Any, text: str) -> None:
    page.fill("#f-text", text)
    submit(page, "[data-ask]")


def test_triage_on_a_phone_and_the_admins_edit(server: Server, phone: Any, desktop: Any) -> None:
    h = TriageHospital(("呼吸内科", "Respiratory medicine"), ("眼科", "Ophthalmology"))
    h.open_session("呼吸内科")
    enrol(utc_now(), phone="13812347001", name="赵淑珍", birth_date="1952-05-06", sex="female")
    login_patient(phone, server, "13812347001", next_path="/")
    assert phone.locator("[data-nav-triage]").count() == 1
    submit(phone, "[data-nav-triage]")
    assert phone.url.endswith("/me/triage")
    set_elderly(phone, server, True)
    assert phone.locator("body.elderly").count() == 1
    assert phone.input_value("#f-age").isdigit()  # from her profile
    fits(phone)
    axe_check(phone)
    shot(phone, "triage-form-elderly")

    ask(phone, "我老伴刚才突然左边胳膊没劲了，嘴也歪了")
    panel = phone.locator("[data-urgent]")
    assert panel.is_visible()
    assert "请立即前往急诊或拨打120" in panel.inner_text()
    assert phone.locator("[data-call='120']").get_attribute("href") == "tel:120"
    panel_top = panel.bounding_box()["y"]
    assert panel_top < phone.locator("[data-triage-form]").bounding_box()["y"]
    assert panel_top < 200  # first on the page, right under the header
    assert phone.locator("[data-kind]").count() == 0
    fits(phone)
    axe_check(phone)
    shot(phone, "triage-urgent-elderly")

    ask(phone, "咳嗽发热三天")
    card = phone.locator("[data-kind='respiratory']")
    assert card.is_visible()
    assert "呼吸内科" in card.inner_text()
    assert "因为您提到“咳嗽”“发热”" in card.inner_text()
    assert phone.locator("[data-urgent]").count() == 0
    fits(phone)
    axe_check(phone)
    shot(phone, "triage-departments-elderly")
    submit(phone, f"[data-book-department='{h.departments['呼吸内科']}']")
    assert phone.url.endswith(f"/me/book/departments/{h.departments['呼吸内科']}")
    assert "呼吸" in phone.locator("main").inner_text()
    shot(phone, "triage-booking-elderly")

    phone.goto(f"{server.url}/me/triage")
    ask(phone, "眼珠子咕噜咕噜的")
    assert phone.locator("[data-unmatched]").is_visible()
    shot(phone, "triage-unmatched-elderly")

    login_staff(desktop, server, "admin")
    desktop.goto(f"{server.url}/admin/triage")
    assert desktop.locator("[data-count-flag='stroke_signs']").is_visible()
    axe_check(desktop)
    shot(desktop, "triage-admin")
    submit(desktop, "[data-term-edit='red_eye']")
    synonyms = desktop.input_value("#f-synonyms")
    desktop.fill("#f-synonyms", synonyms + "\n眼珠子…咕噜")
    shot(desktop, "triage-admin-term")
    submit(desktop, "[data-save]")
    assert "词条已保存" in desktop.locator("#flash").inner_text()
    assert "眼珠子…咕噜" in desktop.locator("[data-term='red_eye']").inner_text()
    shot(desktop, "triage-admin-saved")

    phone.goto(f"{server.url}/me/triage")
    ask(phone, "眼珠子咕噜咕噜的")
    eye = phone.locator("[data-kind='ophthalmology']")
    assert eye.is_visible()
    assert "眼珠子咕噜" in eye.inner_text()
    assert phone.locator(f"[data-book-department='{h.departments['眼科']}']").is_visible()
    fits(phone)
    shot(phone, "triage-after-edit-elderly")
