"""Admissions use cases: wards and their beds per day, admission orders (住院证) from issue through
the patient's date to the ward's confirmation of arrival, and the patient's overview of their
admissions, surgeries and pre-visit exams (surgery.py, previsit.py hold those use cases).

Every change runs in the caller's transaction and is guarded by the database: an order's row is
locked (FOR UPDATE on PostgreSQL, BEGIN IMMEDIATE on SQLite) and changed by an UPDATE that names
the state it expects; a day's bed is taken by one guarded upsert of the ward's day counter (never
above its capacity, a CHECK behind it), the old day's given back in the same transaction. Every
write is audited (ids, dates and codes only) and the patient is told through the outbox."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from carepoints.audit.service import Actor, record
from carepoints.config import get_settings
from carepoints.kit.bulk import savepoint
from carepoints.kit.ids import is_id, new_id
from carepoints.kit.outbox import enqueue_many
from carepoints.kit.time import as_utc, local_date
from carepoints.patients import service as patients
from carepoints.patients.errors import PatientNotFoundError
from carepoints.security.permissions import Role
from carepoints.services.admissions import repository as repo
from carepoints.services.admissions import rules
from carepoints.services.admissions.errors import (
    CapacityBelowBookedError,
    DateOutsideWindowError,
    DayFullError,
    DepartmentNotFoundError,
    DuplicateCodeError,
    IdempotencyConflictError,
    IllegalTransitionError,
    NotAdmissionDayError,
    OrderExistsError,
    OrderExpiredError,
    OrderNotFoundError,
    PatientInactiveError,
    WardNotFoundError,
)
from carepoints.services.admissions.models import ORDER_LIVE
from carepoints.services.admissions.schemas import OrderCreate, RoomCreate, WardCreate, WardDayCapacity

PATIENT_SIDE = (Role.patient, Role.proxy)
_ACTIONS = {"book": "选择入院日期 book a date", "cancel": "取消 cancel", "admit": "办理入院 admit"}


def conn_of(session: Session) -> Connection:
    return session.connection()


def today(now: datetime) -> date:
    return local_date(now, get_settings().tz)


def by_patient(actor: Actor) -> bool:
    """Whether the actor is the patient (or their proxy): the patient's cut-offs apply."""
    return actor.role in PATIENT_SIDE


def policy() -> rules.AdmissionPolicy:
    s = get_settings()
    return rules.AdmissionPolicy(cutoff_hours=s.admissions_cutoff_hours, max_reschedules=s.admissions_max_reschedules,
                                 book_ahead_days=s.admissions_book_ahead_days)


def local_iso(value: datetime | None) -> str | None:
    return None if value is None else as_utc(value).astimezone(get_settings().tz).isoformat()


def active_patient(session: Session, patient_id: str | None, ref: Any) -> str:
    """The patient a request names (a patient token: only one in reach), locked, who must be active."""
    pid = patients.named(session, patient_id, ref)
    found = patients.lock(session, pid)
    if found is None:
        raise PatientNotFoundError()
    if found.status != "active":
        raise PatientInactiveError()
    return pid


def department(session: Session, department_id: str) -> RowMapping:
    row = repo.department(conn_of(session), department_id) if is_id(department_id) else None
    if row is None:
        raise DepartmentNotFoundError()
    return row


def insert_unique(session: Session, tbl: Any, row: dict[str, Any]) -> None:
    try:
        with savepoint(conn_of(session), "cp_admissions_add"):
            repo.add(conn_of(session), tbl, row)
    except IntegrityError as exc:
        raise DuplicateCodeError() from exc


# --- wards and rooms (the hospital's set-up) --------------------------------------------------

def _ward_doc(row: RowMapping | dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "department_id": row["department_id"], "code": row["code"],
            "names": {"zh": row["name_zh"], "en": row["name_en"]}, "daily_admissions": row["daily_admissions"],
            "arrival_time": row["arrival_time"],
            "instructions": {"zh": row["instructions_zh"], "en": row["instructions_en"]}, "active": row["active"]}


def create_ward(session: Session, data: WardCreate, actor: Actor, now: datetime) -> dict[str, Any]:
    department(session, data.department_id)
    row = {"id": new_id(), "department_id": data.department_id, "code": data.code, "name_zh": data.name_zh,
           "name_en": data.name_en or data.name_zh, "daily_admissions": data.daily_admissions,
           "arrival_time": data.arrival_time.strftime("%H:%M"), "instructions_zh": data.instructions_zh,
           "instructions_en": data.instructions_en or data.instructions_zh, "active": True, "created_at": now}
    insert_unique(session, repo.wards, row)
    record(session, actor, "admissions:ward:create", now, subject_id=str(row["id"]), department_id=data.department_id)
    return _ward_doc(row)


def wards(session: Session) -> list[dict[str, Any]]:
    return [_ward_doc(r) | {"department_names": {"zh": r["department_zh"], "en": r["department_en"]}}
            for r in repo.list_of(conn_of(session), repo.wards)]


def ward(session: Session, ward_id: str) -> RowMapping:
    row = repo.get(conn_of(session), repo.wards, ward_id) if is_id(ward_id) else None
    if row is None or not row["active"]:
        raise WardNotFoundError()
    return row


def set_ward_day(session: Session, ward_id: str, day: date, data: WardDayCapacity, actor: Actor,
                 now: datetime) -> dict[str, Any]:
    """A day's capacity other than the ward's usual one (0 closes it), never below what is booked
    (409 `admissions.capacity_below_booked`)."""
    w = ward(session, ward_id)
    conn = conn_of(session)
    if not repo.set_day_capacity(conn, w["id"], day, data.capacity):
        booked, _cap = repo.ward_days_between(conn, w["id"], day, day)[day]
        raise CapacityBelowBookedError(booked=booked)
    record(session, actor, "admissions:ward:day_capacity", now, subject_id=w["id"], day=day.isoformat(),
           capacity=data.capacity)
    booked, cap = repo.ward_days_between(conn, w["id"], day, day)[day]
    return {"ward_id": w["id"], "date": day.isoformat(), "capacity": cap, "booked": booked, "free": cap - booked}


def room_doc(row: RowMapping | dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "department_id": row["department_id"], "code": row["code"], "name": row["name"],
            "minutes_per_day": row["minutes_per_day"], "cases_per_day": row["cases_per_day"],
            "kinds": [k for k, on in (("elective", row["elective"]), ("day", row["day_surgery"])) if on],
            "active": row["active"]}


def create_room(session: Session, data: RoomCreate, actor: Actor, now: datetime) -> dict[str, Any]:
    department(session, data.department_id)
    row = {"id": new_id(), "department_id": data.department_id, "code": data.code, "name": data.name,
           "minutes_per_day": data.minutes_per_day, "cases_per_day": data.cases_per_day, "elective": data.elective,
           "day_surgery": data.day_surgery, "active": True, "created_at": now}
    insert_unique(session, repo.rooms, row)
    record(session, actor, "admissions:room:create", now, subject_id=str(row["id"]), department_id=data.department_id)
    return room_doc(row)


def rooms(session: Session) -> list[dict[str, Any]]:
    return [room_doc(r) | {"department_names": {"zh": r["department_zh"], "en": r["department_en"]}}
            for r in repo.list_of(conn_of(session), repo.rooms)]


# --- admission orders -------------------------------------------------------------------------

def order_doc(session: Session, row: RowMapping | dict[str, Any], now: datetime,
              w: RowMapping | None = None) -> dict[str, Any]:
    """An order as its patient and staff see it: the ward, the window to book in, the date with
    the arrival time and the instructions, and until when the patient may still change it online."""
    w = w or repo.get(conn_of(session), repo.wards, row["ward_id"])
    assert w is not None  # noqa: S101 - a foreign key
    p, tz = policy(), get_settings().tz
    first, last = rules.admission_window(row["earliest_date"], row["valid_until"], today(now), p)
    status = row["status"]
    expired = status == "issued" and today(now) > row["valid_until"]
    doc: dict[str, Any] = {
        "id": row["id"], "patient_id": row["patient_id"], "status": "expired" if expired else status,
        "ward": {"id": w["id"], "names": {"zh": w["name_zh"], "en": w["name_en"]}, "department_id": w["department_id"]},
        "earliest_date": row["earliest_date"].isoformat(), "valid_until": row["valid_until"].isoformat(),
        "window": {"first": first.isoformat(), "last": last.isoformat()} if status == "issued" and first <= last
        else None,
        "admission_date": row["admission_date"].isoformat() if row["admission_date"] else None,
        "arrival_at": None, "change_until": None, "patient_may_change": False, "instructions": None,
        "reschedules": row["reschedules"], "reschedules_left": max(0, p.max_reschedules - row["reschedules"]),
        "issued_at": local_iso(row["issued_at"]), "booked_at": local_iso(row["booked_at"]),
        "admitted_at": local_iso(row["admitted_at"]), "cancelled_at": local_iso(row["cancelled_at"]),
        "cancelled_by": row["cancelled_by"]}
    if row["admission_date"] is not None:
        arrival = rules.arrival_at(row["admission_date"], w["arrival_time"], tz)
        doc["arrival_at"] = arrival.isoformat()
        doc["instructions"] = {"zh": w["instructions_zh"], "en": w["instructions_en"]}
        doc["change_until"] = (arrival - timedelta(hours=p.cutoff_hours)).isoformat()
        doc["patient_may_change"] = status == "booked" and rules.patient_may_change(arrival, now, p)
    elif status == "issued":
        doc["patient_may_change"] = not expired
    return doc


def issue_order(session: Session, data: OrderCreate, actor: Actor, now: datetime) -> tuple[dict[str, Any], bool]:
    """A clinician, the ward or the HIS issues an admission order (住院证). Idempotent on the key;
    one open order per patient and ward (409 `admissions.order_exists`). The patient is told to
    choose a date."""
    conn = conn_of(session)
    pid = active_patient(session, data.patient_id, data.patient)
    prior = repo.by_key(conn, repo.orders, data.idempotency_key)
    if prior is not None:
        if prior["patient_id"] != pid or prior["ward_id"] != data.ward_id:
            raise IdempotencyConflictError()
        return order_doc(session, prior, now), False
    w = ward(session, data.ward_id)
    first = data.earliest_date or today(now)
    horizon = today(now) + timedelta(days=get_settings().admissions_book_ahead_days)
    if not today(now) <= first <= horizon:
        raise DateOutsideWindowError(first=today(now).isoformat(), last=horizon.isoformat())
    valid_until = first + timedelta(days=(data.valid_days or get_settings().admissions_order_valid_days) - 1)
    row = {"id": new_id(), "patient_id": pid, "ward_id": w["id"], "status": "issued", "earliest_date": first,
           "valid_until": valid_until, "admission_date": None, "reschedules": 0, "issued_by": actor.id,
           "idempotency_key": data.idempotency_key, "issued_at": now, "booked_at": None, "admitted_at": None,
           "cancelled_at": None, "cancelled_by": None}
    try:
        with savepoint(conn, "cp_admission_order"):
            repo.add(conn, repo.orders, row)
    except IntegrityError as exc:
        if "idempotency" in str(exc.orig):
            raise IdempotencyConflictError() from exc
        raise OrderExistsError() from exc
    record(session, actor, "admissions:order:issue", now, subject_id=str(row["id"]), patient_id=pid, ward_id=w["id"])
    enqueue_many(conn, [("admissions.order_issued", pid, {"patient_id": pid, "order_id": row["id"]})], now)
    return order_doc(session, row, now, w), True


def _order(session: Session, order_id: str, lock: bool = False) -> RowMapping:
    row = repo.get(conn_of(session), repo.orders, order_id, lock=lock) if is_id(order_id) else None
    if row is None:
        raise OrderNotFoundError()
    return row


def read_order(session: Session, order_id: str, now: datetime) -> dict[str, Any]:
    return order_doc(session, _order(session, order_id), now)


def order_owners(session: Session, order_id: str) -> list[str]:
    """Whose order this is (the ownership lookup of routes naming an order by its id)."""
    return repo.owners(conn_of(session), repo.orders, order_id) if is_id(order_id) else []


def available_dates(session: Session, order_id: str, actor: Actor, now: datetime) -> dict[str, Any]:
    """The days the order may be booked on with the beds left each day; for the patient a day
    already inside the cut-off is not bookable online."""
    row = _order(session, order_id)
    w = ward(session, row["ward_id"])
    p, tz = policy(), get_settings().tz
    first, last = rules.admission_window(row["earliest_date"], row["valid_until"], today(now), p)
    used = repo.ward_days_between(conn_of(session), w["id"], first, last) if first <= last else {}
    days = []
    day = first
    while day <= last:
        booked, cap = used.get(day, (0, w["daily_admissions"]))
        online = not by_patient(actor) or rules.patient_may_change(rules.arrival_at(day, w["arrival_time"], tz), now, p)
        days.append({"date": day.isoformat(), "weekday": day.isoweekday(), "capacity": cap, "booked": booked,
                     "free": max(0, cap - booked), "bookable": online and booked < cap,
                     "current": row["admission_date"] == day})
        day += timedelta(days=1)
    return {"order": order_doc(session, row, now, w), "days": days}


def book_date(session: Session, order_id: str, day: date, actor: Actor, now: datetime) -> dict[str, Any]:
    """Book the admission on `day`, or move a booked one there (the old day's bed given back): the
    order's window; for the patient the cut-off (of the old and the new day) and the reschedule
    limit; a bed of that day (409 `admissions.day_full`). The same date again changes nothing."""
    conn = conn_of(session)
    row = _order(session, order_id, lock=True)
    if row["status"] == "booked" and row["admission_date"] == day:
        return order_doc(session, row, now)
    if row["status"] not in ORDER_LIVE:
        raise IllegalTransitionError(status=row["status"], action=_ACTIONS["book"])
    if row["status"] == "issued" and today(now) > row["valid_until"]:
        raise OrderExpiredError(valid_until=row["valid_until"].isoformat())
    w = ward(session, row["ward_id"])
    p, tz = policy(), get_settings().tz
    rules.check_admission_date(day, earliest=row["earliest_date"], valid_until=row["valid_until"], today=today(now),
                               policy=p)
    moving = row["status"] == "booked"
    if by_patient(actor):
        if moving:
            rules.check_patient_change(rules.arrival_at(row["admission_date"], w["arrival_time"], tz), now, p)
            rules.check_reschedule(row["reschedules"], p)
        rules.check_patient_change(rules.arrival_at(day, w["arrival_time"], tz), now, p)
    if not repo.take_bed(conn, w["id"], day, w["daily_admissions"]):
        raise DayFullError()
    if moving:
        repo.give_bed(conn, w["id"], row["admission_date"])
    done = repo.set_row(conn, repo.orders, row["id"], {"status": row["status"]}, status="booked", admission_date=day,
                        booked_at=now, reschedules=row["reschedules"] + (1 if moving else 0))
    if not done:
        raise IllegalTransitionError(status=row["status"], action=_ACTIONS["book"])
    action = "reschedule" if moving else "book"
    record(session, actor, f"admissions:order:{action}", now, subject_id=row["id"], patient_id=row["patient_id"],
           ward_id=w["id"], day=day.isoformat(), **({"from_day": row["admission_date"].isoformat()} if moving else {}))
    enqueue_many(conn, [("admissions.booked", row["patient_id"], {
        "patient_id": row["patient_id"], "order_id": row["id"], "admission_date": day.isoformat(),
        "arrival_time": w["arrival_time"], **({"variant": "moved"} if moving else {})})], now)
    return order_doc(session, _order(session, row["id"]), now, w)


def cancel_order(session: Session, order_id: str, actor: Actor, now: datetime,
                 reason: str | None = None) -> dict[str, Any]:
    """Cancel an open order (a booked day's bed given back): the patient until the cut-off, the
    ward or the clinician at any time before admission. Again → the same order."""
    conn = conn_of(session)
    row = _order(session, order_id, lock=True)
    if row["status"] == "cancelled":
        return order_doc(session, row, now)
    if row["status"] not in ORDER_LIVE:
        raise IllegalTransitionError(status=row["status"], action=_ACTIONS["cancel"])
    w = repo.get(conn, repo.wards, row["ward_id"])
    assert w is not None  # noqa: S101 - a foreign key
    patient_side = by_patient(actor)
    if patient_side and row["status"] == "booked":
        rules.check_patient_change(rules.arrival_at(row["admission_date"], w["arrival_time"], get_settings().tz), now,
                                   policy())
    if row["status"] == "booked":
        repo.give_bed(conn, w["id"], row["admission_date"])
    by = "patient" if patient_side else "hospital"
    if not repo.set_row(conn, repo.orders, row["id"], {"status": row["status"]}, status="cancelled",
                        admission_date=None, cancelled_at=now, cancelled_by=by):
        raise IllegalTransitionError(status=row["status"], action=_ACTIONS["cancel"])
    record(session, actor, "admissions:order:cancel", now, subject_id=row["id"], patient_id=row["patient_id"],
           ward_id=w["id"], by=by, reason=reason)
    variant = {"variant": "hospital"} if by == "hospital" else {}
    enqueue_many(conn, [("admissions.cancelled", row["patient_id"], {
        "patient_id": row["patient_id"], "order_id": row["id"], **variant})], now)
    return order_doc(session, _order(session, row["id"]), now, w)


def admit(session: Session, order_id: str, actor: Actor, now: datetime) -> dict[str, Any]:
    """The ward confirms the patient arrived (办理入院): only a booked order, only on its day."""
    conn = conn_of(session)
    row = _order(session, order_id, lock=True)
    if row["status"] == "admitted":
        return order_doc(session, row, now)
    if row["status"] != "booked":
        raise IllegalTransitionError(status=row["status"], action=_ACTIONS["admit"])
    if today(now) != row["admission_date"]:
        raise NotAdmissionDayError(day=row["admission_date"].isoformat())
    if not repo.set_row(conn, repo.orders, row["id"], {"status": "booked"}, status="admitted", admitted_at=now):
        raise IllegalTransitionError(status=row["status"], action=_ACTIONS["admit"])
    record(session, actor, "admissions:order:admit", now, subject_id=row["id"], patient_id=row["patient_id"],
           ward_id=row["ward_id"])
    return order_doc(session, _order(session, row["id"]), now)


def ward_day(session: Session, ward_id: str, day: date, now: datetime) -> dict[str, Any]:
    """The ward's day (病区日视图): capacity, booked, free, and each booked or admitted patient with a
    masked name."""
    w = ward(session, ward_id)
    conn = conn_of(session)
    booked, cap = repo.ward_days_between(conn, w["id"], day, day).get(day, (0, w["daily_admissions"]))
    items = [{"order_id": r["id"], "patient_id": r["patient_id"], "status": r["status"],
              "name": patients.display_name(session, r["patient_id"], masked=True),
              "booked_at": local_iso(r["booked_at"]), "admitted_at": local_iso(r["admitted_at"])}
             for r in repo.ward_day_orders(conn, w["id"], day)]
    return {"ward": _ward_doc(w), "date": day.isoformat(), "capacity": cap, "booked": booked,
            "free": max(0, cap - booked), "is_today": day == today(now), "orders": items}


def patient_orders(session: Session, patient_id: str, now: datetime) -> list[dict[str, Any]]:
    rows = repo.of_patient(conn_of(session), repo.orders, patient_id, "issued_at")
    return [order_doc(session, r, now) for r in rows]
