"""The terms page (积分规则) in a phone-sized Chromium: content, type size, the
upcoming change highlighted; screenshots saved for review."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from carepoints.audit.service import Actor
from carepoints.kit.db import write_tx
from carepoints.kit.ids import new_id
from carepoints.kit.time import utc_now
from carepoints.rules import governance
from tests.e2e.conftest import SCREENSHOTS, Server


def _schedule_change() -> None:
    now = utc_now()
    with write_tx() as session:
        did = governance.propose(
            session, Actor("api_key", new_id(), "admin"), now=now, activate_at=now + timedelta(days=14),
            summary={"zh": "健康讲座积分由30分提高到40分;提前预约积分由30分提高到40分。",
                     "en": "Health lectures and booking ahead now earn 40 points instead of 30."},
            changes={"rules": [{"code": "lecture", "points": 40}, {"code": "book_ahead", "points": 40}]})["id"]
        governance.approve(session, did, Actor("staff", new_id(), "admin"), now)


def _px(page: Any, selector: str) -> float:
    return float(page.eval_on_selector(selector, "e => parseFloat(getComputedStyle(e).fontSize)"))


def test_terms_page_on_a_phone(server: Server, phone: Any) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    phone.goto(f"{server.url}/terms")
    assert phone.title().startswith("积分规则")
    core = phone.locator("#core [data-rule]")
    assert core.count() == 5
    assert core.first.locator("h3").inner_text() == "提前预约"
    assert "爽约" in phone.locator("#core").inner_text()
    assert "每年最多获得10000积分" in phone.locator("#settings").inner_text()
    assert "第 1 版" in phone.locator("#history").inner_text()
    assert phone.locator("#upcoming").count() == 0
    assert _px(phone, "body") >= 18
    assert _px(phone, "#core [data-rule] li") >= 18
    assert _px(phone, "#rules .note") >= 18
    # nothing wider than the phone: no sideways scrolling
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    phone.screenshot(path=str(SCREENSHOTS / "terms-zh.png"), full_page=True)

    _schedule_change()
    phone.goto(f"{server.url}/terms")
    banner = phone.locator("#upcoming")
    assert banner.is_visible()
    assert "积分规则将于" in banner.inner_text()
    assert "健康讲座积分由30分提高到40分" in banner.inner_text()
    assert "第 2 版" in phone.locator("#history").inner_text()
    assert "即将生效" in phone.locator("#history").inner_text()
    phone.screenshot(path=str(SCREENSHOTS / "terms-zh-upcoming.png"), full_page=False)
    banner.locator("summary").click()
    assert "健康讲座" in banner.inner_text()
    assert "+40积分" in banner.inner_text()

    phone.goto(f"{server.url}/terms?lang=en")
    assert phone.locator("h1").inner_text() == "Points rules"
    assert "Booked ahead" in phone.locator("#core").inner_text()
    assert "The points rules change on" in phone.locator("#upcoming").inner_text()
    phone.screenshot(path=str(SCREENSHOTS / "terms-en.png"), full_page=True)
    phone.get_by_text("中文").click()
    assert phone.locator("h1").inner_text() == "积分规则"
