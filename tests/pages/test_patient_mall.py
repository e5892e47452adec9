"""The patient's rewards mall and coupons over real HTTP (SQLite and PostgreSQL): the catalogue
priced for the patient, a redemption through the service (points spent, a code issued, the
same key once), its refusals re-rendered with their codes, the coupon's QR code, another
patient's coupon 404, CSRF and sign-in."""

from __future__ import annotations

import re
import uuid
from typing import Any

from carepoints.app import create_app
from carepoints.kit.time import utc_now
from tests.conftest import Db
from tests.helpers import balance, enrol
from tests.pages.helpers import PageClient, patient_client
from tests.rewards.kit import add_reward, patient_with, redeem, verify


def refused(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, r.text[:600]
    assert f'data-error="{code}"' in r.text, r.text[:600]


def _key(html: str) -> str:
    m = re.search(r'name="idempotency_key" value="([^"]+)"', html)
    assert m, html[:800]
    return m.group(1)


def test_catalogue_lists_priced_rewards_with_stock(db: Db) -> None:
    now = utc_now()
    pid = patient_with(now, 200)  # 300 points
    add_reward(now, code="ct-coupon", names={"zh": "CT检查券", "en": "CT coupon"}, points=150, stock=5,
               limit={"count": 1, "period": "month"})
    add_reward(now, code="gold-only", names={"zh": "金卡优惠券", "en": "Gold coupon"}, points=500,
               tier_points={"gold": 300})
    add_reward(now, code="gone", names={"zh": "已兑完的券", "en": "Gone"}, points=10, stock=0)
    add_reward(now, code="offset", kind="fee_offset", names={"zh": "诊费抵扣", "en": "Offset"}, points=10)
    client = patient_client(pid)
    r = client.get("/me/mall")
    assert r.status_code == 200, r.text[:800]
    assert 'data-available>300<' in r.text
    assert 'data-reward="ct-coupon"' in r.text
    assert "CT检查券" in r.text
    assert 'data-stock>剩余 5<' in r.text
    assert "data-limit" in r.text
    assert 'data-reward="gold-only"' in r.text
    assert "data-tier-price" in r.text
    assert "data-out" in r.text  # out of stock, marked
    assert 'data-reward="offset"' not in r.text  # used at the cashier, not here
    en = patient_client(pid, lang="en").get("/me/mall")
    assert "CT coupon" in en.text
    assert "Out of stock" in en.text

    detail = client.get("/me/mall/ct-coupon")
    assert detail.status_code == 200
    assert 'data-points>150' in detail.text
    assert 'name="idempotency_key"' in detail.text
    assert client.get("/me/mall/nope").status_code == 404


def test_redeem_spends_points_and_shows_the_coupon_qr(db: Db) -> None:
    now = utc_now()
    pid = patient_with(now, 200)
    add_reward(now, code="ct", names={"zh": "CT检查券", "en": "CT coupon"}, points=150, stock=3)
    client = patient_client(pid)
    key = _key(client.get("/me/mall/ct").text)
    r = client.submit("/me/mall/ct/redeem", {"idempotency_key": key})
    assert r.status_code == 303, r.text[:800]
    target = r.headers["location"]
    assert target.startswith("/me/coupons/")
    assert balance(pid, utc_now()) == 150
    again = client.submit("/me/mall/ct/redeem", {"idempotency_key": key})  # a double tap: the same redemption
    assert again.headers["location"] == target
    assert balance(pid, utc_now()) == 150

    page = client.get(target)
    assert page.status_code == 200
    assert "<svg" in page.text
    assert 'class="cp-qr"' in page.text
    code = re.search(r'data-coupon="([A-Z0-9]+)"', page.text)
    assert code
    assert "兑换成功" in page.text
    listing = client.get("/me/coupons")
    assert f'data-coupon="{code.group(1)}" data-status="issued"' in listing.text
    verify(code.group(1), utc_now())
    used = client.get(target.split("?")[0])
    assert 'data-status="used"' in used.text
    assert 'class="cp-qr"' not in used.text

    hx = client.submit("/me/mall/ct/redeem", {"idempotency_key": uuid.uuid4().hex}, htmx=True)
    assert hx.status_code == 204
    assert hx.headers["HX-Redirect"].startswith("/me/coupons/")


def test_redeem_refusals_rerender_with_their_codes(db: Db) -> None:
    now = utc_now()
    pid = enrol(now)  # 100 points
    add_reward(now, code="dear", names={"zh": "贵的券", "en": "Dear"}, points=500)
    add_reward(now, code="last", names={"zh": "最后一张", "en": "Last"}, points=10, stock=1)
    add_reward(now, code="once", names={"zh": "限一次", "en": "Once"}, points=10, limit={"count": 1, "period": "ever"})
    client = patient_client(pid)
    r = client.submit("/me/mall/dear/redeem", {"idempotency_key": uuid.uuid4().hex})
    refused(r, 409, "ledger.insufficient_points")
    assert 'data-reward="dear"' in r.text
    assert 'name="idempotency_key"' in r.text
    other = enrol(now)
    redeem(other, "last", now)
    refused(client.submit("/me/mall/last/redeem", {"idempotency_key": uuid.uuid4().hex}), 409,
            "rewards.out_of_stock")
    assert client.submit("/me/mall/once/redeem", {"idempotency_key": uuid.uuid4().hex}).status_code == 303
    refused(client.submit("/me/mall/once/redeem", {"idempotency_key": uuid.uuid4().hex}), 409,
            "rewards.limit_reached")
    assert client.submit("/me/mall/nope/redeem", {"idempotency_key": uuid.uuid4().hex}).status_code == 404
    assert balance(pid, utc_now()) == 90


def test_another_patients_coupon_is_404_and_csrf_and_login(db: Db) -> None:
    now = utc_now()
    add_reward(now, code="c1", points=10)
    owner, other = enrol(now), enrol(now)
    doc = redeem(owner, "c1", now)
    assert patient_client(owner).get(f"/me/coupons/{doc['id']}").status_code == 200
    r = patient_client(other).get(f"/me/coupons/{doc['id']}")
    assert r.status_code == 404
    assert doc["coupon_code"] not in r.text
    assert patient_client(other).get(f"/me/coupons/{uuid.uuid4()}").status_code == 404
    assert doc["coupon_code"] not in patient_client(other).get("/me/coupons").text

    client = patient_client(other)
    r = client.submit("/me/mall/c1/redeem", {"idempotency_key": uuid.uuid4().hex}, csrf=False)
    assert r.status_code == 403
    assert balance(other, utc_now()) == 100

    anon = PageClient(create_app())
    for url in ("/me/mall", "/me/mall/c1", "/me/coupons", f"/me/coupons/{doc['id']}"):
        r = anon.get(url, follow_redirects=False)
        assert r.status_code == 303, url
        assert r.headers["location"].startswith("/login"), url


def test_elderly_mode_shows_fewer_items(db: Db) -> None:
    now = utc_now()
    pid = enrol(now)
    for i in range(8):
        add_reward(now, code=f"e{i}", points=10 + i)
    r = patient_client(pid, elderly=True).get("/me/mall")
    assert r.status_code == 200
    assert r.text.count('data-reward="e') == 6
