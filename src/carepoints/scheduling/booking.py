"""Booking internals shared by direct booking and the waitlist: a patient's limits,
recording an appointment on a claimed slot, and handing lifecycle events to the
spine."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from carepoints.config import get_settings
from carepoints.events import service as events
from carepoints.kit.bulk import savepoint
from carepoints.kit.errors import AppError
from carepoints.kit.outbox import enqueue_many
from carepoints.kit.time import as_utc, local_date
from carepoints.patients import institutions
from carepoints.scheduling import repository as repo
from carepoints.scheduling.errors import (
    ClinicianDayLimitError,
    DailyLimitError,
    IdempotencyConflictError,
    SlotTakenError,
)

SOURCE = "carepoints.scheduling"


def local(value: datetime) -> str:
    return as_utc(value).astimezone(get_settings().tz).isoformat()


def tz() -> ZoneInfo:
    return get_settings().tz


def local_day(value: datetime) -> date:
    return local_date(value, get_settings().tz)


def limits(conn: Connection, patient_id: str, sess: RowMapping) -> tuple[str | None, int]:
    """Check the patient's limits for a booking in `sess` (the caller holds the patient's
    lock); returns the clinician guard and the day rank the new booking takes."""
    settings = get_settings()
    live = repo.live_of_patient_day(conn, patient_id, sess["day"])
    guard = sess["clinician_id"] if settings.booking_one_per_clinician_day else None
    if guard is not None and any(r["clinician_guard"] == guard for r in live):
        raise ClinicianDayLimitError()
    used = {r["day_rank"] for r in live}
    free_ranks = [r for r in range(1, settings.booking_max_per_day + 1) if r not in used]
    if not free_ranks:
        raise DailyLimitError(limit=settings.booking_max_per_day)
    return guard, free_ranks[0]


def record(session: Session, sess: RowMapping, slot: RowMapping, now: datetime, **fields: Any) -> dict[str, Any]:
    """Insert the appointment on a slot already claimed for it (`fields["id"]`), emit
    `appointment.booked` and tell the patient. The indexes back the checks made before."""
    conn = session.connection()
    aid, pid, booked_by = fields["id"], fields["patient_id"], fields["booked_by"]
    row = {"session_id": sess["id"], "slot_id": slot["id"], "clinician_id": sess["clinician_id"],
           "resource_id": sess["resource_id"], "day": sess["day"], "seq": slot["seq"],
           "slot_start": slot["starts_at"], "slot_end": slot["ends_at"], "status": "booked", "booked_at": now,
           "checked_in_at": None, "late": None, "priority": False, "attended_at": None, "cancelled_at": None,
           "cancelled_by": None, "no_show_at": None,
           "history": [{"status": "booked", "at": now.isoformat(), "by": booked_by}], **fields}
    try:
        with savepoint(conn):
            repo.add(conn, repo.appointments, row)
    except IntegrityError as exc:  # the indexes back the checks: a race they caught
        raise limit_error(exc, get_settings().booking_max_per_day) from exc
    by_dept, _ = repo.institutions_of(conn, [sess["department_id"]], [])  # (ops.alliance) booked there: linked
    institutions.link(session, pid, by_dept.values(), now)
    emit(session, "appointment.booked", pid, now, now, aid, {
        "appointment_id": aid, "slot_start": slot["starts_at"].isoformat(), "booked_at": now.isoformat(),
        "booked_by": booked_by, "department": sess["department_id"],
        **({"clinician": sess["clinician_id"]} if sess["clinician_id"] else {})})
    enqueue_many(conn, [("appointment.booked", pid, {"patient_id": pid, "appointment_id": aid})], now)
    return row


def limit_error(exc: IntegrityError, limit: int) -> AppError:
    text = str(exc.orig)
    if "slot" in text:
        return SlotTakenError()
    if "clinician" in text:
        return ClinicianDayLimitError()
    if "day_rank" in text:
        return DailyLimitError(limit=limit)
    if "idempotency" in text:
        return IdempotencyConflictError()
    raise exc


def emit(session: Session, type_: str, patient_id: str, at: datetime, now: datetime, appointment_id: str,
          attrs: dict[str, Any]) -> dict[str, Any]:
    """Hand one lifecycle event (that happened at `at`) to the spine, in this transaction."""
    step = type_.split(".", 1)[1]
    result = events.ingest(session, [{
        "type": type_, "patient": {"id": patient_id}, "occurred_at": at.isoformat(), "source": SOURCE,
        "source_event_id": f"appointment:{appointment_id}:{step}", "attributes": attrs}], now)[0]
    if isinstance(result, AppError):
        raise result
    return result


def appointment_doc(row: RowMapping | dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "patient_id": row["patient_id"], "session_id": row["session_id"],
            "slot_id": row["slot_id"], "seq": row["seq"], "start": local(row["slot_start"]),
            "end": local(row["slot_end"]), "status": row["status"], "channel": row["channel"],
            "booked_by": row["booked_by"], "booked_at": local(row["booked_at"]),
            "checked_in_at": local(row["checked_in_at"]) if row["checked_in_at"] else None,
            "late": row["late"], "priority": bool(row["priority"]),
            "cancelled_at": local(row["cancelled_at"]) if row["cancelled_at"] else None,
            "cancelled_by": row["cancelled_by"]}


def step(row: RowMapping, status: str, at: datetime, **extra: Any) -> list[dict[str, Any]]:
    return [*(row["history"] or []), {"status": status, "at": at.isoformat(), **extra}]
