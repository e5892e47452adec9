"""The programme admin's rules in Chromium (desktop): a rule changed through its form becomes
a draft with its diff and 30-day simulation, the author's own approval is refused, a second
admin approves and the rules table shows the new version; screenshots of each page and an
accessibility check; a PostgreSQL smoke run of the rules table, a draft and its simulation."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from carepoints.kit.time import utc_now
from tests.e2e.conftest import Server, browser_context
from tests.e2e.helpers import axe_check, login_staff, shot, submit
from tests.helpers import enrol, event, ingest_one


@pytest.fixture
def desktop2(browser: Any) -> Iterator[Any]:
    """A second admin's browser (their own cookies)."""
    with browser_context(browser, viewport={"width": 1280, "height": 800}, locale="zh-CN", bypass_csp=True) as context:
        yield context.new_page()


def _events() -> None:
    """Two self-service uses three days ago (10 points each today)."""
    now = utc_now()
    pid = enrol(now - timedelta(days=40))
    d = (now - timedelta(days=3)).date()
    for m in range(2):
        ingest_one(now, event(pid, "selfservice.used", datetime(d.year, d.month, d.day, 2, m, tzinfo=UTC),
                              {"action": "pay"}))


def _draft_points(page: Any, server: Server, name: str | None) -> None:
    page.goto(f"{server.url}/admin/rules")
    assert page.locator("tr[data-rule=self_service] [data-points]").inner_text() == "10"
    if name:
        axe_check(page)
        shot(page, f"{name}-table")
    submit(page, "tr[data-rule=self_service] a.cp-btn")
    page.fill("#f-points", "abc")
    page.fill("#f-summary_zh", "自助服务积分提高到20")
    page.fill("#f-summary_en", "Self-service pays 20")
    submit(page, "[data-rule-form] button[type=submit]")
    assert page.locator("#e-points").count() == 1  # the error next to its field, the form kept
    if name:
        shot(page, f"{name}-form-error")
    page.fill("#f-points", "20")
    if name:
        axe_check(page)
        shot(page, f"{name}-form")
    submit(page, "[data-rule-form] button[type=submit]")
    page.wait_for_selector("[data-simulation]")
    assert "10" in page.locator("tr[data-change='self_service.points'] del").inner_text()
    row = page.locator("tr[data-sim-rule=self_service]").inner_text()
    # the draft pays 20, then 10 (the day's 30): +10 against 10 + 10
    assert page.locator("tr[data-sim-rule=self_service] [data-diff-points]").inner_text() == "+10", row


def test_rule_draft_simulation_and_second_admin_approval(server: Server, desktop: Any, desktop2: Any) -> None:
    _events()
    login_staff(desktop, server, "admin")
    _draft_points(desktop, server, "admin-rules")
    axe_check(desktop)
    shot(desktop, "admin-rules-draft")
    submit(desktop, "[data-approve] button[type=submit]")
    assert desktop.locator("[data-error='programme.approver_is_author']").count() == 1
    shot(desktop, "admin-rules-own-refused")
    draft_url = desktop.url.rsplit("/approve", 1)[0]

    login_staff(desktop2, server, "admin")
    desktop2.goto(f"{server.url}/admin/drafts")
    axe_check(desktop2)
    shot(desktop2, "admin-rules-drafts")
    submit(desktop2, "table[data-table=drafts] a")
    assert desktop2.url.startswith(draft_url)
    desktop2.fill("[data-approve] #f-note", "已核对模拟结果")
    submit(desktop2, "[data-approve] button[type=submit]")
    assert desktop2.locator("[data-draft-status=approved]").count() == 1
    shot(desktop2, "admin-rules-approved")
    desktop2.goto(f"{server.url}/admin/rules")
    assert desktop2.locator("[data-version='2']").count() == 1
    assert desktop2.locator("tr[data-rule=self_service] [data-points]").inner_text() == "20"
    desktop2.goto(f"{server.url}/admin/settings?lang=en")
    axe_check(desktop2)
    shot(desktop2, "admin-rules-settings-en")


def test_postgres_smoke(pg_server: Server, desktop: Any) -> None:
    _events()
    login_staff(desktop, pg_server, "admin")
    _draft_points(desktop, pg_server, None)
    shot(desktop, "admin-rules-pg-draft")
