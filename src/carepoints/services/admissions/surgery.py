"""Surgery use cases (择期 / 日间手术): a clinician's request, the pre-op checks recorded, the
scheduling nurse's room and date, done or cancelled.

A scheduled request holds its expected minutes and one case of its room's day, taken by one
guarded upsert of the room's day counter (never above the room's minutes or cases: CHECKs behind
it) and given back in the same transaction when it moves or is cancelled. The request row is
locked and changed by UPDATEs naming the state they expect. The rules (working days, earliest
date, day-surgery duration and checks, not before the admission) are rules.py's."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from carepoints.audit.service import Actor, record
from carepoints.config import get_settings
from carepoints.kit.bulk import savepoint
from carepoints.kit.ids import is_id, new_id
from carepoints.kit.outbox import enqueue_many
from carepoints.kit.time import day_start_utc
from carepoints.services.admissions import repository as repo
from carepoints.services.admissions import rules
from carepoints.services.admissions.errors import (
    IdempotencyConflictError,
    IllegalTransitionError,
    NotSurgeryDayError,
    OrderNotFoundError,
    RoomFullError,
    RoomKindError,
    RoomNotFoundError,
    SurgeryNotFoundError,
)
from carepoints.services.admissions.schemas import SurgeryCheck, SurgeryCreate, SurgerySchedule
from carepoints.services.admissions.service import (
    active_patient,
    conn_of,
    department,
    local_iso,
    room_doc,
    today,
)

_ACTIONS = {"check": "登记术前检查 record a check", "schedule": "安排手术 schedule", "cancel": "取消 cancel",
            "done": "登记完成 record done"}
_CHECK_COLUMN = {"preop_exam": "preop_exam_at", "anaesthesia": "anaesthesia_at"}


def policy() -> rules.SurgeryPolicy:
    s = get_settings()
    return rules.SurgeryPolicy(day_min_days=s.surgery_day_min_days, elective_min_days=s.surgery_elective_min_days,
                               day_max_minutes=s.surgery_day_max_minutes, horizon_days=s.surgery_horizon_days)


def surgery_doc(session: Session, row: RowMapping | dict[str, Any]) -> dict[str, Any]:
    room = repo.get(conn_of(session), repo.rooms, row["room_id"]) if row["room_id"] else None
    return {"id": row["id"], "patient_id": row["patient_id"], "department_id": row["department_id"],
            "procedure": row["procedure"], "kind": row["kind"], "expected_minutes": row["expected_minutes"],
            "discharge": rules.discharge(row["kind"]), "earliest_date": row["earliest_date"].isoformat(),
            "admission_order_id": row["admission_order_id"], "status": row["status"],
            "room": room_doc(room) if room is not None else None,
            "surgery_date": row["surgery_date"].isoformat() if row["surgery_date"] else None,
            "checks": {"preop_exam": local_iso(row["preop_exam_at"]), "anaesthesia": local_iso(row["anaesthesia_at"])},
            "requested_at": local_iso(row["requested_at"]), "scheduled_at": local_iso(row["scheduled_at"]),
            "done_at": local_iso(row["done_at"]), "cancelled_at": local_iso(row["cancelled_at"])}


def _same_request(row: RowMapping, pid: str, data: SurgeryCreate) -> bool:
    return (row["patient_id"], row["department_id"], row["procedure"], row["kind"], row["expected_minutes"]) == (
        pid, data.department_id, data.procedure, data.kind, data.expected_minutes)


def request(session: Session, data: SurgeryCreate, actor: Actor, now: datetime) -> tuple[dict[str, Any], bool]:
    """A clinician requests a surgery (idempotent on the key). A day surgery longer than the day
    limit is refused (422 `admissions.day_surgery_too_long`); the earliest date follows the rules."""
    conn = conn_of(session)
    pid = active_patient(session, data.patient_id, data.patient)
    prior = repo.by_key(conn, repo.surgeries, data.idempotency_key)
    if prior is not None:
        if not _same_request(prior, pid, data):
            raise IdempotencyConflictError()
        return surgery_doc(session, prior), False
    department(session, data.department_id)
    p = policy()
    rules.check_request(data.kind, data.expected_minutes, p)
    if data.admission_order_id is not None:
        order = repo.get(conn, repo.orders, data.admission_order_id) if is_id(data.admission_order_id) else None
        if order is None or order["patient_id"] != pid:
            raise OrderNotFoundError()
    earliest = rules.earliest_surgery_date(today(now), data.kind, p, data.earliest_date)
    row = {"id": new_id(), "patient_id": pid, "department_id": data.department_id, "procedure": data.procedure,
           "kind": data.kind, "expected_minutes": data.expected_minutes, "earliest_date": earliest,
           "admission_order_id": data.admission_order_id, "status": "requested", "room_id": None,
           "surgery_date": None, "preop_exam_at": None, "anaesthesia_at": None, "requested_by": actor.id,
           "idempotency_key": data.idempotency_key, "requested_at": now, "scheduled_at": None, "done_at": None,
           "cancelled_at": None}
    try:
        with savepoint(conn, "cp_surgery_request"):
            repo.add(conn, repo.surgeries, row)
    except IntegrityError as exc:  # the same key from a concurrent request
        raise IdempotencyConflictError() from exc
    record(session, actor, "admissions:surgery:request", now, subject_id=str(row["id"]), patient_id=pid,
           department_id=data.department_id, kind=data.kind)
    return surgery_doc(session, row), True


def _surgery(session: Session, surgery_id: str, lock: bool = False) -> RowMapping:
    row = repo.get(conn_of(session), repo.surgeries, surgery_id, lock=lock) if is_id(surgery_id) else None
    if row is None:
        raise SurgeryNotFoundError()
    return row


def read(session: Session, surgery_id: str) -> dict[str, Any]:
    return surgery_doc(session, _surgery(session, surgery_id))


def owners(session: Session, surgery_id: str) -> list[str]:
    return repo.owners(conn_of(session), repo.surgeries, surgery_id) if is_id(surgery_id) else []


def record_check(session: Session, surgery_id: str, data: SurgeryCheck, actor: Actor, now: datetime) -> dict[str, Any]:
    """Record the pre-op exam or the anaesthesia assessment as done (the first time counts)."""
    row = _surgery(session, surgery_id, lock=True)
    column = _CHECK_COLUMN[data.check]
    if row[column] is not None:
        return surgery_doc(session, row)
    if row["status"] not in ("requested", "scheduled"):
        raise IllegalTransitionError(status=row["status"], action=_ACTIONS["check"])
    repo.set_row(conn_of(session), repo.surgeries, row["id"], {"status": row["status"]}, **{column: now})
    record(session, actor, "admissions:surgery:check", now, subject_id=row["id"], patient_id=row["patient_id"],
           check=data.check)
    return surgery_doc(session, _surgery(session, row["id"]))


def _room(session: Session, room_id: str) -> RowMapping:
    room = repo.get(conn_of(session), repo.rooms, room_id) if is_id(room_id) else None
    if room is None or not room["active"]:
        raise RoomNotFoundError()
    return room


def schedule(session: Session, surgery_id: str, data: SurgerySchedule, actor: Actor, now: datetime) -> dict[str, Any]:
    """Put the surgery in a room on a date (or move it): the rules, then its minutes and one case of
    the room's day (409 `admissions.room_full`). The same room and date again changes nothing."""
    conn = conn_of(session)
    row = _surgery(session, surgery_id, lock=True)
    if row["status"] == "scheduled" and (row["room_id"], row["surgery_date"]) == (data.room_id, data.date):
        return surgery_doc(session, row)
    if row["status"] not in ("requested", "scheduled"):
        raise IllegalTransitionError(status=row["status"], action=_ACTIONS["schedule"])
    room = _room(session, data.room_id)
    if not (room["day_surgery"] if row["kind"] == "day" else room["elective"]):
        raise RoomKindError()
    admission_date = None
    if row["admission_order_id"] is not None:
        order = repo.get(conn, repo.orders, row["admission_order_id"])
        admission_date = order["admission_date"] if order is not None else None
    rules.check_surgery_date(data.date, kind=row["kind"], earliest=row["earliest_date"], today=today(now),
                             policy=policy(), day_starts_at=day_start_utc(data.date, get_settings().tz),
                             preop_at=row["preop_exam_at"], anaesthesia_at=row["anaesthesia_at"],
                             admission_date=admission_date)
    if not repo.take_room_time(conn, room, data.date, row["expected_minutes"]):
        raise RoomFullError()
    moving = row["status"] == "scheduled"
    if moving:
        repo.give_room_time(conn, row["room_id"], row["surgery_date"], row["expected_minutes"])
    if not repo.set_row(conn, repo.surgeries, row["id"], {"status": row["status"]}, status="scheduled",
                        room_id=room["id"], surgery_date=data.date, scheduled_at=now):
        raise IllegalTransitionError(status=row["status"], action=_ACTIONS["schedule"])
    record(session, actor, f"admissions:surgery:{'reschedule' if moving else 'schedule'}", now, subject_id=row["id"],
           patient_id=row["patient_id"], room_id=room["id"], day=data.date.isoformat())
    enqueue_many(conn, [("surgery.scheduled", row["patient_id"], {
        "patient_id": row["patient_id"], "surgery_id": row["id"], "surgery_date": data.date.isoformat()})], now)
    return surgery_doc(session, _surgery(session, row["id"]))


def cancel(session: Session, surgery_id: str, actor: Actor, now: datetime, reason: str | None = None) -> dict[str, Any]:
    """Cancel a requested or scheduled surgery (its room time given back). Again → the same."""
    conn = conn_of(session)
    row = _surgery(session, surgery_id, lock=True)
    if row["status"] == "cancelled":
        return surgery_doc(session, row)
    if row["status"] not in ("requested", "scheduled"):
        raise IllegalTransitionError(status=row["status"], action=_ACTIONS["cancel"])
    if row["status"] == "scheduled":
        repo.give_room_time(conn, row["room_id"], row["surgery_date"], row["expected_minutes"])
    if not repo.set_row(conn, repo.surgeries, row["id"], {"status": row["status"]}, status="cancelled",
                        room_id=None, surgery_date=None, cancelled_at=now):
        raise IllegalTransitionError(status=row["status"], action=_ACTIONS["cancel"])
    record(session, actor, "admissions:surgery:cancel", now, subject_id=row["id"], patient_id=row["patient_id"],
           reason=reason)
    enqueue_many(conn, [("surgery.cancelled", row["patient_id"], {"patient_id": row["patient_id"],
                                                                  "surgery_id": row["id"]})], now)
    return surgery_doc(session, _surgery(session, row["id"]))


def complete(session: Session, surgery_id: str, actor: Actor, now: datetime) -> dict[str, Any]:
    """The surgery took place: only a scheduled one, from its day on."""
    row = _surgery(session, surgery_id, lock=True)
    if row["status"] == "done":
        return surgery_doc(session, row)
    if row["status"] != "scheduled":
        raise IllegalTransitionError(status=row["status"], action=_ACTIONS["done"])
    if today(now) < row["surgery_date"]:
        raise NotSurgeryDayError(day=row["surgery_date"].isoformat())
    if not repo.set_row(conn_of(session), repo.surgeries, row["id"], {"status": "scheduled"}, status="done",
                        done_at=now):
        raise IllegalTransitionError(status=row["status"], action=_ACTIONS["done"])
    record(session, actor, "admissions:surgery:done", now, subject_id=row["id"], patient_id=row["patient_id"])
    return surgery_doc(session, _surgery(session, row["id"]))


def room_day(session: Session, room_id: str, day: date) -> dict[str, Any]:
    """The room's day: minutes and cases booked of its capacity, and the surgeries (ids, kinds,
    minutes; the procedure only for staff, who read it here)."""
    room = _room(session, room_id)
    counter = repo.room_day(conn_of(session), room["id"], day)
    used = (int(counter["minutes_booked"]), int(counter["cases_booked"])) if counter else (0, 0)
    caps = (int(counter["minutes_capacity"]), int(counter["cases_capacity"])) if counter \
        else (room["minutes_per_day"], room["cases_per_day"])
    items = [surgery_doc(session, r) for r in repo.room_day_surgeries(conn_of(session), room["id"], day)]
    return {"room": room_doc(room), "date": day.isoformat(),
            "minutes": {"booked": used[0], "capacity": caps[0]}, "cases": {"booked": used[1], "capacity": caps[1]},
            "surgeries": items}


def waiting(session: Session) -> list[dict[str, Any]]:
    """Requests waiting for a room and a date, oldest first."""
    return [surgery_doc(session, r) for r in repo.open_surgeries(conn_of(session), None)]


def of_patient(session: Session, patient_id: str) -> list[dict[str, Any]]:
    return [surgery_doc(session, r) for r in repo.of_patient(conn_of(session), repo.surgeries, patient_id,
                                                             "requested_at")]
