"""Appeals (申诉) of penalties and suspensions.

A patient, the service window for them, or the hospital app files an appeal of a penalty
(an accepted event of the patient with a negative award: a no-show, misconduct, an
offline-entered deduction) or of a suspension of earning, with a reason code, within
`appeal_window_days` of the penalty being applied. Staff then uphold it (nothing changes)
or reverse it: the event is revoked (events.service.revoke, reason `appeal:<id>`), which
gives the points back and lifts a suspension it caused; a suspension's reversal revokes
its trigger no-show.

Concurrency: filing and deciding take the patient's row lock first (then revoke takes the
wallet's, as every two-step use case does), so a filing sees a decision committed before
it; the partial unique index `uq_appeals_open_subject` keeps at most one open appeal per
subject whatever happens, and one guarded UPDATE open → upheld/reversed decides two
deciders (the second answers 409 `appeals.already_decided`, the event is revoked once).
The CHECKs keep the decider apart from the patient and from whoever filed the appeal.

Filing and deciding are audited (`operations:appeal:filed` / `:decided`, ids and codes
only; notes stay on the appeal) and the patient is told through the outbox
(`appeal.received`, then `appeal.upheld` / `appeal.reversed`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from carepoints.audit import service as audit
from carepoints.audit.service import Actor
from carepoints.config import get_settings
from carepoints.events import service as events
from carepoints.events.models import Event
from carepoints.kit.bulk import savepoint
from carepoints.kit.db import table
from carepoints.kit.ids import is_id, new_id
from carepoints.kit.outbox import enqueue_many
from carepoints.kit.time import as_utc
from carepoints.operations.errors import (
    AppealAlreadyDecidedError,
    AppealAlreadyOpenError,
    AppealDeciderError,
    AppealNoteRequiredError,
    AppealNotFoundError,
    AppealNotPenaltyError,
    AppealSubjectNotFoundError,
    AppealSubjectRequiredError,
    AppealTooLateError,
)
from carepoints.operations.models import Appeal
from carepoints.patients import service as patients
from carepoints.patients.errors import PatientNotFoundError
from carepoints.rules.models import Suspension

REASONS = ("hospitalised", "session_cancelled_unrecorded", "wrong_patient", "other")
OUTCOMES = ("upheld", "reversed")
STATUSES = ("open", *OUTCOMES)

_appeals = table(Appeal)
_events = table(Event)
_suspensions = table(Suspension)


def _doc(row: Any) -> dict[str, Any]:
    decision = None
    if row["status"] != "open":
        decision = {"outcome": row["status"], "decided_at": as_utc(row["decided_at"]),
                    "decided_by": {"kind": row["decided_by_kind"], "id": row["decided_by_id"]},
                    "note": row["decision_note"]}
    return {"id": row["id"], "patient_id": row["patient_id"],
            "subject": {"kind": row["subject_kind"], "id": row["subject_id"]}, "event_id": row["event_id"],
            "reason": row["reason"], "note": row["note"], "status": row["status"],
            "created_at": as_utc(row["created_at"]), "deadline": as_utc(row["deadline"]),
            "created_by": {"kind": row["created_by_kind"], "id": row["created_by_id"]}, "decision": decision}


def _row(session: Session, appeal_id: str) -> Any:
    if not is_id(appeal_id):
        raise AppealNotFoundError()
    row = session.connection().execute(select(_appeals).where(_appeals.c.id == appeal_id)).mappings().first()
    if row is None:
        raise AppealNotFoundError()
    return row


def _subject(session: Session, patient_id: str, kind: str, subject_id: str) -> tuple[str, datetime]:
    """(the event a reversal revokes, when the penalty was applied); 404 when the subject is
    not this patient's, 409 `appeals.not_a_penalty` when the event deducted nothing."""
    conn = session.connection()
    if not is_id(subject_id):
        raise AppealSubjectNotFoundError()
    if kind == "suspension":
        s = conn.execute(select(_suspensions.c.trigger_event_id, _suspensions.c.created_at).where(
            _suspensions.c.id == subject_id, _suspensions.c.patient_id == patient_id)).first()
        if s is None:
            raise AppealSubjectNotFoundError()
        return str(s[0]), as_utc(s[1])
    ev = conn.execute(select(_events.c.status, _events.c.outcome, _events.c.received_at).where(
        _events.c.id == subject_id, _events.c.patient_id == patient_id)).first()
    if ev is None:
        raise AppealSubjectNotFoundError()
    status, outcome, received_at = ev
    if status != "accepted" or not any(int(a.get("points") or 0) < 0 for a in (outcome or {}).get("awards") or []):
        raise AppealNotPenaltyError()
    return subject_id, as_utc(received_at)


def file(session: Session, actor: Actor, now: datetime, *, patient_id: str | None, ref: patients.Reference | None,
         reason: str, event_id: str | None = None, suspension_id: str | None = None,
         note: str | None = None) -> dict[str, Any]:
    """File an appeal of one penalty event or one suspension of the named patient (a patient
    token may name only itself). Audited; the patient is told it was received."""
    if (event_id is None) == (suspension_id is None):
        raise AppealSubjectRequiredError()
    if reason == "other" and not (note or "").strip():
        raise AppealNoteRequiredError()
    found = patients.locked(session, patient_id, ref)  # serialises filings and decisions of this patient
    pid = found.patient_id
    kind, subject_id = ("penalty", event_id) if event_id is not None else ("suspension", suspension_id)
    assert subject_id is not None  # noqa: S101 - one of the two, checked above
    conn = session.connection()
    earlier = set(conn.execute(select(_appeals.c.status).where(
        _appeals.c.subject_kind == kind, _appeals.c.subject_id == subject_id,
        _appeals.c.patient_id == pid)).scalars())
    if earlier - {"open"}:
        raise AppealAlreadyDecidedError()
    if earlier:
        raise AppealAlreadyOpenError()
    target, applied_at = _subject(session, pid, kind, subject_id)
    settings = get_settings()
    if now > applied_at + timedelta(days=settings.appeal_window_days):
        raise AppealTooLateError(days=settings.appeal_window_days)
    appeal_id, deadline = new_id(), now + timedelta(days=settings.appeal_decision_days)
    row: dict[str, Any] = {
        "id": appeal_id, "patient_id": pid, "subject_kind": kind, "subject_id": subject_id, "event_id": target,
        "reason": reason, "note": note, "status": "open", "created_at": now, "deadline": deadline,
        "created_by_kind": actor.kind, "created_by_id": actor.id, "decided_by_kind": None, "decided_by_id": None,
        "decided_at": None, "decision_note": None}
    try:
        with savepoint(conn):
            conn.execute(_appeals.insert(), [row])
    except IntegrityError as exc:  # the open-subject index caught a race
        raise AppealAlreadyOpenError() from exc
    audit.record(session, actor, "operations:appeal:filed", now, subject_id=appeal_id, patient_id=pid,
                 subject_kind=kind, subject=subject_id, event_id=target, reason=reason)
    enqueue_many(conn, [("appeal.received", pid, {"patient_id": pid, "appeal_id": appeal_id,
                                                  "due_at": deadline.isoformat()})], now)
    return _doc(row)


def decide(session: Session, appeal_id: str, outcome: str, actor: Actor, now: datetime, *,
           note: str | None = None) -> dict[str, Any]:
    """Uphold or reverse an open appeal. Reversing revokes its event (points back, the
    suspension it caused lifted). The decider must not be the patient nor whoever filed it
    (403 `appeals.decider_not_allowed`); a decided appeal answers 409 `appeals.already_decided`.
    Audited; the patient is told the outcome."""
    row = _row(session, appeal_id)
    if actor.kind == "patient" or actor.id in (row["created_by_id"], row["patient_id"]):
        raise AppealDeciderError()
    if patients.lock(session, row["patient_id"]) is None:  # the same lock order as filing
        raise PatientNotFoundError()
    conn = session.connection()
    done = conn.execute(update(_appeals).where(_appeals.c.id == appeal_id, _appeals.c.status == "open").values(
        status=outcome, decided_by_kind=actor.kind, decided_by_id=actor.id, decided_at=now, decision_note=note))
    if not done.rowcount:
        raise AppealAlreadyDecidedError()
    points = 0
    if outcome == "reversed":
        result = events.revoke(session, now=now, reason=f"appeal:{appeal_id}", event_id=row["event_id"])
        points = sum(int(r["points"]) for r in result.get("reversed") or [])
    audit.record(session, actor, "operations:appeal:decided", now, subject_id=appeal_id, patient_id=row["patient_id"],
                 outcome=outcome, subject_kind=row["subject_kind"], subject=row["subject_id"],
                 event_id=row["event_id"], points=points)
    enqueue_many(conn, [(f"appeal.{outcome}", row["patient_id"], {
        "patient_id": row["patient_id"], "appeal_id": appeal_id, "subject_kind": row["subject_kind"],
        "points": points})], now)
    doc = _doc(_row(session, appeal_id))
    return {**doc, "points_returned": points}


def appeal(session: Session, appeal_id: str) -> dict[str, Any]:
    return _doc(_row(session, appeal_id))


def queue(session: Session, *, status: str | None = "open", patient_id: str | None = None, limit: int = 50,
          before: str | None = None) -> dict[str, Any]:
    """Appeals newest first (default: the open ones); `before` is the previous page's `next`."""
    stmt = select(_appeals).order_by(_appeals.c.id.desc()).limit(limit)
    if status is not None:
        stmt = stmt.where(_appeals.c.status == status)
    if patient_id is not None:
        stmt = stmt.where(_appeals.c.patient_id == patient_id)
    if before is not None:
        stmt = stmt.where(_appeals.c.id < before)
    items = [_doc(r) for r in session.connection().execute(stmt).mappings()]
    return {"items": items, "next": items[-1]["id"] if len(items) == limit else None}


def suspensions(session: Session, patient_id: str) -> dict[str, Any]:
    """The patient's suspensions of earning, newest first, each with the no-show that
    triggered it and its open or decided appeal: what a patient may appeal."""
    conn = session.connection()
    rows = conn.execute(select(_suspensions).where(_suspensions.c.patient_id == patient_id)
                        .order_by(_suspensions.c.starts_at.desc(), _suspensions.c.id.desc())).mappings().all()
    appealed = {r[0]: (r[1], r[2]) for r in conn.execute(
        select(_appeals.c.subject_id, _appeals.c.id, _appeals.c.status).where(
            _appeals.c.patient_id == patient_id, _appeals.c.subject_kind == "suspension"))}
    items = []
    for r in rows:
        appeal_ref = appealed.get(r["id"])
        items.append({"id": r["id"], "starts_at": as_utc(r["starts_at"]), "ends_at": as_utc(r["ends_at"]),
                      "trigger_event_id": r["trigger_event_id"],
                      "appeal": {"id": appeal_ref[0], "status": appeal_ref[1]} if appeal_ref else None})
    return {"items": items}
