"""The staff console's review queues in Chromium (desktop): each queue with a decision made
through the buttons (HTMX row swaps), screenshots of each; a PostgreSQL smoke run of an
adjustment proposed by one staff member and approved by another."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from carepoints.engagement.care import service as care
from carepoints.engagement.care.schemas import AlertKind
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.time import utc_now
from carepoints.patients import service as patients
from tests.e2e.conftest import Server, browser_context
from tests.e2e.helpers import login_staff, shot, submit
from tests.helpers import balance, enrol
from tests.pages.test_staff_queues import _appeal, _due_step, _no_show, _pair, _post, _signal


@pytest.fixture
def desktop2(browser: Any) -> Iterator[Any]:
    """A second desktop browser (another staff member, their own cookies)."""
    with browser_context(browser, viewport={"width": 1280, "height": 800}, locale="zh-CN", bypass_csp=True) as context:
        yield context.new_page()


def _maker_checker(server: Server, maker: Any, checker: Any, pid: str, name: str) -> None:
    login_staff(maker, server, "frontdesk")
    maker.goto(f"{server.url}/staff/adjustments")
    maker.fill("#f-patient", pid)
    maker.fill("#f-points", "500")
    maker.select_option("#f-reason_code", "missed_award")
    maker.fill("#f-note", "漏发积分")
    submit(maker, "[data-propose] button[type=submit]")
    row = maker.locator("[data-queue=adjustments-pending] tr[data-status=pending]")
    assert row.count() == 1
    shot(maker, f"{name}-pending")
    row.locator("[data-approve]").click()  # one's own: the service refuses, the message shows
    maker.wait_for_selector("#flash [data-error='adjustments.approver_is_maker']")
    shot(maker, f"{name}-own-refused")
    assert balance(pid, utc_now()) == 100
    login_staff(checker, server, "frontdesk")
    checker.goto(f"{server.url}/staff/adjustments")
    checker.fill("[data-queue=adjustments-pending] input[name=note]", "已核实")
    checker.click("[data-queue=adjustments-pending] [data-approve]")
    checker.wait_for_selector("[data-queue=adjustments-pending] tr[data-status=posted]")
    shot(checker, f"{name}-approved")
    assert balance(pid, utc_now()) == 600


def test_adjustments_by_two_staff_members(server: Server, desktop: Any, desktop2: Any) -> None:
    _maker_checker(server, desktop, desktop2, enrol(utc_now()), "queues-adjustments")


def test_appeals_and_duplicates(server: Server, desktop: Any) -> None:
    pid = enrol(utc_now())
    appeal = _appeal(pid, _no_show(pid, 2))
    cid, keep, drop = _pair("13966660001")
    other, _a, _b = _pair("13966660002")
    login_staff(desktop, server, "frontdesk")
    desktop.goto(f"{server.url}/staff/appeals")
    shot(desktop, "queues-appeals")
    submit(desktop, f"[data-appeal='{appeal}'] a")
    desktop.fill("#f-note", "住院证明已核对")
    desktop.click("[data-reverse]")
    desktop.wait_for_selector("[data-appeal-status=reversed]")
    assert desktop.locator("#appeal-history [data-balance]").inner_text() == "100"
    shot(desktop, "queues-appeal-reversed")
    assert balance(pid, utc_now()) == 100
    desktop.goto(f"{server.url}/staff/duplicates")
    shot(desktop, "queues-duplicates")
    submit(desktop, f"[data-candidate='{cid}'] [data-keep='{keep}']")
    shot(desktop, "queues-merge-confirm")
    submit(desktop, "[data-confirm-merge]")
    assert "status=merged" in desktop.url
    with read_tx() as s:
        assert patients.read(s, drop, reveal_pii=False)["status"] == "merged"
    desktop.goto(f"{server.url}/staff/duplicates")
    desktop.click(f"[data-candidate='{other}'] [data-dismiss]")
    desktop.wait_for_selector(f"[data-candidate='{other}'][data-status=dismissed]")
    shot(desktop, "queues-duplicate-dismissed")


def test_care_alerts_and_followups(server: Server, desktop: Any) -> None:
    now = utc_now()
    pid = enrol(now)
    with write_tx() as s:
        alert = care.raise_alert(s, patient_id=pid, kind=AlertKind.abnormal_reading, source_ref=f"r:{pid}", now=now,
                                 severity="critical")
    step = _due_step(pid)
    login_staff(desktop, server, "nurse")
    desktop.goto(f"{server.url}/staff/care-alerts")
    desktop.click(f"[data-alert='{alert}'] [data-acknowledge]")
    desktop.wait_for_selector(f"[data-alert='{alert}'][data-status=acknowledged]")
    shot(desktop, "queues-care-alerts")
    desktop.select_option(f"[data-alert='{alert}'] select[name=resolution]", "contacted")
    desktop.click(f"[data-alert='{alert}'] [data-resolve]")
    desktop.wait_for_selector(f"[data-alert='{alert}'][data-status=resolved]")
    desktop.goto(f"{server.url}/staff/followups")
    shot(desktop, "queues-followups")
    submit(desktop, f"[data-step='{step}'] a")
    desktop.check("input[name=q_pain][value=severe]")
    desktop.fill("#q-temp", "37.5")
    shot(desktop, "queues-followup-form")
    submit(desktop, "[data-record]")
    assert "done=recorded_abnormal" in desktop.url
    assert desktop.locator("[data-abnormal]").count() == 1
    shot(desktop, "queues-followup-recorded")


def test_moderation_and_fraud(server: Server, desktop: Any, desktop2: Any) -> None:
    pid = enrol(utc_now())
    post = _post(pid, "每天饭后散步三十分钟,血糖平稳多了。")
    suspect = enrol(utc_now())
    signal, _ = _signal(suspect, (utc_now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H"))
    login_staff(desktop, server, "moderator")
    desktop.goto(f"{server.url}/staff/moderation")
    shot(desktop, "queues-moderation")
    desktop.click(f"[data-post='{post}'] [data-approve]")
    desktop.wait_for_selector(f"[data-post='{post}'][data-status=approved] [data-awarded]")
    shot(desktop, "queues-moderation-approved")
    assert balance(pid, utc_now()) == 120
    login_staff(desktop2, server, "admin")
    desktop2.goto(f"{server.url}/staff/fraud")
    shot(desktop2, "queues-fraud")
    desktop2.click(f"[data-signal='{signal}'] [data-action=freeze]")
    desktop2.wait_for_selector(f"[data-signal='{signal}'][data-status=actioned]")
    shot(desktop2, "queues-fraud-frozen")
    with read_tx() as s:
        assert patients.read(s, suspect, reveal_pii=False)["earning_frozen"] is True


def test_adjustments_on_postgresql(pg_server: Server, desktop: Any, desktop2: Any) -> None:
    _maker_checker(pg_server, desktop, desktop2, enrol(utc_now()), "queues-adjustments-pg")
