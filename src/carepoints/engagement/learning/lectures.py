"""Health lectures (健康讲座): seats, registrations, sign-in at the door.

Seats are money-like. `lectures.taken` counts the live seats (registrations and
walk-ins, i.e. registration rows `registered` or `attended`) and is only ever raised
by `UPDATE … SET taken = taken + 1 WHERE taken < seats`, so the database refuses the
(seats + 1)-th seat under any concurrency; a CHECK backs it. A patient holds at most
one registration row per lecture (unique); cancelling frees the seat.

Sign-in (staff at the door) is open from `lecture_sign_in_before_minutes` before the
start to `lecture_sign_in_after_minutes` after the end. A registered patient signs in
on their seat; a walk-in without a (live) registration is let in while seats remain
and takes one. The first sign-in of a patient emits `lecture.attended`; again answers
the stored sign-in with `duplicate: true`."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from carepoints.audit import service as audit
from carepoints.audit.service import Actor
from carepoints.config import get_settings
from carepoints.engagement import spine
from carepoints.engagement.learning.errors import (
    AlreadyAttendedError,
    InstitutionNotFoundError,
    LectureFullError,
    LectureNotFoundError,
    RegistrationClosedError,
    RegistrationNotFoundError,
    SignInWindowError,
)
from carepoints.engagement.learning.models import Lecture, LectureAttendance, LectureRegistration
from carepoints.engagement.learning.schemas import LectureCreate, RegistrationCreate, SignInCreate
from carepoints.kit.bulk import insert_new, savepoint
from carepoints.kit.db import table
from carepoints.kit.ids import is_id, new_id
from carepoints.kit.outbox import enqueue_many
from carepoints.kit.time import as_utc

_lectures = table(Lecture)
_regs = table(LectureRegistration)
_signins = table(LectureAttendance)
LIVE = ("registered", "attended")


def _local(value: datetime) -> str:
    return as_utc(value).astimezone(get_settings().tz).isoformat()


def _doc(row: RowMapping) -> dict[str, Any]:
    return {"id": row["id"], "title": row["title"], "place": row["place"], "starts_at": _local(row["starts_at"]),
            "ends_at": _local(row["ends_at"]), "seats": row["seats"], "taken": row["taken"],
            "seats_left": row["seats"] - row["taken"], "institution_id": row["institution_id"]}


def _reg_doc(row: RowMapping) -> dict[str, Any]:
    return {"id": row["id"], "lecture_id": row["lecture_id"], "patient_id": row["patient_id"],
            "status": row["status"], "created_at": row["created_at"].isoformat(),
            "updated_at": row["updated_at"].isoformat()}


def _row(session: Session, lecture_id: str) -> RowMapping:
    row = (session.connection().execute(select(_lectures).where(_lectures.c.id == lecture_id)).mappings().first()
           if is_id(lecture_id) else None)
    if row is None:
        raise LectureNotFoundError()
    return row


def read(session: Session, lecture_id: str) -> dict[str, Any]:
    return _doc(_row(session, lecture_id))


def create(session: Session, data: LectureCreate, actor: Actor, now: datetime) -> dict[str, Any]:
    """Schedule a lecture; an unknown `institution_id` is a 404."""
    if data.institution_id is not None and not is_id(data.institution_id):
        raise InstitutionNotFoundError()
    lid = new_id()
    conn = session.connection()
    try:
        with savepoint(conn):
            conn.execute(insert(_lectures).values(
                id=lid, title=data.title.model_dump(exclude_none=True), place=data.place, starts_at=data.starts_at,
                ends_at=data.ends_at, seats=data.seats, taken=0, institution_id=data.institution_id,
                created_at=now))
    except IntegrityError as exc:  # the only foreign key: the institution
        raise InstitutionNotFoundError() from exc
    audit.record(session, actor, "engagement:lecture:create", now, subject_id=lid, seats=data.seats)
    return read(session, lid)


def upcoming(session: Session, now: datetime, *, limit: int = 50) -> list[dict[str, Any]]:
    """Lectures not yet over, soonest first, with the seats left."""
    rows = session.connection().execute(select(_lectures).where(_lectures.c.ends_at > now)
                                        .order_by(_lectures.c.starts_at, _lectures.c.id).limit(limit)).mappings()
    return [_doc(r) for r in rows]


def _take_seat(session: Session, lecture_id: str) -> None:
    taken = session.connection().execute(
        update(_lectures).where(_lectures.c.id == lecture_id, _lectures.c.taken < _lectures.c.seats)
        .values(taken=_lectures.c.taken + 1).returning(_lectures.c.id)).first()
    if taken is None:
        raise LectureFullError()


def registration_of(session: Session, lecture_id: str, patient_id: str) -> RowMapping | None:
    """The patient's registration for a lecture (any state), or None (the lectures page)."""
    return _registration(session, lecture_id, patient_id)


def _registration(session: Session, lecture_id: str, patient_id: str) -> RowMapping | None:
    return session.connection().execute(select(_regs).where(
        _regs.c.lecture_id == lecture_id, _regs.c.patient_id == patient_id)).mappings().first()


def _hold_seat(session: Session, lecture_id: str, patient_id: str, status: str, now: datetime) -> str:
    """Give the patient (who has no live registration) a seat: a new registration row or
    their cancelled one revived, in `status`. The seat is taken after the row is written,
    so that a full lecture rolls both back."""
    conn = session.connection()
    prior = _registration(session, lecture_id, patient_id)
    if prior is None:
        rid = new_id()
        inserted = insert_new(conn, _regs, {"id": rid, "lecture_id": lecture_id, "patient_id": patient_id,
                                            "status": status, "created_at": now, "updated_at": now},
                              ("lecture_id", "patient_id"))
        assert inserted  # noqa: S101 - the patient's lock is held: nobody else writes their row
    else:
        rid = prior["id"]
        conn.execute(update(_regs).where(_regs.c.id == rid).values(status=status, updated_at=now))
    _take_seat(session, lecture_id)
    return rid


def register(session: Session, lecture_id: str, data: RegistrationCreate, actor: Actor, now: datetime
             ) -> tuple[dict[str, Any], bool]:
    """Register the patient for a seat until the lecture starts; a live registration again
    answers it (not new). 409 `engagement.lecture_full` when no seat is left."""
    lecture = _row(session, lecture_id)
    pid = spine.patient_of(session, data.patient_id, data.patient).patient_id
    prior = _registration(session, lecture_id, pid)
    if prior is not None and prior["status"] in LIVE:
        return _reg_doc(prior), False
    if now >= lecture["starts_at"]:
        raise RegistrationClosedError()
    rid = _hold_seat(session, lecture_id, pid, "registered", now)
    audit.record(session, actor, "engagement:lecture:register", now, subject_id=rid, patient_id=pid,
                 lecture_id=lecture_id)
    enqueue_many(session.connection(), [("lecture.registered", pid, {
        "lecture_id": lecture_id, "registration_id": rid, "patient_id": pid})], now)
    row = _registration(session, lecture_id, pid)
    assert row is not None  # noqa: S101 - written above
    return _reg_doc(row), True


def cancel(session: Session, lecture_id: str, registration_id: str, actor: Actor, now: datetime
           ) -> dict[str, Any]:
    """Cancel a registration and free its seat; again answers it unchanged. A patient who
    has signed in cannot cancel (409)."""
    conn = session.connection()
    done = (conn.execute(update(_regs).where(_regs.c.id == registration_id, _regs.c.lecture_id == lecture_id,
                                             _regs.c.status == "registered")
                         .values(status="cancelled", updated_at=now).returning(_regs.c.patient_id)).first()
            if is_id(registration_id) else None)
    if done is not None:
        conn.execute(update(_lectures).where(_lectures.c.id == lecture_id, _lectures.c.taken > 0)
                     .values(taken=_lectures.c.taken - 1))
        audit.record(session, actor, "engagement:lecture:cancel", now, subject_id=registration_id,
                     patient_id=done[0], lecture_id=lecture_id)
        enqueue_many(conn, [("lecture.registration_cancelled", done[0], {
            "lecture_id": lecture_id, "registration_id": registration_id, "patient_id": done[0]})], now)
    row = (conn.execute(select(_regs).where(_regs.c.id == registration_id, _regs.c.lecture_id == lecture_id))
           .mappings().first() if is_id(registration_id) else None)
    if row is None:
        _row(session, lecture_id)
        raise RegistrationNotFoundError()
    if row["status"] == "attended":
        raise AlreadyAttendedError()
    return _reg_doc(row)


def _sign_in_doc(row: RowMapping | dict[str, Any], *, duplicate: bool) -> dict[str, Any]:
    outcome = {**row["outcome"], "duplicate": True} if duplicate else row["outcome"]
    return {"id": row["id"], "lecture_id": row["lecture_id"], "patient_id": row["patient_id"],
            "walk_in": bool(row["walk_in"]), "signed_in_at": _local(row["signed_in_at"]), "outcome": outcome}


def _check_window(lecture: RowMapping, at: datetime) -> None:
    settings = get_settings()
    before, after = settings.lecture_sign_in_before_minutes, settings.lecture_sign_in_after_minutes
    if not (lecture["starts_at"] - timedelta(minutes=before) <= at <= lecture["ends_at"] + timedelta(minutes=after)):
        raise SignInWindowError(before=before, after=after)


def sign_in(session: Session, lecture_id: str, data: SignInCreate, actor: Actor, now: datetime
            ) -> tuple[dict[str, Any], bool]:
    """Sign a patient in at `at` (default now; never later than now) within the window.
    The first sign-in emits `lecture.attended` {lecture_id}; again → the stored one (not new)."""
    lecture = _row(session, lecture_id)
    pid = spine.patient_of(session, data.patient_id, data.patient).patient_id
    conn = session.connection()
    prior = conn.execute(select(_signins).where(_signins.c.lecture_id == lecture_id, _signins.c.patient_id == pid)
                         ).mappings().first()
    if prior is not None:
        return _sign_in_doc(prior, duplicate=True), False
    at = min(as_utc(data.at), now) if data.at is not None else now
    _check_window(lecture, at)
    reg = _registration(session, lecture_id, pid)
    walk_in = reg is None or reg["status"] != "registered"
    if walk_in:
        _hold_seat(session, lecture_id, pid, "attended", now)
    else:
        assert reg is not None  # noqa: S101 - not a walk-in
        conn.execute(update(_regs).where(_regs.c.id == reg["id"]).values(status="attended", updated_at=now))
    row: dict[str, Any] = {"id": new_id(), "lecture_id": lecture_id, "patient_id": pid, "walk_in": walk_in,
                           "signed_in_at": at, "outcome": {}, "created_at": now}
    row["outcome"] = spine.emit(session, "lecture.attended", pid, at, now, f"lecture:{lecture_id}:{pid}",
                                {"lecture_id": lecture_id})
    conn.execute(insert(_signins).values(**row))
    audit.record(session, actor, "engagement:lecture:sign_in", now, subject_id=row["id"], patient_id=pid,
                 lecture_id=lecture_id, walk_in=walk_in)
    return _sign_in_doc(row, duplicate=False), True
