"""Checkup packages (体检套餐): a package lists its items and how many can be done a
day; a booking takes one of the day's places through a guarded counter, so the
capacity holds under any concurrency. Attending emits `exam.attended` (modality
`checkup`), which the programme pays like any exam."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from carepoints.kit.bulk import savepoint
from carepoints.kit.ids import is_id, new_id
from carepoints.kit.money import to_fen
from carepoints.kit.outbox import enqueue_many
from carepoints.patients import service as patients
from carepoints.patients.errors import PatientNotFoundError
from carepoints.scheduling import booking
from carepoints.scheduling import repository as repo
from carepoints.scheduling.errors import (
    AlreadyBookedCheckupError,
    CheckupBookingNotFoundError,
    CheckupDayError,
    CheckupFullError,
    CheckupNotTodayError,
    DuplicateCodeError,
    IdempotencyConflictError,
    IllegalTransitionError,
    PackageNotFoundError,
    PatientInactiveError,
)
from carepoints.scheduling.schemas import CheckupBookingCreate, CheckupPackageCreate

BOOK_AHEAD_DAYS = 60


def _package_doc(row: RowMapping | dict[str, Any], booked: int | None = None) -> dict[str, Any]:
    doc = {"id": row["id"], "code": row["code"], "names": {"zh": row["name_zh"], "en": row["name_en"]},
           "items": row["items"], "price_cny": f"{Decimal(row['price_fen']) / 100:.2f}",
           "daily_capacity": row["daily_capacity"], "active": row["active"]}
    if booked is not None:
        doc["remaining"] = max(0, row["daily_capacity"] - booked)
    return doc


def create_package(session: Session, data: CheckupPackageCreate, now: datetime) -> dict[str, Any]:
    row = {"id": new_id(), "code": data.code, "name_zh": data.name_zh, "name_en": data.name_en, "items": data.items,
           "price_fen": to_fen(data.price_cny), "daily_capacity": data.daily_capacity,
           "active": True, "created_at": now}
    conn = session.connection()
    try:
        with savepoint(conn):
            repo.add(conn, repo.packages, row)
    except IntegrityError as exc:
        raise DuplicateCodeError() from exc
    return _package_doc(row)


def list_packages(session: Session, day: date | None, now: datetime) -> list[dict[str, Any]]:
    """Active packages, with the places left on `day` (default today)."""
    conn = session.connection()
    rows = repo.active_packages(conn)
    on = day or booking.local_day(now)
    booked = repo.checkup_booked(conn, [r["id"] for r in rows], on)
    return [_package_doc(r, booked.get(r["id"], 0)) | {"date": on.isoformat()} for r in rows]


def _doc(row: RowMapping | dict[str, Any], package: RowMapping) -> dict[str, Any]:
    return {"id": row["id"], "package": package["code"], "patient_id": row["patient_id"],
            "date": row["day"].isoformat(), "status": row["status"], "booked_at": booking.local(row["booked_at"])}


def book(session: Session, data: CheckupBookingCreate, now: datetime) -> tuple[dict[str, Any], bool]:
    """Book a package on a local day (today up to 60 days ahead). Idempotent on the key."""
    conn = session.connection()
    patient = patients.lock(session, data.patient_id)
    if patient is None:
        raise PatientNotFoundError()
    if patient.status != "active":
        raise PatientInactiveError()
    package = repo.package_by_code(conn, data.package)
    if package is None or not package["active"]:
        raise PackageNotFoundError()
    prior = repo.checkup_by_key(conn, data.patient_id, data.idempotency_key)
    if prior is not None:
        if prior["package_id"] != package["id"] or prior["day"] != data.date:
            raise IdempotencyConflictError()
        return _doc(prior, package), False
    today = booking.local_day(now)
    if not today <= data.date <= today + timedelta(days=BOOK_AHEAD_DAYS):
        raise CheckupDayError(days=BOOK_AHEAD_DAYS)
    row = {"id": new_id(), "package_id": package["id"], "patient_id": data.patient_id, "day": data.date,
           "status": "booked", "idempotency_key": data.idempotency_key, "booked_at": now, "closed_at": None}
    try:
        with savepoint(conn):
            repo.add(conn, repo.checkup_bookings, row)  # one live booking a day per package and patient
    except IntegrityError as exc:
        raise AlreadyBookedCheckupError() from exc
    if not repo.take_checkup_room(conn, package["id"], data.date, package["daily_capacity"]):
        raise CheckupFullError()  # the transaction rolls back, booking row included
    enqueue_many(conn, [("checkup.booked", data.patient_id, {"patient_id": data.patient_id,
                                                             "checkup_id": row["id"]})], now)
    return _doc(row, package), True


def _booking(session: Session, booking_id: str) -> tuple[RowMapping, RowMapping]:
    conn = session.connection()
    row = repo.get(conn, repo.checkup_bookings, booking_id, lock=True) if is_id(booking_id) else None
    if row is None:
        raise CheckupBookingNotFoundError()
    package = repo.get(conn, repo.packages, row["package_id"])
    assert package is not None  # noqa: S101 - a foreign key
    return row, package


def cancel(session: Session, booking_id: str, now: datetime) -> dict[str, Any]:
    """Cancel a checkup booking (until the day is over) and give its place back."""
    conn = session.connection()
    row, package = _booking(session, booking_id)
    if row["status"] == "cancelled":
        return _doc(row, package)
    if row["status"] != "booked" or booking.local_day(now) > row["day"]:
        raise IllegalTransitionError(status=row["status"], action="取消 cancel")
    repo.set_checkup(conn, row["id"], status="cancelled", closed_at=now)
    repo.give_checkup_room(conn, row["package_id"], row["day"])
    return _doc({**row, "status": "cancelled"}, package)


def attend(session: Session, booking_id: str, now: datetime) -> dict[str, Any]:
    """The checkup was done (on its day): emits `exam.attended` with modality checkup."""
    conn = session.connection()
    row, package = _booking(session, booking_id)
    if row["status"] == "attended":
        return _doc(row, package)
    if row["status"] != "booked":
        raise IllegalTransitionError(status=row["status"], action="就诊 attend")
    if booking.local_day(now) < row["day"]:
        raise CheckupNotTodayError()
    repo.set_checkup(conn, row["id"], status="attended", closed_at=now)
    start = datetime.combine(row["day"], time(8), tzinfo=booking.tz())
    booking.emit(session, "exam.attended", row["patient_id"], now, now, row["id"], {
        "exam_id": row["id"], "modality": "checkup", "slot_start": start.isoformat()})
    return _doc({**row, "status": "attended"}, package)
