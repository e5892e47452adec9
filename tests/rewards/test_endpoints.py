"""The rewards API over HTTP: catalogue, redemption, refund, 核销, fee offsets,
reconciliation, budget and settlement, with every refusal a clear 4xx."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from tests.helpers import error

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]

UNKNOWN = "0190a5f0-0000-7000-8000-000000000000"


def referral(api: Api, pid: str, n: int, **attrs: Any) -> None:
    for _ in range(n):
        api.send({"type": "referral.visit", "patient": {"id": pid}, "occurred_at": api.now().isoformat(),
                  "source": "his", "source_event_id": uuid.uuid4().hex,
                  "attributes": {"referral_id": uuid.uuid4().hex, "from_institution": "社区中心", **attrs}})


def redeem(api: Api, pid: str, reward: str, key: str | None = None, **extra: Any) -> Any:
    return api.post("/redemptions", {"patient_id": pid, "reward": reward, "quantity": 1,
                                     "idempotency_key": key or uuid.uuid4().hex, **extra})


def test_catalogue_priced_for_the_patient(api: Api) -> None:
    pid = api.enrol()
    r = api.get(f"/rewards?patient_id={pid}")
    assert r.status_code == 200, r.text
    items = {i["code"]: i for i in r.json()["items"]}
    assert items["expert_extra_slot"]["points"] == 800
    assert set(items["checkup_80"]) >= {"code", "kind", "names", "points", "stock", "valid_from", "valid_to"}
    error(api.get(f"/rewards?patient_id={UNKNOWN}"), 404, "patients.not_found")


def test_redeem_refund_and_verify_over_http(api: Api) -> None:
    pid = api.enrol()
    referral(api, pid, 2)
    r = redeem(api, pid, "priority_exam", key="r-1")
    assert r.status_code == 201, r.text
    doc = r.json()
    assert (doc["points"], len(doc["coupon_code"])) == (300, 12)
    again = redeem(api, pid, "priority_exam", key="r-1")
    assert again.status_code == 200
    assert again.json()["id"] == doc["id"]
    assert api.balance(pid) == 200
    error(redeem(api, pid, "lecture_seat", key="r-1"), 409, "rewards.idempotency_conflict")
    error(redeem(api, pid, "pharmacy_50"), 409, "ledger.insufficient_points")
    error(redeem(api, pid, "no-such-thing"), 404, "rewards.reward_not_found")
    error(redeem(api, pid, "fee_offset"), 409, "rewards.not_redeemable")
    error(redeem(api, UNKNOWN, "lecture_seat"), 404, "patients.not_found")
    error(api.post("/redemptions", {"patient_id": pid, "reward": "lecture_seat", "quantity": 0,
                                    "idempotency_key": "q"}), 422, "request.invalid")
    error(api.post("/redemptions", {"reward": "lecture_seat", "idempotency_key": "q"}), 422, "request.invalid")

    listed = api.get(f"/patients/{pid}/redemptions").json()["items"]
    assert [x["id"] for x in listed] == [doc["id"]]
    assert api.get(f"/redemptions/{doc['id']}").json()["coupon_code"] == doc["coupon_code"]
    error(api.get(f"/redemptions/{UNKNOWN}"), 404, "rewards.redemption_not_found")

    code = doc["coupon_code"]
    assert api.get(f"/coupons/{code}").json()["status"] == "issued"
    used = api.post(f"/coupons/{code}/verify")
    assert used.status_code == 200, used.text
    assert used.json()["status"] == "used"
    error(api.post(f"/coupons/{code}/verify"), 409, "rewards.coupon_used")
    error(api.post("/coupons/NOPE-NOPE-NOPE/verify"), 404, "rewards.coupon_not_found")
    error(api.post(f"/redemptions/{doc['id']}/refund"), 409, "rewards.coupon_used")
    mine = api.get(f"/patients/{pid}/coupons").json()["items"]
    assert [(c["code"], c["status"], c["reward"]) for c in mine] == [(code, "used", "priority_exam")]

    seat = redeem(api, pid, "lecture_seat").json()
    back = api.post(f"/redemptions/{seat['id']}/refund")
    assert back.status_code == 200, back.text
    assert (back.json()["status"], back.json()["refunded_points"]) == ("refunded", 50)
    error(api.post(f"/redemptions/{UNKNOWN}/refund"), 404, "rewards.redemption_not_found")
    assert api.balance(pid) == 200


def test_fee_offsets_over_http(api: Api) -> None:
    pid = api.enrol()
    r = api.post("/fee-offsets", {"patient_id": pid, "fee_cny": "25", "idempotency_key": "bill-1",
                                  "reference": "HIS-1"})
    assert r.status_code == 201, r.text
    doc = r.json()
    assert (doc["points"], doc["offset_cny"], doc["tier_discount_cny"], doc["status"]) == (100, "10.00", "0.00",
                                                                                          "held")
    assert doc["timeout_ms"] == 2000
    assert set(doc) >= {"id", "points", "offset_cny", "tier_discount_cny", "expires_at"}
    assert api.points(pid)["held"] == 100
    assert api.post("/fee-offsets", {"patient_id": pid, "fee_cny": 25, "idempotency_key": "bill-1",
                                     "reference": "HIS-1"}).status_code == 200
    committed = api.post(f"/fee-offsets/{doc['id']}/commit")
    assert committed.json()["status"] == "committed"
    error(api.post(f"/fee-offsets/{doc['id']}/void"), 409, "rewards.fee_offset_state")
    assert api.post(f"/fee-offsets/{doc['id']}/refund").json()["status"] == "refunded"
    assert api.get(f"/fee-offsets/{doc['id']}").json()["status"] == "refunded"
    other = api.post("/fee-offsets", {"patient_id": pid, "fee_cny": "25", "idempotency_key": "bill-2"}).json()
    assert api.post(f"/fee-offsets/{other['id']}/void").json()["status"] == "voided"
    error(api.post(f"/fee-offsets/{UNKNOWN}/commit"), 404, "rewards.fee_offset_not_found")
    error(api.post("/fee-offsets", {"patient_id": pid, "fee_cny": "-1", "idempotency_key": "x"}), 422,
          "request.invalid")
    error(api.post("/fee-offsets", {"patient_id": pid, "fee_cny": "1.005", "idempotency_key": "x"}), 422,
          "request.invalid")
    report = api.get(f"/fee-offsets/reconciliation?date={api.now().date().isoformat()}")
    assert report.status_code == 200, report.text
    totals = report.json()["institutions"][0]["totals"]
    assert (totals["refunded"]["count"], totals["voided"]["count"]) == (1, 1)
    assert api.get("/fee-offsets/reconciliation").status_code == 200  # defaults to yesterday


def test_admin_manages_the_catalogue(api: Api) -> None:
    body = {"code": "tea_set", "kind": "coupon", "names": {"zh": "养生茶券", "en": "Tea voucher"}, "points": 120,
            "stock": 5, "limit": {"count": 1, "period": "month"}, "cost_cny": "8.00"}
    r = api.post("/rewards", body)
    assert r.status_code == 201, r.text
    assert (r.json()["stock"], r.json()["cost_cny"]) == (5, "8.00")
    error(api.post("/rewards", body), 409, "rewards.reward_exists")
    error(api.post("/rewards", {**body, "code": "Bad Code"}), 422, "request.invalid")
    error(api.post("/rewards", {**body, "code": "t2", "valid_from": "2026-02-02", "valid_to": "2026-02-01"}), 422,
          "request.invalid")
    changed = api.request("PATCH", "/rewards/tea_set", {"points": 150, "active": False})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["points"], changed.json()["active"]) == (150, False)
    assert "tea_set" not in {i["code"] for i in api.get("/rewards").json()["items"]}
    assert "tea_set" in {i["code"] for i in api.get("/rewards?include_inactive=true").json()["items"]}
    error(api.request("PATCH", "/rewards/none_such", {"points": 1}), 404, "rewards.reward_not_found")


def test_budget_and_settlement_reports(api: Api) -> None:
    a = api.post("/institutions", {"code": "HA", "name_zh": "医院甲"}).json()["id"]
    b = api.post("/institutions", {"code": "HB", "name_zh": "医院乙"}).json()["id"]
    pid = api.enrol()
    referral(api, pid, 5, institution_id=a)  # 1,000 earned at A (and the welcome 100, unattributed)
    assert redeem(api, pid, "pharmacy_50", institution_id=b).status_code == 201  # FIFO: welcome first
    status = api.get("/budget").json()
    assert (status["used_cny"], status["budget_cny"]) == ("50.00", None)  # no revenue set: no budget
    assert status["liability"] == {"points": 100, "cny": "10.00"}
    rows = api.get("/settlement").json()["rows"]
    assert {(r["earned_at"], r["redeemed_at"], r["points"], r["cross"]) for r in rows} == {
        ("unattributed", b, 100, True), (a, b, 900, True)}


def test_roles(api: Api) -> None:
    pid = api.enrol()
    nurse = api.make_key("integration", "his")
    assert api.get("/rewards", key=nurse).status_code == 200
    error(api.get("/budget", key=nurse), 403, "auth.forbidden")
    error(api.post("/rewards", {"code": "x", "kind": "coupon", "names": {"zh": "x", "en": "x"}, "points": 1},
                   key=nurse), 403, "auth.forbidden")
    error(api.get("/rewards", auth=False), 401, "auth.unauthenticated")
    assert redeem(api, pid, "lecture_seat", key=None).status_code == 201


def test_a_caregiver_redeems_for_a_patient_only_when_authorised(api: Api) -> None:
    pid, carer = api.enrol(), api.enrol()
    referral(api, pid, 2)
    body = {"proxy_patient_id": carer}
    error(redeem(api, pid, "lecture_seat", **body), 403, "patients.proxy_not_authorised")
    view_only = api.post(f"/patients/{pid}/proxies", {"proxy": {"patient_id": carer}, "scopes": ["view"]})
    assert view_only.status_code == 201, view_only.text
    error(redeem(api, pid, "lecture_seat", **body), 403, "patients.proxy_not_authorised")
    api.post(f"/patients/{pid}/proxies/{view_only.json()['id']}/revoke")
    granted = api.post(f"/patients/{pid}/proxies", {"proxy": {"patient_id": carer}, "scopes": ["view", "redeem"]})
    assert granted.status_code == 201, granted.text
    r = redeem(api, pid, "lecture_seat", **body)
    assert r.status_code == 201, r.text
    assert r.json()["proxy_patient_id"] == carer
    assert api.balance(pid) == 450
    assert api.balance(carer) == 100
    error(redeem(api, pid, "lecture_seat", service_window=True), 403, "patients.proxy_not_authorised")
    error(redeem(api, pid, "lecture_seat", service_window=True, proxy_patient_id=carer), 422, "request.invalid")
    api.post(f"/patients/{pid}/proxies/{granted.json()['id']}/revoke")
    error(redeem(api, pid, "lecture_seat", **body), 403, "patients.proxy_not_authorised")


def test_household_members_redeem_from_the_pool_when_allowed(api: Api) -> None:
    head, member, child = api.enrol(), api.enrol(), api.enrol()
    made = api.post("/households", {"name": "王家", "head": {"id": head}})
    assert made.status_code == 201, made.text
    hid = made.json()["id"]
    for pid, allowed in ((member, True), (child, False)):
        added = api.post(f"/households/{hid}/members", {"patient_id": pid, "can_redeem": allowed})
        assert added.status_code == 201, added.text
    referral(api, member, 2)  # 400 into the pool, attributed to the member
    r = redeem(api, head, "priority_exam", household=True)  # the head may redeem the pool
    assert r.status_code == 201, r.text
    assert api.points(head)["household"]["balance"] == 100
    error(redeem(api, child, "lecture_seat", household=True), 403, "households.redeem_not_allowed")
    error(redeem(api, api.enrol(), "lecture_seat", household=True), 409, "households.not_a_member")
    assert redeem(api, member, "lecture_seat", household=True).status_code == 201
    assert api.points(member)["household"]["balance"] == 50
    assert api.balance(member) == 100  # the personal wallet kept the welcome points


def test_bad_inputs_are_clear_4xx_never_5xx(api: Api) -> None:
    pid = api.enrol()
    for path in ("/settlement?to=9999-12-31", "/settlement?from=0001-01-01", "/settlement?from=nonsense",
                 "/fee-offsets/reconciliation?date=9999-12-31", "/fee-offsets/reconciliation?date=0001-01-01"):
        error(api.get(path), 422, "request.invalid")
    long_id = "x" * 37
    error(redeem(api, pid, "lecture_seat", institution_id=long_id), 422, "request.invalid")
    error(api.post("/fee-offsets", {"patient_id": pid, "fee_cny": "10", "idempotency_key": "k",
                                    "institution_id": long_id}), 422, "request.invalid")
    base = {"code": "big", "kind": "coupon", "names": {"zh": "券", "en": "Coupon"}, "points": 10}
    for extra in ({"cost_cny": "9999999999.99"}, {"stock": 10**12}, {"tier_points": {"gold": -5}},
                  {"tier_points": {"gold": 10**9}}, {"valid_to": "9999-01-01"}):
        error(api.post("/rewards", {**base, **extra}), 422, "request.invalid")
    assert api.post("/rewards", base).status_code == 201
    for patch in ({"points": None}, {"active": None}, {"code_valid_days": None}, {"tier_points": None},
                  {"tier_points": {"standard": -5}}, {"names": None}):
        error(api.request("PATCH", "/rewards/big", patch), 422, "request.invalid")
    cleared = api.request("PATCH", "/rewards/big", {"valid_from": None, "valid_to": None, "stock": 3})
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["stock"] == 3
    error(api.post("/coupons/x/verify", {"institution_id": long_id}), 422, "request.invalid")
