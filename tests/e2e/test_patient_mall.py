"""The rewards mall in Chromium on a phone (390 × 844): browse, open a reward, redeem it, see the
coupon's QR code; a refusal (not enough points) shown on the reward; each page captured in
normal and elderly mode with the accessibility check; a PostgreSQL smoke run of a redemption."""

from __future__ import annotations

from typing import Any

from carepoints.kit.time import utc_now
from tests.e2e.conftest import Server
from tests.e2e.helpers import capture, login_patient, shot, submit
from tests.helpers import balance
from tests.rewards.kit import add_reward, patient_with


def _phone_of(pid: str) -> str:
    from carepoints.kit.db import read_tx
    from carepoints.patients import service as patients

    with read_tx() as session:
        return patients.contact(session, [pid])[pid]


def test_browse_redeem_and_show_the_coupon(server: Server, phone: Any) -> None:
    now = utc_now()
    pid = patient_with(now, 200)  # 300 points
    add_reward(now, code="ct-coupon", names={"zh": "CT检查优惠券", "en": "CT exam coupon"}, points=150, stock=20,
               limit={"count": 2, "period": "month"})
    add_reward(now, code="pharmacy", kind="pharmacy_voucher", names={"zh": "药房代金券(10元)",
               "en": "Pharmacy voucher (¥10)"}, points=100, tier_points={"silver": 80})
    add_reward(now, code="expert", kind="privilege", names={"zh": "专家号优先预约", "en": "Expert slot priority"},
               points=1000, stock=5)
    login_patient(phone, server, _phone_of(pid), pid, next_path="/me/mall")
    phone.goto(f"{server.url}/me/mall")
    assert phone.locator("[data-reward=ct-coupon]").count() == 1  # with the seeded catalogue
    capture(phone, server, "mall-index")

    submit(phone, "[data-reward=expert] a")
    submit(phone, "[data-redeem] button[type=submit]")  # not enough points: the message on the reward
    assert phone.locator("[data-error='ledger.insufficient_points']").count() == 1
    shot(phone, "mall-refused")

    phone.goto(f"{server.url}/me/mall/ct-coupon")
    capture(phone, server, "mall-reward")
    submit(phone, "[data-redeem] button[type=submit]")
    assert "/me/coupons/" in phone.url
    assert phone.locator(".cp-qr svg").count() == 1
    assert balance(pid, utc_now()) == 150
    capture(phone, server, "mall-coupon")

    phone.goto(f"{server.url}/me/coupons")
    assert phone.locator("[data-coupon][data-status=issued]").count() == 1
    capture(phone, server, "mall-coupons")
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width


def test_pg_smoke_redeem(pg_server: Server, phone: Any) -> None:
    now = utc_now()
    pid = patient_with(now, 200)
    add_reward(now, code="pg-coupon", names={"zh": "体检优惠券", "en": "Check-up coupon"}, points=100, stock=2)
    login_patient(phone, pg_server, _phone_of(pid), pid, next_path="/me/mall")
    phone.goto(f"{pg_server.url}/me/mall/pg-coupon")
    submit(phone, "[data-redeem] button[type=submit]")
    assert phone.locator("[data-coupon][data-status=issued]").count() == 1
    assert balance(pid, utc_now()) == 200
