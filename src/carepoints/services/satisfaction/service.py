"""Satisfaction loop use cases: complaints (投诉) filed by a patient or for one, and the
improvement items staff work on — assign, note what was done, close with a resolution.

Items come from three sources, each exactly once (unique kind + source id): low survey answers
and negative reviews through the `detect-improvements` job (`tasks.py`), complaints in the
transaction that stores the complaint. Transitions are guarded UPDATEs (open → assigned →
closed; a closed item takes no note, assignment or second close: 409 `satisfaction.item_closed`),
so two staff closing at once close it once. Every step is audited with ids and codes only — never
the patient's words, a note or a resolution. Staff see the patient's name masked (张*明); a staff
read of an item (it shows the patient's words) is audited `satisfaction:item:view`.

A complaint's patient is told it was received and, when its item closes, that it was handled
(`complaints.received`, `complaints.closed`): they read the resolution on their complaints page."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.orm import Session

from carepoints.audit import service as audit
from carepoints.audit.service import Actor
from carepoints.kit.ids import is_id, new_id, request_digest
from carepoints.kit.outbox import enqueue_many
from carepoints.kit.time import iso_z
from carepoints.patients import service as patients
from carepoints.patients.errors import PatientNotFoundError
from carepoints.security import service as security
from carepoints.security.permissions import Role
from carepoints.services.satisfaction import repository as repo
from carepoints.services.satisfaction.errors import (
    AppointmentNotFoundError,
    AssigneeNotFoundError,
    ComplaintNotFoundError,
    DepartmentMismatchError,
    DepartmentNotFoundError,
    IdempotencyConflictError,
    ItemClosedError,
    ItemNotFoundError,
)
from carepoints.services.satisfaction.models import OPEN_STATUSES
from carepoints.services.satisfaction.schemas import AssignIn, CloseIn, ComplaintIn, NoteIn

# who works on improvement items (and may be assigned one)
HANDLERS = (Role.frontdesk, Role.nurse, Role.clinician, Role.admin)


def _conn(session: Session) -> Connection:
    return session.connection()


def _at(value: datetime | None) -> str | None:
    return iso_z(value) if value is not None else None


def patient_id(session: Session, pid: str) -> str:
    """The patient a path names, who must exist."""
    if not patients.exists(session, pid):
        raise PatientNotFoundError()
    return pid


# --- complaints -------------------------------------------------------------------------------

def _channel(actor: Actor) -> str:
    return {"patient": "patient", "staff": "staff"}.get(actor.kind, "his")


def _complaint_doc(row: RowMapping) -> dict[str, Any]:
    return {"id": row["id"], "patient_id": row["patient_id"], "appointment_id": row["appointment_id"],
            "department": {"id": row["department_id"], "name_zh": row["department_zh"],
                           "name_en": row["department_en"]},
            "category": row["category"], "text": row["text"], "channel": row["channel"],
            "created_at": iso_z(row["created_at"]), "item_id": row["item_id"],
            "status": "closed" if row["status"] == "closed" else "open",
            "resolution": row["resolution"] if row["status"] == "closed" else None,
            "closed_at": _at(row["closed_at"])}


def _subject(conn: Connection, pid: str, body: ComplaintIn) -> tuple[str, str | None]:
    """(department, appointment) the complaint is about: the visit's department, which a named
    department must match, or the named department."""
    if body.appointment_id is not None:
        appt = repo.appointment_of(conn, body.appointment_id)
        if appt is None or appt["patient_id"] != pid:
            raise AppointmentNotFoundError()
        if body.department_id is not None and body.department_id != appt["department_id"]:
            raise DepartmentMismatchError()
        return str(appt["department_id"]), str(appt["id"])
    assert body.department_id is not None  # noqa: S101 - the schema asks for one of the two
    if repo.department(conn, body.department_id) is None:
        raise DepartmentNotFoundError()
    return body.department_id, None


def _replayed(conn: Connection, pid: str, key: str, digest: str) -> dict[str, Any]:
    stored = repo.complaint_by_key(conn, pid, key)
    assert stored is not None  # noqa: S101 - the key is taken
    if stored["request_hash"] != digest:
        raise IdempotencyConflictError()
    row = repo.complaint(conn, stored["id"])
    assert row is not None  # noqa: S101 - just read
    return _complaint_doc(row)


def file_complaint(session: Session, pid: str, body: ComplaintIn, actor: Actor, now: datetime
                   ) -> tuple[dict[str, Any], bool]:
    """Store a complaint and its improvement item (kind complaint) in one transaction; audited
    `satisfaction:complaint:file` (ids and the category only); the patient is told it arrived.
    The same idempotency key again answers the stored complaint (False), with other content 409."""
    conn = _conn(session)
    digest = request_digest(body.model_dump(mode="json", exclude={"idempotency_key"}))
    key = body.idempotency_key
    if key is not None and repo.complaint_by_key(conn, pid, key) is not None:
        return _replayed(conn, pid, key, digest), False
    department_id, appointment_id = _subject(conn, pid, body)
    cid = new_id()
    row = {"id": cid, "patient_id": pid, "appointment_id": appointment_id, "department_id": department_id,
           "category": str(body.category), "text": body.text, "channel": _channel(actor),
           "filed_by_kind": actor.kind, "filed_by_id": actor.id, "idempotency_key": key, "request_hash": digest,
           "created_at": now}
    if not repo.add_complaint(conn, row):
        assert key is not None  # noqa: S101 - only a keyed insert can lose
        return _replayed(conn, pid, key, digest), False
    item_id = new_id()
    repo.add_item(conn, {"id": item_id, "kind": "complaint", "source_id": cid, "patient_id": pid,
                         "department_id": department_id, "appointment_id": appointment_id, "score": None,
                         "reasons": [str(body.category)], "status": "open", "assignee_id": None,
                         "assigned_at": None, "resolution": None, "closed_by": None, "closed_at": None,
                         "created_at": now, "updated_at": now})
    audit.record(session, actor, "satisfaction:complaint:file", now, subject_id=cid, patient_id=pid,
                 item_id=item_id, department_id=department_id, appointment_id=appointment_id,
                 category=str(body.category), channel=row["channel"])
    enqueue_many(conn, [("complaints.received", pid, {"patient_id": pid, "complaint_id": cid})], now)
    stored = repo.complaint(conn, cid)
    assert stored is not None  # noqa: S101 - just written
    return _complaint_doc(stored), True


def complaints_of(session: Session, pid: str, *, limit: int = 50) -> dict[str, Any]:
    """The patient's complaints, newest first, each with its state and (closed) resolution."""
    return {"patient_id": pid, "items": [_complaint_doc(r) for r in repo.complaints_of(_conn(session), pid, limit)]}


def complaint(session: Session, pid: str, complaint_id: str) -> dict[str, Any]:
    row = repo.complaint(_conn(session), complaint_id)
    if row is None or row["patient_id"] != pid:
        raise ComplaintNotFoundError()
    return _complaint_doc(row)


def complaint_owners(session: Session, complaint_id: str) -> list[str]:
    """Whose complaint this is (the ownership lookup of the page naming one by its id)."""
    return repo.complaint_owners(_conn(session), complaint_id)


def recent_visits(session: Session, pid: str, now: datetime, *, limit: int = 10) -> list[dict[str, Any]]:
    """The visits a patient may complain about: begun, not cancelled, latest first."""
    return [{"id": r["id"], "start": iso_z(r["slot_start"]), "status": r["status"],
             "department": {"id": r["department_id"], "name_zh": r["name_zh"], "name_en": r["name_en"]}}
            for r in repo.recent_visits(_conn(session), pid, now, limit)]


def departments(session: Session) -> list[dict[str, Any]]:
    return [{"id": d["id"], "name_zh": d["name_zh"], "name_en": d["name_en"], "institution_id": d["institution_id"]}
            for d in repo.departments(_conn(session))]


# --- items ------------------------------------------------------------------------------------

def _item_doc(session: Session, row: RowMapping) -> dict[str, Any]:
    dept = None if row["department_id"] is None else {
        "id": row["department_id"], "name_zh": row["department_zh"], "name_en": row["department_en"]}
    return {"id": row["id"], "kind": row["kind"], "source_id": row["source_id"], "patient_id": row["patient_id"],
            "patient": patients.display_name(session, row["patient_id"], masked=True), "department": dept,
            "appointment_id": row["appointment_id"], "score": row["score"], "reasons": list(row["reasons"] or []),
            "status": row["status"], "assignee_id": row["assignee_id"], "assigned_at": _at(row["assigned_at"]),
            "resolution": row["resolution"], "closed_by": row["closed_by"], "closed_at": _at(row["closed_at"]),
            "created_at": iso_z(row["created_at"])}


def _row(conn: Connection, item_id: str) -> RowMapping:
    row = repo.item(conn, item_id)
    if row is None:
        raise ItemNotFoundError()
    return row


def items(session: Session, *, status: str | None = "open", department_id: str | None = None,
          kind: str | None = None, assignee_id: str | None = None, before: str | None = None,
          limit: int = 50) -> dict[str, Any]:
    """The queue, newest first: `status` open (open and assigned), closed, all (None) or one
    status; `before` is the id the previous page ended at (`next`)."""
    statuses: tuple[str, ...] | None = OPEN_STATUSES if status == "open" else (
        None if status is None else (status,))
    rows = repo.item_list(_conn(session), statuses=statuses, department_id=department_id, kind=kind,
                          assignee_id=assignee_id, before=before, limit=limit)
    docs = [_item_doc(session, r) for r in rows]
    return {"items": docs, "next": docs[-1]["id"] if len(docs) == limit else None}


def _source(conn: Connection, row: RowMapping) -> dict[str, Any]:
    """What the patient said (shown to the staff working on the item, never audited or logged)."""
    if row["kind"] == "review":
        r = repo.review_text(conn, row["source_id"])
        return {"rating": r["rating"], "text": r["text"]} if r else {}
    if row["kind"] == "survey":
        s = repo.survey_answers(conn, row["source_id"])
        return {"period": s["survey_period"], "answers": dict(s["answers"] or {})} if s else {}
    c = repo.complaint(conn, row["source_id"])
    return {"category": c["category"], "text": c["text"], "channel": c["channel"]} if c else {}


def view_item(session: Session, item_id: str, actor: Actor, now: datetime) -> dict[str, Any]:
    """One item with the patient's words and the notes; the read is audited."""
    conn = _conn(session)
    row = _row(conn, item_id)
    doc = _item_doc(session, row)
    doc["source"] = _source(conn, row)
    doc["notes"] = [{"id": n["id"], "author_kind": n["author_kind"], "author_id": n["author_id"], "text": n["text"],
                     "created_at": iso_z(n["created_at"])} for n in repo.item_notes(conn, row["id"])]
    audit.record(session, actor, "satisfaction:item:view", now, subject_id=row["id"], patient_id=row["patient_id"])
    return doc


def handlers(session: Session) -> list[dict[str, Any]]:
    """The active staff users an item may be assigned to (id, username, role)."""
    return [{"id": u["id"], "username": u["username"], "role": u["role"]} for u in security.staff_users(session)
            if u["active"] and u["role"] in HANDLERS]


def assign(session: Session, item_id: str, body: AssignIn, actor: Actor, now: datetime) -> dict[str, Any]:
    """Give an open or assigned item to an active staff user who handles items (404
    `satisfaction.assignee_not_found` otherwise); they are told in their inbox."""
    conn = _conn(session)
    row = _row(conn, item_id)
    who = security.active_staff(session, body.staff_user_id) if is_id(body.staff_user_id) else None
    if who is None or who[2] not in HANDLERS:
        raise AssigneeNotFoundError()
    if not repo.set_item(conn, row["id"], OPEN_STATUSES, status="assigned", assignee_id=who[0], assigned_at=now,
                         updated_at=now):
        raise ItemClosedError()
    audit.record(session, actor, "satisfaction:item:assign", now, subject_id=row["id"], patient_id=row["patient_id"],
                 assignee_id=who[0], previous_assignee_id=row["assignee_id"])
    enqueue_many(conn, [("improvements.assigned", None, {"staff_user_id": who[0], "item_id": row["id"]})], now)
    return _item_doc(session, _row(conn, row["id"]))


def add_note(session: Session, item_id: str, body: NoteIn, actor: Actor, now: datetime) -> dict[str, Any]:
    """Record what was done on an open item (the note's text stays on the item, never in the audit)."""
    conn = _conn(session)
    row = _row(conn, item_id)
    if not repo.set_item(conn, row["id"], OPEN_STATUSES, updated_at=now):  # locks the row against a close
        raise ItemClosedError()
    nid = new_id()
    repo.add_note(conn, {"id": nid, "item_id": row["id"], "author_kind": actor.kind, "author_id": actor.id,
                         "text": body.text, "created_at": now})
    audit.record(session, actor, "satisfaction:item:note", now, subject_id=row["id"], patient_id=row["patient_id"],
                 note_id=nid)
    return {"id": nid, "item_id": row["id"], "author_kind": actor.kind, "author_id": actor.id, "text": body.text,
            "created_at": iso_z(now)}


def close(session: Session, item_id: str, body: CloseIn, actor: Actor, now: datetime) -> dict[str, Any]:
    """Close an open or assigned item with its resolution, once (a second close is 409); a
    complaint's patient is told it was handled."""
    conn = _conn(session)
    row = _row(conn, item_id)
    if not repo.set_item(conn, row["id"], OPEN_STATUSES, status="closed", resolution=body.resolution,
                         closed_by=actor.id, closed_at=now, updated_at=now):
        raise ItemClosedError()
    audit.record(session, actor, "satisfaction:item:close", now, subject_id=row["id"], patient_id=row["patient_id"],
                 kind=row["kind"], department_id=row["department_id"])
    if row["kind"] == "complaint":
        enqueue_many(conn, [("complaints.closed", row["patient_id"], {"patient_id": row["patient_id"],
                                                                      "complaint_id": row["source_id"]})], now)
    return _item_doc(session, _row(conn, row["id"]))
