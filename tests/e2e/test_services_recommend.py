"""Recommendations (为您推荐) in Chromium on a 390 × 844 phone: a hypertension patient's home page
loads the block with the BP task first, "为什么推荐" opens its reason, elderly mode shows fewer
and bigger (accessibility check, nothing wider than the phone); the settings switch turns the
block off and on again. Screenshots (normal and elderly) for review; a PostgreSQL smoke run."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from carepoints.audit.service import Actor
from carepoints.engagement.health import conditions
from carepoints.engagement.health.schemas import ConditionCode, ConditionSet
from carepoints.engagement.learning import education, lectures
from carepoints.engagement.learning.schemas import ContentCreate, LectureCreate
from carepoints.kit.db import write_tx
from carepoints.kit.time import utc_now
from tests.e2e.conftest import Server
from tests.e2e.helpers import axe_check, login_patient, px, set_elderly, shot, submit
from tests.helpers import enrol

E2E = Actor.system("e2e")


def _hypertension_patient(phone_number: str) -> str:
    now = utc_now()
    pid = enrol(now, phone=phone_number)
    with write_tx() as s:
        conditions.set_condition(s, pid, ConditionCode.hypertension, ConditionSet(source="his"), E2E, now)
        education.create(s, ContentCreate.model_validate({
            "kind": "article", "title": {"zh": "高血压的日常管理", "en": "Living with hypertension"},
            "body_text": "少盐、规律作息、按时测量。", "duration_seconds": 120, "conditions": ["hypertension"],
            "status": "published", "quiz": {"pass_mark": 60, "questions": [
                {"text": "每天记录血压有帮助吗?", "choices": ["有", "没有"], "correct": [0]}]}}), E2E, now)
        start = now + timedelta(days=3)
        lectures.create(s, LectureCreate.model_validate({
            "title": {"zh": "健康讲座:高血压的自我管理", "en": "Living with hypertension"},
            "starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=1)).isoformat(),
            "place": "门诊楼三楼报告厅", "seats": 40}), E2E, now)
    return pid


def _card(page: Any) -> Any:
    page.wait_for_selector("[data-recommendations]")
    return page.locator("[data-recommendations]")


def test_a_patient_sees_why_and_switches_recommendations_off(server: Server, phone: Any) -> None:
    pid = _hypertension_patient("13900008901")
    login_patient(phone, server, "13900008901", pid, next_path="/")
    phone.goto(f"{server.url}/")
    card = _card(phone)
    items = card.locator("li[data-rec]")
    assert items.count() == 4
    first = items.nth(0)
    assert first.get_attribute("data-rec") == "hypertension_bp"
    assert "今天测量并记录血压" in first.inner_text()
    assert not first.locator("[data-reason]").is_visible()
    first.locator("summary").click()
    reason = first.locator("[data-reason]")
    assert reason.is_visible()
    assert reason.inner_text().startswith("因为您登记了高血压")
    assert px(phone, "[data-recommendations] summary", "minHeight") >= 44
    axe_check(phone)
    shot(phone, "recommend-home")

    set_elderly(phone, server, True)
    card = _card(phone)
    assert phone.locator("body.elderly").count() == 1
    assert card.locator("li[data-rec]").count() == 2
    assert px(phone, "[data-recommendations] summary", "minHeight") >= 56
    assert px(phone, "[data-recommendations] .cp-rec-go", "fontSize") >= 21
    card.locator("li[data-rec] summary").nth(1).click()
    axe_check(phone)
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width
    shot(phone, "recommend-home-elderly")
    submit(phone, "[data-rec-all]")
    assert phone.locator("[data-disclaimer]").count() == 1
    axe_check(phone)
    shot(phone, "recommend-list-elderly")
    set_elderly(phone, server, False)

    phone.goto(f"{server.url}/me/settings")
    phone.wait_for_selector("[data-recommend-switch]")
    assert phone.locator("[data-recommend-switch]").get_attribute("data-enabled") == "true"
    axe_check(phone)
    shot(phone, "recommend-settings")
    submit(phone, "[data-recommend-toggle]")
    phone.wait_for_selector("[data-recommend-switch][data-enabled='false']")
    phone.goto(f"{server.url}/")
    phone.wait_for_selector("[data-recommendations-empty]", state="attached")
    assert phone.locator("[data-recommendations]").count() == 0
    assert not phone.locator("#recommend-card").is_visible()
    shot(phone, "recommend-home-off")
    phone.goto(f"{server.url}/me/settings")
    phone.wait_for_selector("[data-recommend-switch][data-enabled='false']")
    submit(phone, "[data-recommend-toggle]")
    phone.goto(f"{server.url}/")
    assert _card(phone).locator("li[data-rec]").first.get_attribute("data-rec") == "hypertension_bp"


def test_pg_smoke_the_home_page_recommends_bp_first(pg_server: Server, phone: Any) -> None:
    pid = _hypertension_patient("13900008902")
    login_patient(phone, pg_server, "13900008902", pid, next_path="/")
    phone.goto(f"{pg_server.url}/")
    assert _card(phone).locator("li[data-rec]").first.get_attribute("data-rec") == "hypertension_bp"
