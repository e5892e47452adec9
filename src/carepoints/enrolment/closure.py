"""Deceased and closed accounts (已故 / 销户), and reopening a closed one.

`change_status` moves a patient between active, deceased and closed:

- active → deceased | closed, closed → deceased; closed → active (reopened). A deceased
  status is final, except that an admin may correct it (`recorded_in_error`) back to active.
  Merged and erased records are refused (`patients.status_transition`, `patients.erased`).
  The same status again answers the last change (changed False): nothing runs twice.
- Leaving active stops the account in the same transaction: open holds on the patient's own
  wallet (fee offsets not settled) are voided; the points left are handled by the
  `closure_points_policy` setting — `expire` posts each unheld lot's remainder to the expiry
  account, `household` moves each one to the household wallet of a member (through the
  `transfers` clearing account, `closure_out` / `closure_in`; not in a household: expired);
  debt stays. Domains above (scheduling, engagement) join through `on_closure`: future
  appointments cancelled by the hospital, reminders and follow-ups stopped. Ingest gives a
  non-active patient nothing (`patients.inactive`), dispatch sends them no SMS or WeChat
  message, and care alerts are no longer raised for them.
- Reopening gives nothing back (expired points stay expired).

Locks: the patient's wallets first (their own, then a household's: the order ingest takes
them, which may then update the patient's tier), then the patient row; everything is re-read
under them, so an ingest racing a closure either committed first (its points are handled
with the rest) or runs after and earns nothing.

A closed patient is told (one inbox message, `account.closed`); a deceased one is not. Each
change is one `patient_status_changes` row (reason code, counts) and one audit row
`patients:patient:status` (ids and codes only; the note is staff's own text and stays in the
row)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from carepoints.audit import service as audit
from carepoints.audit.service import Actor
from carepoints.config import get_settings
from carepoints.enrolment.errors import DeceasedFinalError, PatientErasedError, StatusTransitionError
from carepoints.enrolment.models import PatientStatusChange
from carepoints.kit.db import table
from carepoints.kit.ids import new_id
from carepoints.kit.outbox import enqueue_many
from carepoints.ledger import service as ledger
from carepoints.ledger.accounts import System
from carepoints.ledger.models import Account, Hold, Lot
from carepoints.ledger.posting import Poster
from carepoints.patients import service as patients
from carepoints.patients.errors import PatientNotFoundError

ACTIVE, DECEASED, CLOSED = "active", "deceased", "closed"
RECORDED_IN_ERROR = "recorded_in_error"
CLOSURE_KINDS = ("closure_out", "closure_in")

_changes = table(PatientStatusChange)
_holds = table(Hold)
_acc = table(Account)
_lots = table(Lot)

Closer = Callable[[Session, str, Actor, datetime], dict[str, int]]
_closers: dict[str, Closer] = {}


def on_closure(name: str, closer: Closer) -> None:
    """Run `closer(session, patient_id, actor, now)` when a patient stops being active (deceased
    or closed), after the status changed; it answers counts for the outcome. Registering a name
    again replaces it."""
    _closers[name] = closer


def _allowed(current: str, target: str, reason_code: str, may_correct: bool) -> None:
    if current == "erased":
        raise PatientErasedError()
    if current == DECEASED and target == ACTIVE:
        if not (may_correct and reason_code == RECORDED_IN_ERROR):
            raise DeceasedFinalError()
        return
    if (current, target) not in ((ACTIVE, DECEASED), (ACTIVE, CLOSED), (CLOSED, DECEASED), (CLOSED, ACTIVE)):
        raise StatusTransitionError(status_from=current, status_to=target)


def _doc(row: Any, changed: bool) -> dict[str, Any]:
    return {"patient_id": row["patient_id"], "status": row["status_to"], "status_from": row["status_from"],
            "reason_code": row["reason_code"], "changed_at": row["changed_at"],
            "actor": {"kind": row["actor_kind"], "id": row["actor_id"]}, "outcome": row["outcome"],
            "changed": changed}


def history(session: Session, patient_id: str) -> list[dict[str, Any]]:
    rows = session.connection().execute(select(_changes).where(_changes.c.patient_id == patient_id)
                                        .order_by(_changes.c.changed_at.desc(), _changes.c.id.desc())).mappings()
    return [_doc(r, False) for r in rows]


def _void_holds(session: Session, wallet_id: str, now: datetime) -> int:
    ids = [r[0] for r in session.connection().execute(
        select(_holds.c.id).where(_holds.c.wallet_id == wallet_id, _holds.c.status == "open").order_by(_holds.c.id))]
    for hid in ids:
        ledger.void_hold(session, hid, now)
    return len(ids)


def _points(session: Session, patient_id: str, wallet_id: str, pool: str | None, now: datetime) -> dict[str, int]:
    """The unheld remainder of every lot of the patient's own wallet: to the household wallet
    (policy household, while a member) or to the expiry account."""
    poster = Poster(session, now)
    poster.lock([wallet_id, *([pool] if pool else [])])
    lots = [lot for lot in poster.open_lots(wallet_id) if lot.free > 0]
    if not lots:
        return {"points_expired": 0, "points_moved": 0, "lots_moved": 0}
    if get_settings().closure_points_policy == "household" and pool is not None:
        earned = dict(session.connection().execute(
            select(_lots.c.id, _lots.c.earned_at).where(_lots.c.id.in_([lot.id for lot in lots]))).all())
        moved = 0
        for lot in lots:
            amount = lot.free
            poster.move_lot(lot, pool, amount, now, earned[lot.id], patient_id, via=System.transfers,
                            kinds=CLOSURE_KINDS)
            moved += amount
        poster.flush()
        return {"points_expired": 0, "points_moved": moved, "lots_moved": len(lots)}
    posted = poster.expire(wallet_id, lots)
    poster.flush()
    return {"points_expired": -posted.points if posted else 0, "points_moved": 0, "lots_moved": 0}


def _wind_down(session: Session, patient_id: str, wallet_id: str, pool: str | None, actor: Actor,
               now: datetime) -> dict[str, int]:
    outcome = {"holds_voided": _void_holds(session, wallet_id, now)}
    outcome.update(_points(session, patient_id, wallet_id, pool, now))
    for name, closer in sorted(_closers.items()):
        for key, count in closer(session, patient_id, actor, now).items():
            outcome[f"{name}.{key}"] = count
    return outcome


def change_status(session: Session, patient_id: str, status: str, reason_code: str, actor: Actor, now: datetime,
                  *, note: str | None = None, may_correct: bool = False) -> dict[str, Any]:
    """Set the patient's status (see the module docstring); `may_correct`: the caller is an
    admin, who alone may correct a deceased status (`recorded_in_error`)."""
    if not patients.exists(session, patient_id):
        raise PatientNotFoundError()
    conn = session.connection()
    own = conn.execute(select(_acc.c.id, _acc.c.pool_id).where(_acc.c.patient_id == patient_id)).first()
    if own is not None:  # wallets first, as ingest takes them; then the patient row
        Poster(session, now).lock_patients({patient_id})
    found = patients.lock(session, patient_id)
    if found is None:
        raise PatientNotFoundError()
    current = found.status
    if current == status:
        last = conn.execute(select(_changes).where(_changes.c.patient_id == patient_id, _changes.c.status_to == status)
                            .order_by(_changes.c.changed_at.desc(), _changes.c.id.desc())).mappings().first()
        if last is not None:
            return _doc(last, False)
        return {"patient_id": patient_id, "status": status, "status_from": status, "reason_code": None,
                "changed_at": None, "actor": None, "outcome": {}, "changed": False}
    _allowed(current, status, reason_code, may_correct)
    if not patients.set_status(session, patient_id, current, status):
        raise StatusTransitionError(status_from=current, status_to=status)  # not under our lock: cannot happen
    outcome: dict[str, int] = {}
    if current == ACTIVE and own is not None:
        pool = conn.execute(select(_acc.c.pool_id).where(_acc.c.id == own.id)).scalar()  # read under the lock
        outcome = _wind_down(session, patient_id, own.id, pool, actor, now)
    cid = new_id()
    row = {"id": cid, "patient_id": patient_id, "status_from": current, "status_to": status,
           "reason_code": reason_code, "note": note, "actor_kind": actor.kind, "actor_id": actor.id,
           "outcome": outcome, "changed_at": now}
    conn.execute(_changes.insert(), [row])
    audit.record(session, actor, "patients:patient:status", now, subject_id=cid, patient_id=patient_id,
                 status_from=current, status_to=status, reason_code=reason_code, counts=outcome)
    if status == CLOSED:
        enqueue_many(conn, [("account.closed", patient_id, {"patient_id": patient_id})], now)
    elif status == ACTIVE:
        enqueue_many(conn, [("account.reopened", patient_id, {"patient_id": patient_id})], now)
    return _doc(row, True)
