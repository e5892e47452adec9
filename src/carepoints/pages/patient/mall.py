"""The rewards mall (积分商城) for the patient: the catalogue priced for their tier (/me/mall),
one reward with the redeem button (/me/mall/{code}), and the codes they got (/me/coupons),
each with a scannable QR code for the desk (/me/coupons/{redemption_id}).

The same services and permissions as the rewards API (rewards.endpoints): the catalogue from
`service.catalogue` (rewards:read, priced for the patient), a redemption through
`service.redeem` (redemptions:write; a hidden idempotency key makes a double tap redeem once),
the codes from `service.coupons_of` / `service.redemption` (points:read). A redemption id in
the path is checked by carepoints.ownership (another patient's → 404)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form
from fastapi.responses import Response

from carepoints.enrolment import service as enrolment
from carepoints.kit.errors import AppError
from carepoints.kit.ids import new_id
from carepoints.kit.time import utc_now
from carepoints.pages.web import Page, patient_page, reading, writing
from carepoints.patients import service as patients
from carepoints.rewards import service
from carepoints.rewards.errors import RewardNotFoundError
from carepoints.rewards.schemas import RedemptionCreate

router = APIRouter(include_in_schema=False)

Browse = Annotated[Page, Depends(patient_page("rewards:read"))]
Redeem = Annotated[Page, Depends(patient_page("redemptions:write"))]
Mine = Annotated[Page, Depends(patient_page("points:read"))]

# errors the redeem form re-renders with the message (the rest render as the error page)
FORM_ERRORS = (409, 422)

KINDS = {
    "coupon": ("检查券", "Exam coupon"), "pharmacy_voucher": ("药房券", "Pharmacy voucher"),
    "privilege": ("优先服务", "Priority service"), "lecture_seat": ("讲座席位", "Lecture seat"),
    "gift": ("实物礼品", "Gift"), "fee_offset": ("诊费抵扣", "Fee offset"),
}
COUPON_STATUS = {
    "issued": ("可使用", "Ready to use"), "used": ("已使用", "Used"), "refunded": ("已退回", "Refunded"),
    "expired": ("已过期", "Expired"),
}
PERIODS = {"day": ("每天", "a day"), "week": ("每周", "a week"), "month": ("每月", "a month"),
           "year": ("每年", "a year"), "ever": ("共", "in all")}


def _acting_name(page: Page) -> str | None:
    if not page.acting:
        return None
    with reading() as session:
        return patients.display_name(session, page.patient_id, masked=True)


def _labels(page: Page) -> dict[str, Any]:
    return {"kinds": {k: page.tr(*v) for k, v in KINDS.items()},
            "coupon_status": {k: page.tr(*v) for k, v in COUPON_STATUS.items()},
            "periods": {k: page.tr(*v) for k, v in PERIODS.items()}}


def _catalogue(page: Page) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    with reading() as session:
        items = service.catalogue(session, page.patient_id, utc_now())["items"]
        points = enrolment.points(session, page.patient_id, utc_now())
    # a fee offset is used at the cashier, not redeemed here
    return [r for r in items if r["kind"] != "fee_offset"], points


@router.get("/me/mall")
def mall(page: Browse) -> Response:
    """The rewards the patient can redeem now, priced for their tier, with the stock left."""
    items, points = _catalogue(page)
    items.sort(key=lambda r: (r["stock"] == 0, r["points"]))
    return page.render("patient/mall/index.html", tab="mall", items=items, points=points,
                       acting_name=_acting_name(page), **_labels(page))


def _reward_page(page: Page, code: str, status: int = 200, **values: Any) -> Response:
    items, points = _catalogue(page)
    found = next((r for r in items if r["code"] == code), None)
    if found is None:
        raise RewardNotFoundError()
    values.setdefault("key", new_id())
    return page.render("patient/mall/reward.html", status=status, tab="mall", back="/me/mall", r=found,
                       points=points, acting_name=_acting_name(page), **_labels(page), **values)


@router.get("/me/mall/{code}")
def reward(page: Browse, code: str) -> Response:
    """One reward: what it is, its price for this patient, stock and limit, and the redeem button."""
    return _reward_page(page, code)


@router.post("/me/mall/{code}/redeem")
def redeem(page: Redeem, code: str, idempotency_key: Annotated[str, Form(min_length=1, max_length=128)]) -> Response:
    """Redeem one of the reward: the service checks balance, stock, limit, validity and budget; a
    refusal (409) shows its message on the reward's page. The same key again → the same redemption."""
    assert page.principal is not None  # noqa: S101 - signed in (patient_page)
    try:
        body = RedemptionCreate(patient_id=page.patient_id, reward=code, idempotency_key=idempotency_key,
                                proxy_patient_id=page.principal.id if page.acting else None)
        with writing() as session:
            doc, _created = service.redeem(session, body, page.principal.actor(), utc_now())
    except AppError as err:
        if err.status_code not in FORM_ERRORS:
            raise
        return _reward_page(page, code, err.status_code, error=err.to_dict(), key=new_id())
    if doc["coupons"]:
        return page.redirect(f"/me/coupons/{doc['id']}?done=1")
    return page.redirect("/me/coupons?done=1")


def _names(page: Page) -> dict[str, dict[str, str]]:
    with reading() as session:
        items = service.catalogue(session, None, utc_now(), include_inactive=True)["items"]
    return {r["code"]: r["names"] for r in items}


@router.get("/me/coupons")
def coupons(page: Mine, done: str | None = None) -> Response:
    """The patient's codes, newest first: the usable ones first."""
    with reading() as session:
        found = service.coupons_of(session, page.patient_id, limit=50)["items"]
    now = utc_now()
    for c in found:
        c["shown_status"] = "expired" if c["status"] == "issued" and c["expires_at"] <= now else c["status"]
    found.sort(key=lambda c: c["shown_status"] != "issued")
    flash = page.tr("兑换成功!", "Redeemed!") if done else None
    return page.render("patient/mall/coupons.html", tab="mall", back="/me/mall", items=found, flash=flash,
                       kind="ok", message=flash, acting_name=_acting_name(page), **_labels(page))


@router.get("/me/coupons/{redemption_id}")
def coupon(page: Mine, redemption_id: str, done: str | None = None) -> Response:
    """One redemption's codes, each as a QR code and in large text, to show at the desk."""
    with reading() as session:
        doc = service.redemption(session, redemption_id)
    names = _names(page).get(doc["reward"] or "", {"zh": doc["reward"] or "", "en": doc["reward"] or ""})
    now = utc_now()
    for c in doc["coupons"]:
        c["shown_status"] = "expired" if c["status"] == "issued" and c["expires_at"] <= now else c["status"]
    flash = page.tr("兑换成功!请在窗口出示下面的二维码。", "Redeemed! Show the QR code below at the desk.") \
        if done else None
    return page.render("patient/mall/coupon.html", tab="mall", back="/me/coupons", d=doc, names=names,
                       flash=flash, kind="ok", message=flash, acting_name=_acting_name(page), **_labels(page))
