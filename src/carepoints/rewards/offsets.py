"""The cashier's registration-fee offset (挂号费抵扣) as a two-phase hold, and the
daily reconciliation (对账) with the HIS cashier.

The HIS sends the self-pay fee; carepoints answers the tier discount and the
largest offset allowed — at most `max_share` (50%) of the fee after that
discount, in whole `step_points` (10-point) steps, within the available
points — and holds those points. The HIS commits when the payment succeeds
and voids when it fails; a hold neither committed nor voided expires after
`fee_offset_hold_minutes` (`jobs run expire-holds`). The HIS should wait at
most `fee_offset_timeout_ms` for the answer and otherwise take the full fee:
a hold created after it gave up expires on its own and is flagged as an
orphan in the reconciliation."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from sqlalchemy.orm import Session

from carepoints.audit.service import Actor, record
from carepoints.config import get_settings
from carepoints.kit.ids import new_id, request_digest
from carepoints.kit.money import cny, points_to_fen, to_fen
from carepoints.kit.time import add_months, day_start_utc
from carepoints.ledger import service as ledger
from carepoints.patients import service as patients
from carepoints.rewards import budget
from carepoints.rewards import repository as repo
from carepoints.rewards.errors import (
    FeeOffsetNotFoundError,
    FeeOffsetStateError,
    IdempotencyConflictError,
    PatientInactiveError,
)
from carepoints.rewards.schemas import FeeOffsetCreate
from carepoints.rewards.service import patient_of, proxy_check, replay
from carepoints.rules.service import current_settings
from carepoints.tiers import service as tiers

FEE_OFFSET = "fee_offset"
_ACTIONS = {"commit": "提交 / committed", "void": "撤销 / voided", "refund": "退回 / refunded"}


def _terms(session: Session) -> tuple[bool, Decimal, int]:
    """Whether offsets are on, the largest share of the fee, and the step in points."""
    item = repo.reward_by_code(session.connection(), FEE_OFFSET)
    if item is None:
        return True, Decimal("0.50"), 10
    details = item["details"] or {}
    return bool(item["active"]), Decimal(details.get("max_share", "0.50")), int(details.get("step_points", "10"))


def quote(fee_fen: int, discount_fen: int, available: int, *, max_share: Decimal, step: int, value_points: int,
          value_cny: Decimal) -> int:
    """The points to offset: the most whole steps whose CNY value stays within
    `max_share` of the fee after the tier discount, and within `available`."""
    payable = max(0, fee_fen - discount_fen)
    ceiling_fen = int((Decimal(payable) * max_share).to_integral_value(ROUND_FLOOR))
    fen_per_step = Decimal(step) * to_fen(value_cny) / value_points
    steps_by_fee = int((Decimal(ceiling_fen) / fen_per_step).to_integral_value(ROUND_FLOOR)) if fen_per_step else 0
    return max(0, min(steps_by_fee, available // step)) * step


def create(session: Session, data: FeeOffsetCreate, actor: Actor, now: datetime) -> tuple[dict[str, Any], bool]:
    """Answer the tier discount and the largest offset, holding its points. The same
    idempotency key again answers the first offset. Audited."""
    conn = session.connection()
    patient = patient_of(session, data.patient_id, data.patient)
    pid = patient.patient_id
    fee = to_fen(data.fee_cny)
    digest = request_digest({"patient": pid, "fee": fee, "institution": data.institution_id,
                             "reference": data.reference, "proxy": data.proxy_patient_id,
                             "window": data.service_window})
    on_behalf, authorisation = proxy_check(session, pid, data, now)
    prior = replay(repo.offset_by_key(conn, data.idempotency_key), digest)
    if prior is not None:
        return offset_doc(session, prior, now), False
    if patient.status != "active":
        raise PatientInactiveError()
    programme = current_settings(session, now).programme.settings
    discount = to_fen(tiers.discount(tiers.settings_at(session, now), patient.tier, data.fee_cny))
    wallet = ledger.wallet_of(session, pid)
    on, max_share, step = _terms(session)
    points = 0
    reason = None if on else "rewards.fee_offset_off"
    value = programme.point_value
    if on:
        available = ledger.lock_wallet(session, wallet, now).available  # read under the lock the hold takes
        points = quote(fee, discount, available, max_share=max_share, step=step,
                       value_points=value.points, value_cny=value.cny)
        if points and not budget.room(session, points_to_fen(points, value.points, value.cny), now):
            points, reason = 0, "rewards.budget_exhausted"
    oid = new_id()
    hold_id = None
    expires = None
    if points > 0:
        ttl = timedelta(minutes=get_settings().fee_offset_hold_minutes)
        hold_id = ledger.hold(session, wallet, points, now, ttl=ttl, reference=oid)["id"]
        expires = now + ttl
    row = {"id": oid, "patient_id": pid, "wallet_id": wallet, "hold_id": hold_id,
           "institution_id": data.institution_id, "reference": data.reference, "tier": patient.tier,
           "fee_fen": fee, "tier_discount_fen": discount,
           "offset_fen": points_to_fen(points, value.points, value.cny), "reason": reason,
           "points": points, "status": "held" if points else "none", "idempotency_key": data.idempotency_key,
           "request_hash": digest, "created_at": now, "expires_at": expires, "settled_at": None,
           "refund_transfer_id": None}
    if not repo.insert_offset(conn, row):
        raise IdempotencyConflictError()
    record(session, actor, "rewards:fee_offset:create", now, subject_id=oid, patient_id=pid, points=points,
           hold_id=hold_id, on_behalf_of=pid if on_behalf else None, proxy=on_behalf,
           authorisation_id=authorisation)
    return offset_doc(session, row, now), True


def _locked(session: Session, offset_id: str) -> dict[str, Any]:
    conn = session.connection()
    found = repo.offset(conn, offset_id)
    if found is None:
        raise FeeOffsetNotFoundError()
    patients.lock(session, found["patient_id"])
    return repo.offset(conn, offset_id) or found


def commit(session: Session, offset_id: str, actor: Actor, now: datetime) -> dict[str, Any]:
    """The payment went through: the held points are spent. Again → the same answer."""
    row = _locked(session, offset_id)
    state = _state(session, row, now)
    if state in ("committed", "none"):
        return offset_doc(session, row, now)
    if state != "held":
        raise FeeOffsetStateError(status=state, action=_ACTIONS["commit"])
    ledger.commit_hold(session, row["hold_id"], now, message="挂号费抵扣")
    repo.set_offset_status(session.connection(), row["id"], "held", "committed", now)
    record(session, actor, "rewards:fee_offset:commit", now, subject_id=row["id"], patient_id=row["patient_id"])
    budget.charge(session, row["offset_fen"], now, enforce=False)  # the payment went through: never refused
    return offset_doc(session, repo.offset(session.connection(), row["id"]) or row, now)


def void(session: Session, offset_id: str, actor: Actor, now: datetime) -> dict[str, Any]:
    """The payment failed: the hold is released. A void of a voided or expired offset
    answers its state; a committed one is refused (use refund, 退号)."""
    row = _locked(session, offset_id)
    state = _state(session, row, now)
    if state in ("voided", "expired", "none"):
        return offset_doc(session, row, now)
    if state != "held":
        raise FeeOffsetStateError(status=state, action=_ACTIONS["void"])
    ledger.void_hold(session, row["hold_id"], now)
    repo.set_offset_status(session.connection(), row["id"], "held", "voided", now)
    record(session, actor, "rewards:fee_offset:void", now, subject_id=row["id"], patient_id=row["patient_id"])
    return offset_doc(session, repo.offset(session.connection(), row["id"]) or row, now)


def refund(session: Session, offset_id: str, actor: Actor, now: datetime) -> dict[str, Any]:
    """退号 after commit: the offset's points come back (the unexpired part)."""
    row = _locked(session, offset_id)
    state = _state(session, row, now)
    if state == "refunded":
        return offset_doc(session, row, now)
    if state != "committed":
        raise FeeOffsetStateError(status=state, action=_ACTIONS["refund"])
    hold = ledger.holds(session, [row["hold_id"]])[row["hold_id"]]
    months = current_settings(session, now).programme.settings.expiry_months
    posted = ledger.refund(session, hold["transfer_id"], now, expires_at=add_months(now, months))
    repo.set_offset_status(session.connection(), row["id"], "committed", "refunded", now,
                           refund_transfer_id=posted.id)
    record(session, actor, "rewards:fee_offset:refund", now, subject_id=row["id"], patient_id=row["patient_id"])
    budget.charge(session, -row["offset_fen"], now, year_of=row["settled_at"])
    return offset_doc(session, repo.offset(session.connection(), row["id"]) or row, now)


def get(session: Session, offset_id: str, now: datetime) -> dict[str, Any]:
    row = repo.offset(session.connection(), offset_id)
    if row is None:
        raise FeeOffsetNotFoundError()
    return offset_doc(session, row, now)


def _state(session: Session, row: dict[str, Any], now: datetime, hold: dict[str, Any] | None = None) -> str:
    """The stored status, except that a hold the HIS never settled reads as expired."""
    if row["status"] != "held":
        return str(row["status"])
    hold = hold or ledger.holds(session, [row["hold_id"]]).get(row["hold_id"])
    if hold is None or hold["status"] == "expired" or (hold["status"] == "open" and hold["expires_at"] <= now):
        return "expired"
    return "held"


def offset_doc(session: Session, row: dict[str, Any], now: datetime, hold: dict[str, Any] | None = None
               ) -> dict[str, Any]:
    return {
        "id": row["id"], "patient_id": row["patient_id"], "status": _state(session, row, now, hold),
        "points": row["points"], "fee_cny": cny(row["fee_fen"]), "tier": row["tier"],
        "tier_discount_cny": cny(row["tier_discount_fen"]), "offset_cny": cny(row["offset_fen"]),
        "payable_cny": cny(row["fee_fen"] - row["tier_discount_fen"] - row["offset_fen"]),
        "expires_at": row["expires_at"], "created_at": row["created_at"], "settled_at": row["settled_at"],
        "institution_id": row["institution_id"], "reference": row["reference"], "reason": row.get("reason"),
        "timeout_ms": get_settings().fee_offset_timeout_ms}


def reconciliation(session: Session, day: date, institution_id: str | None, now: datetime) -> dict[str, Any]:
    """对账: the offsets created or settled on one local day, per institution, with totals per state.
    Orphans are holds the HIS never settled (expired, or open past their expiry) and
    commits without the HIS's bill reference — each needs a look at the cashier's side."""
    tz = get_settings().tz
    lo = day_start_utc(day, tz)
    hi = day_start_utc(date.fromordinal(day.toordinal() + 1), tz)
    rows = repo.offsets_between(session.connection(), lo, hi, institution_id)
    holds = ledger.holds(session, [r["hold_id"] for r in rows if r["hold_id"]])
    groups: dict[str, dict[str, Any]] = defaultdict(lambda: {"totals": {}, "items": [], "orphans": 0})
    for r in rows:
        doc = offset_doc(session, r, now, holds.get(r["hold_id"] or ""))
        orphan = doc["status"] == "expired" or (doc["status"] in ("committed", "refunded") and not r["reference"])
        doc["orphan"] = orphan
        g = groups[r["institution_id"] or "unattributed"]
        t = g["totals"].setdefault(doc["status"], {"count": 0, "points": 0, "offset_fen": 0})
        t["count"] += 1
        t["points"] += r["points"]
        t["offset_fen"] += r["offset_fen"]
        g["items"].append(doc)
        g["orphans"] += int(orphan)
    institutions = []
    for inst, g in sorted(groups.items()):
        totals = {k: {"count": v["count"], "points": v["points"], "offset_cny": cny(v["offset_fen"])}
                  for k, v in sorted(g["totals"].items())}
        institutions.append({"institution_id": inst, "totals": totals, "orphans": g["orphans"], "items": g["items"]})
    return {"date": day, "institutions": institutions}
