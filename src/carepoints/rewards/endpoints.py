"""Rewards API: the catalogue (积分商城), redemptions and refunds, code verification
(核销) at the desk, the cashier's fee offsets, reconciliation, budget and settlement."""

from __future__ import annotations

from datetime import date, timedelta

from fastapi import APIRouter, Depends, Query

from carepoints.config import get_settings
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.errors import ValidationFailedError
from carepoints.kit.time import local_date, utc_now
from carepoints.kit.web import JSON
from carepoints.rewards import budget, offsets, service
from carepoints.rewards.schemas import FeeOffsetCreate, RedemptionCreate, RewardCreate, RewardUpdate, VerifyIn
from carepoints.security import scope
from carepoints.security.deps import require
from carepoints.security.service import Principal

router = APIRouter(tags=["rewards"])



def _day(value: date, name: str) -> date:
    if not date(2000, 1, 1) <= value <= date(2100, 12, 31):
        raise ValidationFailedError(fields=[{"loc": ["query", name], "msg": "a date from 2000-01-01 to 2100-12-31"}])
    return value


@router.get("/rewards")
def list_rewards(patient_id: str | None = None, include_inactive: bool = False,
                 _p: Principal = Depends(require("rewards:read"))) -> JSON:
    """The catalogue open for redemption today; with `patient_id`, `points` is that patient's (tier) price."""
    with read_tx() as session:
        return JSON(service.catalogue(session, patient_id, utc_now(), include_inactive=include_inactive))


@router.post("/rewards", status_code=201)
def create_reward(body: RewardCreate, p: Principal = Depends(require("rewards:write"))) -> JSON:
    """Add a catalogue item (admin)."""
    with write_tx() as session:
        return JSON(service.create_reward(session, body, p.actor(), utc_now()), status_code=201)


@router.patch("/rewards/{code}")
def update_reward(code: str, body: RewardUpdate, p: Principal = Depends(require("rewards:write"))) -> JSON:
    """Change a catalogue item's price, stock, limit, validity or active flag (admin)."""
    with write_tx() as session:
        return JSON(service.update_reward(session, code, body, p.actor(), utc_now()))


@router.post("/redemptions", status_code=201)
def redeem(body: RedemptionCreate, p: Principal = Depends(require("redemptions:write"))) -> JSON:
    """Redeem points for a reward: balance, stock, per-patient limit, validity and budget are
    checked in one transaction; coupons, vouchers and privileges come with a code. The same
    `idempotency_key` again → the first redemption (200)."""
    scope.ensure_named(body.patient_id, body.patient, proxy_patient_id=body.proxy_patient_id,
                       service_window=body.service_window)  # (trust.auth) a patient token: in reach, as itself
    with write_tx() as session:
        doc, created = service.redeem(session, body, p.actor(), utc_now())
    return JSON(doc, status_code=201 if created else 200)


@router.get("/redemptions/{redemption_id}")
def get_redemption(redemption_id: str, _p: Principal = Depends(require("points:read"))) -> JSON:
    """One redemption with its codes."""
    with read_tx() as session:
        return JSON(service.redemption(session, redemption_id))


@router.post("/redemptions/{redemption_id}/refund")
def refund(redemption_id: str, p: Principal = Depends(require("redemptions:write"))) -> JSON:
    """Refund a redemption whose codes are unused: the unexpired part of its points comes
    back, with the stock and the limit room. Again → the same answer."""
    with write_tx() as session:
        return JSON(service.refund(session, redemption_id, p.actor(), utc_now()))


@router.get("/patients/{patient_id}/redemptions")
def patient_redemptions(patient_id: str, limit: int = Query(default=50, ge=1, le=200),
                        _p: Principal = Depends(require("points:read"))) -> JSON:
    """A patient's redemptions, newest first."""
    with read_tx() as session:
        return JSON(service.redemptions_of(session, patient_id, limit))


@router.get("/patients/{patient_id}/coupons")
def patient_coupons(patient_id: str, limit: int = Query(default=50, ge=1, le=200),
                    _p: Principal = Depends(require("points:read"))) -> JSON:
    """A patient's codes (coupons, vouchers, privileges, lecture seats), newest first."""
    with read_tx() as session:
        return JSON(service.coupons_of(session, patient_id, limit))


@router.get("/coupons/{code}")
def get_coupon(code: str, _p: Principal = Depends(require("coupons:verify"))) -> JSON:
    """Look a code up before using it (spaces and dashes are ignored)."""
    with read_tx() as session:
        return JSON(service.coupon(session, code))


@router.post("/coupons/{code}/verify")
def verify(code: str, body: VerifyIn | None = None, p: Principal = Depends(require("coupons:verify"))) -> JSON:
    """核销: use a code once. Used, expired, refunded and unknown codes are refused with their own code."""
    with write_tx() as session:
        return JSON(service.verify(session, code, p.actor(), utc_now(),
                                   institution_id=body.institution_id if body else None))


@router.post("/fee-offsets", status_code=201)
def create_fee_offset(body: FeeOffsetCreate, p: Principal = Depends(require("fee_offsets:write"))) -> JSON:
    """The cashier's fee offset: the tier discount and the largest offset allowed (≤ 50% of the fee
    after the discount, whole 10-point steps, within the available points), held until the HIS
    commits or voids it. The HIS should wait at most `timeout_ms` and otherwise take the full fee."""
    with write_tx() as session:
        doc, created = offsets.create(session, body, p.actor(), utc_now())
    return JSON(doc, status_code=201 if created else 200)


@router.get("/fee-offsets/reconciliation")
def reconciliation(day: date | None = Query(default=None, alias="date"), institution_id: str | None = None,
                   _p: Principal = Depends(require("reports:read"))) -> JSON:
    """对账: one local day's fee offsets per institution (default yesterday), totals per state, orphans flagged."""
    now = utc_now()
    day = _day(day, "date") if day else local_date(now, get_settings().tz) - timedelta(days=1)
    with read_tx() as session:
        return JSON(offsets.reconciliation(session, day, institution_id, now))


@router.get("/fee-offsets/{offset_id}")
def get_fee_offset(offset_id: str, _p: Principal = Depends(require("fee_offsets:write"))) -> JSON:
    """One fee offset and its state."""
    with read_tx() as session:
        return JSON(offsets.get(session, offset_id, utc_now()))


@router.post("/fee-offsets/{offset_id}/commit")
def commit_fee_offset(offset_id: str, p: Principal = Depends(require("fee_offsets:write"))) -> JSON:
    """The payment succeeded: spend the held points. Again → the same answer."""
    with write_tx() as session:
        return JSON(offsets.commit(session, offset_id, p.actor(), utc_now()))


@router.post("/fee-offsets/{offset_id}/void")
def void_fee_offset(offset_id: str, p: Principal = Depends(require("fee_offsets:write"))) -> JSON:
    """The payment failed: release the held points. Again → the same answer."""
    with write_tx() as session:
        return JSON(offsets.void(session, offset_id, p.actor(), utc_now()))


@router.post("/fee-offsets/{offset_id}/refund")
def refund_fee_offset(offset_id: str, p: Principal = Depends(require("fee_offsets:write"))) -> JSON:
    """退号 after commit: the offset's points come back."""
    with write_tx() as session:
        return JSON(offsets.refund(session, offset_id, p.actor(), utc_now()))


@router.get("/budget")
def budget_status(_p: Principal = Depends(require("reports:read"))) -> JSON:
    """This year's budget, the CNY cost redeemed, alerts sent and the outstanding liability."""
    with read_tx() as session:
        return JSON(budget.status(session, utc_now()))


@router.get("/settlement")
def settlement(start: date | None = Query(default=None, alias="from"),
               end: date | None = Query(default=None, alias="to"),
               _p: Principal = Depends(require("reports:read"))) -> JSON:
    """Alliance settlement: points earned at one institution and redeemed at another (default: last 30 days)."""
    today = local_date(utc_now(), get_settings().tz)
    with read_tx() as session:
        return JSON(budget.settlement(session, _day(start, "from") if start else today - timedelta(days=30),
                                      _day(end, "to") if end else today))
