"""The programme admin's management pages in Chromium (desktop): a reward created through the form,
a refused entry shown in place, stock added and the reward disabled; an API key created (its secret
shown once) and revoked; the tiers, budget, templates and staff pages shot; the admin on a 390 × 844
phone (a compact top bar, the language switch keeping the page's query); a PostgreSQL smoke run."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.time import utc_now
from carepoints.rewards import service as rewards
from carepoints.rules import governance
from carepoints.security import service as security
from tests.e2e.conftest import Server
from tests.e2e.helpers import axe_check, login_staff, shot, submit
from tests.e2e.test_staff_desk import console_fits_a_phone
from tests.pages.test_admin_manage import security_actor


def _stock(code: str) -> Any:
    with read_tx() as session:
        items = rewards.catalogue(session, None, utc_now(), include_inactive=True)["items"]
    return next(i for i in items if i["code"] == code)


def _reward_flow(page: Any, server: Server, name: str) -> None:
    page.goto(f"{server.url}/admin/rewards")
    shot(page, f"{name}-rewards")
    page.fill("#f-code", "tea_cup")
    page.select_option("#f-kind", "coupon")
    page.fill("#f-name_zh", "保温杯")
    page.fill("#f-name_en", "Vacuum cup")
    page.fill("#f-points", "0")  # refused: shown next to the form, the entries kept
    page.fill("#f-stock", "5")
    page.fill("#f-cost_cny", "18")
    submit(page, "[data-reward-form] button[type=submit]")
    page.wait_for_selector("[data-reward-form] #e-points")
    assert page.locator("#f-name_en").input_value() == "Vacuum cup"
    shot(page, f"{name}-reward-refused")
    page.fill("#f-points", "300")
    submit(page, "[data-reward-form] button[type=submit]")
    row = page.locator("tr[data-reward='tea_cup']")
    assert row.locator("[data-stock]").inner_text() == "5"
    row.locator("input[name=add]").fill("20")
    submit(page, "tr[data-reward='tea_cup'] [data-add-stock]")
    assert page.locator("tr[data-reward='tea_cup'] [data-stock]").inner_text() == "25"
    assert _stock("tea_cup")["stock"] == 25
    shot(page, f"{name}-reward-stock")
    submit(page, "tr[data-reward='tea_cup'] [data-toggle]")
    assert page.locator("tr[data-reward='tea_cup'][data-active='0']").count() == 1
    assert _stock("tea_cup")["active"] is False
    shot(page, f"{name}-reward-disabled")


def _key_flow(page: Any, server: Server, name: str) -> None:
    page.goto(f"{server.url}/admin/keys")
    page.fill("#f-name", "HIS 接口")
    page.fill("#f-expires_days", "365")
    submit(page, "[data-key-form] button[type=submit]")
    secret = page.locator("[data-secret]").input_value()
    assert secret.startswith("cpk_")
    shot(page, f"{name}-key-created")
    with read_tx() as session:
        principal = security.authenticate_key(session, secret)
    assert principal is not None
    page.goto(f"{server.url}/admin/keys")
    assert secret not in page.content()  # shown once only
    submit(page, f"tr[data-key='{principal.id}'] [data-revoke]")
    assert page.locator(f"tr[data-key='{principal.id}'][data-live='0']").count() == 1
    shot(page, f"{name}-key-revoked")
    with read_tx() as session:
        assert security.authenticate_key(session, secret) is None


def _clinician() -> str:
    from tests.pages.test_admin_manage import _clinician as make
    return make()


def _budget_in_force() -> None:
    with write_tx() as session:
        draft = governance.propose(session, security_actor("b"), summary={"zh": "预算", "en": "Budget"},
                                   activate_at=utc_now() + timedelta(milliseconds=300), now=utc_now(),
                                   changes={"settings": {"budget": {"cny": "20000", "alerts": [80, 100]}}})
        governance.approve(session, draft["id"], security_actor("c"), utc_now())
    time.sleep(0.5)


def test_admin_rewards_keys_and_pages(server: Server, desktop: Any) -> None:
    login_staff(desktop, server, "admin")
    _reward_flow(desktop, server, "admin2")
    _key_flow(desktop, server, "admin2")
    desktop.goto(f"{server.url}/admin/rewards/tea_cup")
    shot(desktop, "admin2-reward-edit")
    for path in ("tiers", "budget", "templates", "staff"):
        desktop.goto(f"{server.url}/admin/{path}")
        axe_check(desktop)
        shot(desktop, f"admin2-{path}")
    # a staff user created, then moved to another role
    desktop.goto(f"{server.url}/admin/staff")
    desktop.fill("#f-username", "nurse_zhang")
    desktop.fill("#f-password", "temporary-pass-9")
    desktop.select_option("#f-role", "frontdesk")
    submit(desktop, "[data-staff-form] button[type=submit]")
    row = "tr[data-staff='nurse_zhang']"
    desktop.select_option(f"{row} select[name=role]", "nurse")
    submit(desktop, f"{row} [data-change-role]")
    assert desktop.locator(f"{row} [data-role]").inner_text() == "护士 / 随访"
    shot(desktop, "admin2-staff-role-changed")
    # a weekly template through the form, then the generate job with its count
    desktop.goto(f"{server.url}/admin/templates")
    desktop.fill("#f-owner_id", _clinician())
    desktop.select_option("#f-weekday", "3")
    desktop.fill("#f-slot_minutes", "15")
    desktop.fill("#f-fee_cny", "25")
    submit(desktop, "[data-template-form] button[type=submit]")
    assert desktop.locator("[data-weekday='3'] [data-template]").count() == 1
    submit(desktop, "[data-generate]")
    assert int(desktop.get_attribute("[data-generated]", "data-generated") or "0") >= 2
    shot(desktop, "admin2-templates-generated")
    # the gauge once a budget is in force
    _budget_in_force()
    desktop.goto(f"{server.url}/admin/budget")
    desktop.wait_for_selector("[data-chart-ready]")
    shot(desktop, "admin2-budget-gauge")
    desktop.goto(f"{server.url}/admin/keys?lang=en")
    shot(desktop, "admin2-keys-en")


def test_admin_on_a_phone(server: Server, phone: Any) -> None:
    login_staff(phone, server, "admin")
    phone.goto(f"{server.url}/admin")
    shot(phone, "admin2-phone-home")
    console_fits_a_phone(phone)
    axe_check(phone)
    phone.goto(f"{server.url}/admin/rewards?done=stock_added")
    assert "库存已增加" in phone.locator("#flash").inner_text()
    shot(phone, "admin2-phone-rewards")
    console_fits_a_phone(phone)
    submit(phone, "header a.cp-tool[lang=en]")  # the language switch keeps the page's query
    parts = urlsplit(phone.url)
    assert (parts.path, parse_qsl(parts.query)) == ("/admin/rewards", [("done", "stock_added"), ("lang", "en")])
    assert "Stock added" in phone.locator("#flash").inner_text()
    assert "Programme admin" in phone.locator(".cp-top h1").inner_text()
    shot(phone, "admin2-phone-rewards-en")
    console_fits_a_phone(phone)
    submit(phone, "header .cp-top-switch")  # to the staff console: still compact, in English
    assert urlsplit(phone.url).path == "/staff"
    shot(phone, "admin2-phone-console-en")
    console_fits_a_phone(phone)


def test_admin_smoke_on_postgresql(pg_server: Server, desktop: Any) -> None:
    login_staff(desktop, pg_server, "admin")
    _reward_flow(desktop, pg_server, "admin2-pg")
    _key_flow(desktop, pg_server, "admin2-pg")
