"""The satisfaction loop (满意度闭环) in Chromium: a patient on a 390 × 844 phone (normal and
elderly mode) files a complaint about their visit; a nurse on a desktop finds it on the
improvement queue with the name masked, assigns it to herself, records what was done and closes it
with a reply, which the patient then reads; an admin's dashboard paints its charts (desktop and
phone), shows a department's drop and acknowledges it. Screenshots for review; the accessibility
check on every page."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from carepoints.config import reset_settings
from carepoints.kit.time import utc_now
from carepoints.services.satisfaction import tasks
from tests.analytics import visits_kit as vk
from tests.e2e.conftest import Server
from tests.e2e.helpers import axe_check, capture, login_patient, login_staff, px, set_elderly, shot, submit
from tests.helpers import enrol
from tests.services.satisfaction.kit import World, detect

TEXT = "取药窗口只开了一个,排队一个多小时"


def test_a_complaint_goes_round_the_loop(server: Server, phone: Any, desktop: Any) -> None:
    w = World("A")
    pid = enrol(utc_now() - timedelta(days=30), phone="13900008811", name="周桂兰")
    appt = w.visit("A", vk.today() - timedelta(days=2), pid)
    login_patient(phone, server, "13900008811", pid, next_path="/me")
    submit(phone, "[data-nav-complaints]")
    assert phone.locator("[data-empty]").count() == 1
    submit(phone, "[data-new-complaint]")
    capture(phone, server, "satisfaction-patient-form")  # reloads the form: filled in below
    phone.check(f"[data-visit='{appt['id']}']")
    phone.check("input[name=category][value=waiting]")
    phone.fill("#f-text", TEXT)
    shot(phone, "satisfaction-patient-form-filled")
    submit(phone, "[data-submit-complaint]")
    item = phone.locator("[data-complaint]")
    assert item.count() == 1
    assert item.locator("[data-state]").inner_text() == "处理中"
    assert TEXT in item.locator("[data-text]").inner_text()
    assert "投诉已提交" in phone.locator("#flash").inner_text()
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width
    capture(phone, server, "satisfaction-patient-list")

    login_staff(desktop, server, "nurse")
    desktop.goto(f"{server.url}/staff/improvements")
    row = desktop.locator("[data-item][data-kind=complaint]")
    assert row.count() == 1
    assert row.locator("[data-patient]").inner_text() == "周**"  # masked
    axe_check(desktop)
    shot(desktop, "satisfaction-staff-queue")
    submit(desktop, "[data-kind=complaint] [data-open]")
    assert TEXT in desktop.locator("[data-said]").inner_text()
    submit(desktop, "[data-assign]")  # the first handler in the list may be anyone: pick oneself below
    desktop.fill("#f-text", "已协调药房增开窗口,并电话向患者致歉")
    submit(desktop, "[data-add-note]")
    assert "增开窗口" in desktop.locator("[data-notes]").inner_text()
    desktop.fill("#f-resolution", "药房高峰时段已增开两个取药窗口,感谢您的反馈。")
    axe_check(desktop)
    shot(desktop, "satisfaction-staff-item")
    submit(desktop, "[data-close]")
    assert desktop.locator("[data-state]").inner_text() == "已关闭"
    assert desktop.locator("[data-close-form]").count() == 0
    shot(desktop, "satisfaction-staff-closed")

    phone.goto(f"{server.url}/me/complaints")
    assert phone.locator("[data-complaint] [data-state]").inner_text() == "已处理"
    assert "增开两个取药窗口" in phone.locator("[data-reply]").inner_text()
    set_elderly(phone, server, True)
    assert px(phone, "[data-reply] p") >= 21
    axe_check(phone)
    shot(phone, "satisfaction-patient-reply-elderly")


def test_the_admin_dashboard_paints_and_acknowledges(server: Server, desktop: Any, phone: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAREPOINTS_SATISFACTION_SCAN_MARGIN_SECONDS", "0")
    monkeypatch.setenv("CAREPOINTS_SATISFACTION_ALERT_MIN_SAMPLES", "2")
    reset_settings()
    w = World("A", "B")
    today = vk.today()
    for dept, old, new in (("A", (5, 5), (2, 1)), ("B", (4, 4), (4, 5))):
        for rating in old:
            w.review(dept, today - timedelta(days=20), rating)
        for rating in new:
            w.review(dept, today - timedelta(days=4), rating)
    detect()
    assert tasks.satisfaction_alerts(utc_now())["alerts"] == 1
    login_staff(desktop, server, "admin")
    desktop.goto(f"{server.url}/admin/satisfaction")
    desktop.wait_for_selector("[data-chart-ready]")
    assert desktop.locator("[data-chart-ready]").count() == 3
    assert desktop.locator("[data-chart-error]").count() == 0
    assert desktop.locator("[data-kpi=open] [data-kpi-value]").inner_text() == "2"
    assert "科室A" in desktop.locator("[data-alert]").inner_text()
    axe_check(desktop)
    shot(desktop, "satisfaction-admin-dashboard")
    submit(desktop, "[data-ack]")
    assert "提醒已确认" in desktop.locator("#flash").inner_text()
    assert desktop.locator("[data-no-alerts]").count() == 1

    login_staff(phone, server, "admin")
    phone.goto(f"{server.url}/admin/satisfaction")
    phone.wait_for_selector("[data-chart-ready]")
    shot(phone, "satisfaction-admin-dashboard-phone")
    reset_settings()
