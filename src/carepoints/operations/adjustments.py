"""Manual adjustments (积分调整) by staff, with maker-checker above a threshold.

A staff member (the service window or an admin) credits or debits a patient's points with
a reason code from the programme's list (`settings.adjustments.reason_codes`) and a note.
|points| up to `approval_threshold` posts at once; above it the adjustment waits
(`pending`) for a second person to approve or reject it, for `adjustment_pending_days`
(then the `expire-adjustments` job expires it).

Database guards, not Python checks alone:
- maker-checker: the CHECK `ck_adjustments_checker` (decided_by_id <> created_by_id) and
  one guarded UPDATE ... WHERE status = 'pending' AND expires_at > now: the maker can never
  decide their own, and an adjustment is decided (and posted) once;
- the operator's daily cap: Σ|points| per operator and local day (pending ones count, and a
  rejected or expired one keeps counting: the cap is on what an operator makes) in one row of
  `adjustment_operator_days`, raised by a guarded UPDATE ... WHERE used + n <= cap, with the
  CHECK used <= cap;
- idempotency: the unique `idempotency_key`; the same key and body answer the first
  adjustment again (200), a different body 409.

Posting (ledger): a credit is a lot of kind `adjust` from `System.adjustments` expiring after
the programme's `expiry_months`, repaying debt first like every credit; a debit consumes
unheld lots and may create debt (a correction of an over-credit already spent must still be
recorded; holds are never touched). Both go to the wallet the patient's postings go to
(a household's pooled wallet while pooled), under the wallet lock. Adjustments never count
toward the programme's annual cap (that cap limits what rules award). The ledger message is
the reason's Chinese name; the patient gets the usual `points.changed` message.

Every step is audited (`operations:adjustment:created|posted|approved|rejected|expired`,
ids, codes and points only: the note stays on the adjustment)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from carepoints.audit import service as audit
from carepoints.audit.service import Actor
from carepoints.config import get_settings
from carepoints.kit.bulk import savepoint
from carepoints.kit.db import table, write_tx
from carepoints.kit.ids import is_id, new_id
from carepoints.kit.outbox import enqueue_many
from carepoints.kit.time import add_months, as_utc, local_date
from carepoints.ledger.accounts import System
from carepoints.ledger.posting import Poster
from carepoints.operations.errors import (
    AdjustmentApproverIsMakerError,
    AdjustmentDailyCapError,
    AdjustmentExpiredError,
    AdjustmentIdempotencyError,
    AdjustmentNotFoundError,
    AdjustmentNotPendingError,
    AdjustmentPatientInactiveError,
    AdjustmentReasonError,
    AdjustmentStaffOnlyError,
)
from carepoints.operations.models import Adjustment, AdjustmentOperatorDay
from carepoints.patients import service as patients
from carepoints.patients.errors import PatientNotFoundError
from carepoints.patients.models import Patient
from carepoints.rules import service as rules

STATUSES = ("pending", "posted", "rejected", "expired")
MAX_POINTS = 100_000

_adj = table(Adjustment)
_days = table(AdjustmentOperatorDay)
_patients = table(Patient)


def _doc(row: Any) -> dict[str, Any]:
    approved = row["status"] == "posted" and row["decided_by_id"] is not None
    doc: dict[str, Any] = {
        "id": row["id"], "patient_id": row["patient_id"], "points": row["points"],
        "reason_code": row["reason_code"], "note": row["note"], "status": row["status"],
        "created_by": {"kind": row["created_by_kind"], "id": row["created_by_id"]},
        "created_at": as_utc(row["created_at"]),
        "expires_at": as_utc(row["expires_at"]) if row["expires_at"] is not None else None,
        "approved_by": {"kind": row["decided_by_kind"], "id": row["decided_by_id"]} if approved else None,
        "decision": None, "transfer_id": row["transfer_id"], "balance": row["balance_after"],
    }
    if row["status"] in ("rejected", "expired") or approved:
        doc["decision"] = {"outcome": row["status"], "decided_at": as_utc(row["decided_at"]),
                           "by": {"kind": row["decided_by_kind"], "id": row["decided_by_id"]}
                           if row["decided_by_id"] is not None else None,
                           "note": row["decision_note"]}
    return doc


def _row(session: Session, adjustment_id: str) -> Any:
    if not is_id(adjustment_id):
        raise AdjustmentNotFoundError()
    row = session.connection().execute(select(_adj).where(_adj.c.id == adjustment_id)).mappings().first()
    if row is None:
        raise AdjustmentNotFoundError()
    return row


def _hash(actor: Actor, patient_id: str, points: int, reason_code: str, note: str) -> str:
    body = json.dumps([actor.kind, actor.id, patient_id, points, reason_code, note], ensure_ascii=False)
    return hashlib.sha256(body.encode()).hexdigest()


def _ensure_active(session: Session, patient_id: str) -> None:
    status = session.connection().execute(
        select(_patients.c.status).where(_patients.c.id == patient_id)).scalar()
    if status is None:
        raise PatientNotFoundError()
    if status != "active":
        raise AdjustmentPatientInactiveError()


def _charge(session: Session, operator: str, day: Any, amount: int, cap: int) -> None:
    """Raise the operator's counter for the day by `amount`, never past `cap` (409)."""
    conn = session.connection()
    exists = conn.execute(select(_days.c.used).where(_days.c.operator_id == operator, _days.c.day == day)).first()
    if exists is None:
        try:
            with savepoint(conn, "cp_adjust_day"):
                conn.execute(_days.insert(), [{"operator_id": operator, "day": day, "used": 0, "cap": cap}])
        except IntegrityError:  # another request of this operator created it first
            pass
    done = conn.execute(update(_days).where(
        _days.c.operator_id == operator, _days.c.day == day, _days.c.used + amount <= cap,
    ).values(used=_days.c.used + amount, cap=cap))
    if not done.rowcount:
        raise AdjustmentDailyCapError()


def _post(session: Session, row: dict[str, Any], actor: Actor, now: datetime, reason_name: str,
          expiry_months: int, tz: Any) -> tuple[str, int]:
    """Post the adjustment to the patient's wallet; (transfer id, balance after)."""
    pid, points = row["patient_id"], int(row["points"])
    poster = Poster(session, now)
    wallet_id = poster.lock_patients({pid})[pid]
    if points > 0:
        posted = poster.credit(wallet_id, points, kind="adjust", counterparty=System.adjustments, at=now,
                               expires_at=add_months(now.astimezone(tz), expiry_months), message=reason_name,
                               member=pid)
    else:
        posted = poster.debit(wallet_id, -points, kind="adjust", counterparty=System.adjustments, at=now,
                              allow_debt=True, message=reason_name, member=pid)
    poster.flush()
    balance = poster.wallets[wallet_id].balance
    audit.record(session, actor, "operations:adjustment:posted", now, subject_id=row["id"], patient_id=pid,
                 points=points, transfer_id=posted.id)
    enqueue_many(session.connection(), [("points.changed", pid, {
        "patient_id": pid, "adjustment_id": row["id"], "points": points, "balance": balance})], now)
    return posted.id, balance


def create(session: Session, actor: Actor, now: datetime, *, ref: patients.Reference, points: int,
           reason_code: str, note: str, idempotency_key: str | None = None) -> tuple[dict[str, Any], bool]:
    """Make an adjustment; (its document, created). Posted at once when |points| is within the
    programme's approval threshold, else pending a second person's approval. A retry with the
    same idempotency key and body answers the first adjustment (created False)."""
    if actor.kind not in ("staff", "api_key"):
        raise AdjustmentStaffOnlyError()
    prog = rules.current_settings(session, now)
    conf = prog.settings.adjustments
    reason = conf.reason_codes.get(reason_code)
    if reason is None:
        raise AdjustmentReasonError()
    pid = patients.named(session, None, ref)
    digest = _hash(actor, pid, points, reason_code, note)
    conn = session.connection()
    if idempotency_key is not None:
        earlier = conn.execute(select(_adj).where(_adj.c.idempotency_key == idempotency_key)).mappings().first()
        if earlier is not None:
            return _replay(earlier, digest), False
    _ensure_active(session, pid)
    pending = abs(points) > conf.approval_threshold
    adjustment_id = new_id()
    row: dict[str, Any] = {
        "id": adjustment_id, "patient_id": pid, "points": points, "reason_code": reason_code, "note": note,
        "status": "pending", "idempotency_key": idempotency_key, "request_hash": digest,
        "created_by_kind": actor.kind, "created_by_id": actor.id, "created_at": now,
        "expires_at": now + timedelta(days=get_settings().adjustment_pending_days) if pending else None,
        "decided_by_kind": None, "decided_by_id": None, "decided_at": None, "decision_note": None,
        "transfer_id": None, "balance_after": None}
    try:
        with savepoint(conn, "cp_adjust"):
            conn.execute(_adj.insert(), [row])
    except IntegrityError:  # the same key committed meanwhile by a concurrent request
        earlier = conn.execute(select(_adj).where(_adj.c.idempotency_key == idempotency_key)).mappings().first()
        if earlier is None:
            raise
        return _replay(earlier, digest), False
    _charge(session, actor.id, local_date(now, prog.tz), abs(points), conf.operator_daily_cap)
    audit.record(session, actor, "operations:adjustment:created", now, subject_id=adjustment_id, patient_id=pid,
                 points=points, reason_code=reason_code, status="pending" if pending else "posted")
    if not pending:
        transfer_id, balance = _post(session, row, actor, now, reason.zh, prog.settings.expiry_months, prog.tz)
        conn.execute(update(_adj).where(_adj.c.id == adjustment_id).values(
            status="posted", transfer_id=transfer_id, balance_after=balance))
    return _doc(_row(session, adjustment_id)), True


def _replay(earlier: Any, digest: str) -> dict[str, Any]:
    if earlier["request_hash"] != digest:
        raise AdjustmentIdempotencyError()
    return _doc(earlier)


def _decide(session: Session, adjustment_id: str, actor: Actor, now: datetime, outcome: str,
            note: str | None) -> Any:
    row = _row(session, adjustment_id)
    if actor.id == row["created_by_id"]:
        raise AdjustmentApproverIsMakerError()
    if row["status"] != "pending":
        raise AdjustmentNotPendingError()
    if row["expires_at"] is not None and as_utc(row["expires_at"]) <= now:
        raise AdjustmentExpiredError()
    done = session.connection().execute(update(_adj).where(
        _adj.c.id == adjustment_id, _adj.c.status == "pending", _adj.c.decided_by_id.is_(None),
        _adj.c.expires_at > now,
    ).values(status="rejected" if outcome == "rejected" else "pending", decided_by_kind=actor.kind,
             decided_by_id=actor.id, decided_at=now, decision_note=note))
    if not done.rowcount:  # decided by someone else meanwhile
        raise AdjustmentNotPendingError()
    return row


def approve(session: Session, adjustment_id: str, actor: Actor, now: datetime, *,
            note: str | None = None) -> dict[str, Any]:
    """Approve a pending adjustment (another person than its maker) and post it."""
    row = _decide(session, adjustment_id, actor, now, "approved", note)
    pid = row["patient_id"]
    _ensure_active(session, pid)
    prog = rules.current_settings(session, now)
    reason = prog.settings.adjustments.reason_codes.get(row["reason_code"])
    name = reason.zh if reason is not None else row["reason_code"]
    audit.record(session, actor, "operations:adjustment:approved", now, subject_id=adjustment_id, patient_id=pid,
                 points=row["points"], maker=row["created_by_id"])
    transfer_id, balance = _post(session, dict(row), actor, now, name, prog.settings.expiry_months, prog.tz)
    session.connection().execute(update(_adj).where(_adj.c.id == adjustment_id).values(
        status="posted", transfer_id=transfer_id, balance_after=balance))
    return _doc(_row(session, adjustment_id))


def reject(session: Session, adjustment_id: str, actor: Actor, now: datetime, *, note: str) -> dict[str, Any]:
    """Reject a pending adjustment (another person than its maker): nothing is posted."""
    row = _decide(session, adjustment_id, actor, now, "rejected", note)
    audit.record(session, actor, "operations:adjustment:rejected", now, subject_id=adjustment_id,
                 patient_id=row["patient_id"], points=row["points"], maker=row["created_by_id"])
    return _doc(_row(session, adjustment_id))


def adjustment(session: Session, adjustment_id: str) -> dict[str, Any]:
    return _doc(_row(session, adjustment_id))


def queue(session: Session, *, status: str | None = None, patient_id: str | None = None, limit: int = 50,
          before: str | None = None) -> dict[str, Any]:
    """Adjustments newest first; `before` is the previous page's `next`."""
    stmt = select(_adj).order_by(_adj.c.id.desc()).limit(limit)
    if status is not None:
        stmt = stmt.where(_adj.c.status == status)
    if patient_id is not None:
        stmt = stmt.where(_adj.c.patient_id == patient_id)
    if before is not None:
        stmt = stmt.where(_adj.c.id < before)
    items = [_doc(r) for r in session.connection().execute(stmt).mappings()]
    return {"items": items, "next": items[-1]["id"] if len(items) == limit else None}


def expire(session: Session, now: datetime, batch: int = 200) -> int:
    """Expire up to `batch` pending adjustments past their deadline; how many."""
    conn = session.connection()
    due = conn.execute(select(_adj.c.id, _adj.c.patient_id, _adj.c.points).where(
        _adj.c.status == "pending", _adj.c.expires_at <= now).order_by(_adj.c.id).limit(batch)).all()
    actor = Actor.system("expire-adjustments")
    n = 0
    for aid, pid, points in due:
        done = conn.execute(update(_adj).where(_adj.c.id == aid, _adj.c.status == "pending").values(
            status="expired", decided_at=now))
        if done.rowcount:
            n += 1
            audit.record(session, actor, "operations:adjustment:expired", now, subject_id=aid, patient_id=pid,
                         points=points)
    return n


def expire_pending(now: datetime) -> dict[str, Any]:
    """`expire-adjustments` (daily): every pending adjustment past its deadline, in batches."""
    total = 0
    while True:
        with write_tx() as session:
            n = expire(session, now)
        total += n
        if n == 0:
            return {"expired": total}
