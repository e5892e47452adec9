"""Invites (推荐好友): every patient has one short invite code; a newly enrolled patient
accepts it once; the inviter earns `invite.completed` when the invitee attends their
first visit (an observer of `appointment.attended` / `exam.attended`), once."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from carepoints.audit import service as audit
from carepoints.audit.service import Actor
from carepoints.config import get_settings
from carepoints.engagement import spine
from carepoints.engagement.community.errors import (
    InviteCodeNotFoundError,
    InviteExistsError,
    InviteTooLateError,
    SameHouseholdInviteError,
    SelfInviteError,
)
from carepoints.engagement.community.models import Invite, InviteCode
from carepoints.engagement.community.schemas import InviteAccept
from carepoints.kit.bulk import insert_new, savepoint
from carepoints.kit.db import table
from carepoints.kit.ids import new_id
from carepoints.kit.time import as_utc
from carepoints.patients import households
from carepoints.patients import service as patients
from carepoints.patients.errors import PatientNotFoundError
from carepoints.patients.models import Patient

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
CODE_LENGTH = 8
_codes = table(InviteCode)
_invites = table(Invite)


def code_of(session: Session, patient_id: str, now: datetime) -> dict[str, Any]:
    """The patient's invite code, created on first use."""
    pid = spine.patient_of(session, patient_id).patient_id
    conn = session.connection()
    existing = conn.execute(select(_codes.c.code).where(_codes.c.patient_id == pid)).scalar()
    for _attempt in range(8):
        if existing is not None:
            return {"patient_id": pid, "code": existing}
        code = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
        try:
            with savepoint(conn):
                if insert_new(conn, _codes, {"patient_id": pid, "code": code, "created_at": now}, ["patient_id"]):
                    existing = code
                else:
                    existing = conn.execute(select(_codes.c.code).where(_codes.c.patient_id == pid)).scalar()
        except IntegrityError:  # the code is someone else's: draw again
            continue
    raise RuntimeError("could not draw a unique invite code")


def _household(session: Session, patient_id: str) -> str | None:
    m = households.membership(session, patient_id)
    return str(m["household_id"]) if m is not None else None


def accept(session: Session, data: InviteAccept, actor: Actor, now: datetime) -> dict[str, Any]:
    """Link the (recently enrolled) invitee to the code's owner, once per invitee."""
    invitee = spine.patient_of(session, data.patient_id, data.patient).patient_id
    conn = session.connection()
    inviter = conn.execute(select(_codes.c.patient_id).where(_codes.c.code == data.code.strip().upper())).scalar()
    if inviter is None:
        raise InviteCodeNotFoundError()
    if inviter == invitee:
        raise SelfInviteError()
    home = _household(session, invitee)
    if home is not None and home == _household(session, inviter):
        raise SameHouseholdInviteError()
    days = get_settings().invite_window_days
    enrolled = conn.execute(select(Patient.created_at).where(Patient.id == invitee)).scalar_one()
    if as_utc(enrolled) < now - timedelta(days=days):
        raise InviteTooLateError(days=days)
    row = {"id": new_id(), "invitee_id": invitee, "inviter_id": inviter, "status": "accepted", "accepted_at": now,
           "completed_at": None, "visit_event_id": None}
    if not insert_new(conn, _invites, row, ["invitee_id"]):
        raise InviteExistsError()
    audit.record(session, actor, "community:invite:accept", now, subject_id=row["id"], patient_id=invitee,
                 inviter_id=inviter)
    return _doc(row)


def _doc(row: Any) -> dict[str, Any]:
    return {"id": row["id"], "invitee_id": row["invitee_id"], "inviter_id": row["inviter_id"],
            "status": row["status"], "accepted_at": row["accepted_at"].isoformat(),
            "completed_at": row["completed_at"].isoformat() if row["completed_at"] else None}


def of_inviter(session: Session, patient_id: str) -> list[dict[str, Any]]:
    if not patients.exists(session, patient_id):
        raise PatientNotFoundError()
    pid = patient_id
    rows = session.connection().execute(select(_invites).where(_invites.c.inviter_id == pid).order_by(
        _invites.c.accepted_at.desc(), _invites.c.id.desc())).mappings().all()
    return [_doc(r) for r in rows]


def on_visit(session: Session, rows: list[dict[str, Any]], now: datetime) -> None:
    """An invitee's first attended visit completes their invite and pays the inviter, once
    (a guarded update from `accepted`; the event's source key is `invite:{invitee}`)."""
    for ev in rows:
        done = session.connection().execute(
            update(_invites).where(_invites.c.invitee_id == ev["patient_id"], _invites.c.status == "accepted")
            .values(status="completed", completed_at=now, visit_event_id=ev["id"])
            .returning(_invites.c.inviter_id)).first()
        if done is not None:
            spine.emit(session, "invite.completed", str(done[0]), now, now, f"invite:{ev['patient_id']}",
                       {"invitee_id": ev["patient_id"]})
