"""Health and learning in Chromium on a phone: a blood pressure reading recorded over HTMX with
its points, an abnormal glucose with the careful wording, the 30-day trend chart drawn by
ECharts (a canvas, data-chart-ready), today's medicine checked in, a quiz passed, a lecture
registered, a follow-up and the monthly satisfaction survey answered, a visit reviewed, a photo
uploaded and the invite code; each page captured in normal and elderly mode with the
accessibility check and elderly mode's sizes, none wider than the phone. A short smoke run on PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from carepoints.kit.time import utc_now
from tests.e2e.conftest import Server
from tests.e2e.helpers import capture, login_patient, shot, submit
from tests.helpers import enrol
from tests.pages.test_patient_health import (
    attended_visit,
    due_step,
    lecture,
    medicine_plan,
    photo_task,
    png,
    quiz_item,
)


def fits(page: Any) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, page.url


def test_readings_trend_and_medicine(server: Server, phone: Any) -> None:
    pid = enrol(utc_now(), phone="13812346001", name="陈秀兰", birth_date="1950-03-02")
    medicine_plan(pid)
    login_patient(phone, server, "13812346001", next_path="/me/health")
    assert phone.url.endswith("/me/health")
    fits(phone)
    capture(phone, server, "health-empty")

    phone.fill("#f-systolic", "132")
    phone.fill("#f-diastolic", "84")
    phone.fill("#f-pulse", "72")
    phone.click("#bp-box button[type=submit]")
    phone.wait_for_selector("#bp-box [data-result]")
    assert "奖励" in phone.locator("#bp-box [data-result]").inner_text()
    assert phone.input_value("#f-systolic") == ""  # a fresh form for the next reading

    phone.fill("#f-glucose", "3.2")
    phone.click("#glu-box button[type=submit]")
    phone.wait_for_selector("#glu-box [data-advice]")
    assert "血糖偏低" in phone.locator("#glu-box [data-advice]").inner_text()
    fits(phone)
    capture(phone, server, "health-recorded")

    phone.fill("#f-systolic", "90")
    phone.fill("#f-diastolic", "95")
    phone.click("#bp-box button[type=submit]")
    phone.wait_for_selector("#e-diastolic")
    assert "舒张压应低于收缩压" in phone.locator("#e-diastolic").inner_text()

    phone.click("#doses button[type=submit]")
    phone.wait_for_selector("#doses [data-dose-done]")

    phone.goto(f"{server.url}/me/health")
    phone.wait_for_selector("[data-chart-ready]")
    assert phone.locator(".cp-chart canvas").count() >= 1
    assert "132/84 mmHg" in phone.locator(".cp-trend-table").inner_text()
    assert phone.locator("#doses [data-dose-done]").count() == 1
    fits(phone)
    capture(phone, server, "health-trend")


def test_learning_and_tasks(server: Server, phone: Any, tmp_path: Path) -> None:
    item = quiz_item()
    lecture()
    task = photo_task()
    pid = enrol(utc_now(), phone="13812346002", name="刘建国", birth_date="1952-07-08")
    step = due_step(pid)
    appt = attended_visit(pid)
    login_patient(phone, server, "13812346002", next_path="/me/learn")
    fits(phone)
    capture(phone, server, "learn-list")

    submit(phone, f"a[href='/me/learn/{item}']")
    capture(phone, server, "learn-item")
    phone.check("#c-0-0")
    phone.check("#c-1-0")
    phone.check("#c-1-1")
    submit(phone, "#quiz button[type=submit]")
    assert phone.locator("[data-score='100']").count() == 1
    assert "奖励" in phone.locator("[data-result]").inner_text()
    fits(phone)
    capture(phone, server, "learn-passed")

    phone.goto(f"{server.url}/me/lectures")
    capture(phone, server, "lectures")
    submit(phone, "[data-lecture] form button")
    assert "报名成功" in phone.locator("main").inner_text()
    assert phone.locator("[data-registered]").count() == 1
    fits(phone)
    capture(phone, server, "lectures-registered")

    phone.goto(f"{server.url}/me/followups")
    capture(phone, server, "followups")
    submit(phone, f"a[href='/me/followups/{step}']")
    capture(phone, server, "followup-form")
    phone.check("#q-0-0")
    phone.fill("#q-1", "36.8")
    submit(phone, "form button[type=submit]")
    assert phone.locator("[data-result]").count() == 1
    fits(phone)
    capture(phone, server, "followup-answered")

    phone.goto(f"{server.url}/me/health")
    submit(phone, "[data-nav-survey]")  # 更多健康任务 → 满意度调查
    capture(phone, server, "survey-form")
    phone.check("#q-0-0")
    phone.check("#q-1-1")
    phone.check("#q-2-0")
    phone.fill("#q-3", "9")
    submit(phone, "[data-submit-survey]")
    assert "奖励50积分" in phone.locator("[data-result]").inner_text()
    assert phone.locator("[data-survey-done]").count() == 1
    fits(phone)
    shot(phone, "survey-answered")  # (capture() would reload the form: a GET)

    phone.goto(f"{server.url}/me/reviews")
    capture(phone, server, "reviews")
    phone.check(f"#r-5-{appt}")
    phone.fill(f"#t-{appt}", "医生非常耐心,详细解释了检查结果和用药注意事项,护士也很热情,整个就诊过程安排得井井有条。")
    submit(phone, f"[data-appointment='{appt}'] button[type=submit]")
    assert phone.locator(f"[data-review='{appt}']").count() == 1
    fits(phone)
    capture(phone, server, "reviews-done")

    picture = tmp_path / "walk.png"
    picture.write_bytes(png((120, 90)))
    phone.goto(f"{server.url}/me/photos")
    capture(phone, server, "photos")
    phone.set_input_files(f"[data-task='{task}'] input[type=file]", str(picture))
    submit(phone, f"[data-task='{task}'] button[type=submit]")
    assert phone.locator(f"[data-task='{task}'] [data-result]").count() == 1
    fits(phone)
    capture(phone, server, "photos-uploaded")

    phone.goto(f"{server.url}/me/invite")
    assert phone.locator(".cp-qr svg").is_visible()
    assert len(phone.locator("[data-invite-code]").inner_text().strip()) >= 4
    fits(phone)
    capture(phone, server, "invite")


def test_health_on_postgresql(pg_server: Server, phone: Any) -> None:
    enrol(utc_now(), phone="13812346009", name="赵六")
    login_patient(phone, pg_server, "13812346009", next_path="/me/health")
    phone.fill("#f-systolic", "128")
    phone.fill("#f-diastolic", "82")
    phone.click("#bp-box button[type=submit]")
    phone.wait_for_selector("#bp-box [data-result]")
    phone.goto(f"{pg_server.url}/me/health")
    phone.wait_for_selector("[data-chart-ready]")
    assert "128/82 mmHg" in phone.locator(".cp-trend-table").inner_text()
