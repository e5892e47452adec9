"""智能号源 in Chromium: a programme admin on a 390 × 844 phone runs a forecast over nine weeks of
bookings, sees the models' held-back errors with the chosen one, the line chart painted (history,
held-back forecast, forecast), applies next Tuesday's suggestion (8 → 11 slots) and sees it
applied; the English page; the accessibility check passes and the page is no wider than the phone
(tables scroll inside it). Screenshots for review (the admin console has no elderly mode: it is a
patient setting)."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import Server
from tests.e2e.helpers import axe_check, login_staff, shot, submit
from tests.services.forecast.world import Demand, capacity_of

PAINTED = """() => [...document.querySelectorAll('[data-chart]')].every(e => {
    const c = e.querySelector('canvas');
    if (!e.hasAttribute('data-chart-ready') || !c || !c.width) return false;
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let inked = 0;
    for (let i = 3; i < d.length; i += 4) { if (d[i]) inked++; }
    return inked > 1000;
})"""


def test_an_admin_runs_a_forecast_and_applies_a_suggestion_on_a_phone(server: Server, phone: Any) -> None:
    w = Demand()
    login_staff(phone, server, "admin")
    phone.goto(f"{server.url}/admin/forecast")
    assert "还没有预测" in phone.locator("main").inner_text()
    phone.select_option("#f-weeks", "2")
    submit(phone, "[data-run]")
    assert "预测已完成" in phone.locator("#flash").inner_text()
    assert phone.locator("[data-model][data-chosen]").count() == 1
    assert phone.locator("[data-overall-wape]").inner_text() == "0.0%"
    phone.wait_for_function(PAINTED)
    axe_check(phone)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    shot(phone, "forecast-admin-phone")

    row = phone.locator(f"tr[data-status='pending']:has-text('{w.tuesday['date'][5:]}')")
    assert row.locator("[data-current]").inner_text().startswith("8")
    assert row.locator("[data-suggested]").inner_text().startswith("11")
    submit(phone, f"tr[data-status='pending']:has-text('{w.tuesday['date'][5:]}') [data-apply]")
    assert "已按建议调整号源数量" in phone.locator("#flash").inner_text()
    assert phone.locator(f"tr[data-status='applied']:has-text('{w.tuesday['date'][5:]}')").count() == 1
    assert capacity_of(w.tuesday["id"]) == (11, 11)
    shot(phone, "forecast-admin-applied")

    phone.goto(f"{server.url}/admin/forecast?lang=en")
    assert "Held-back WAPE" in phone.locator("main").inner_text()
    phone.wait_for_function(PAINTED)
    shot(phone, "forecast-admin-phone-en")
