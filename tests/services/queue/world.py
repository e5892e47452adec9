"""A clinic for the queue tests: today's session (started about 40 minutes ago, ten 4-minute
slots) of the booking tests' Hospital, patients booked into it and checked in at chosen times
(the queue endpoints use the real clock, so every check-in lies in the past)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from carepoints.config import get_settings
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.outbox import OutboxMessage
from carepoints.kit.time import as_utc, utc_now
from carepoints.scheduling import service as sch
from carepoints.scheduling.schemas import AppointmentCreate, CheckInIn, ClinicianCreate
from tests.helpers import enrol
from tests.pages.test_patient_booking import Hospital

_n = iter(range(10**6))


class Clinic(Hospital):
    """`sess` is today's session; `book()` → appointment doc; `check_in(appt, minutes)` checks in
    `minutes` after the slot's start (negative: before it, on time)."""

    def __init__(self, slots: int = 10) -> None:
        super().__init__()
        tz = get_settings().tz
        local = utc_now().astimezone(tz).replace(second=0, microsecond=0)
        start = max(local - timedelta(minutes=4 * slots), local.replace(hour=0, minute=0))
        end = min(start + timedelta(minutes=4 * slots), local.replace(hour=23, minute=59))
        self.sess = self.session(start.date(), start.time(), end.time(), minutes=4, capacity=slots)
        self.start = start

    def book(self, pid: str | None = None, **extra: Any) -> dict[str, Any]:
        pid = pid or enrol(utc_now() - timedelta(days=2), **extra)
        with write_tx() as s:
            doc, _ = sch.book(s, AppointmentCreate(patient_id=pid, session_id=self.sess["id"],
                                                   idempotency_key=f"q{next(_n)}"),
                              self.start - timedelta(days=1), booked_by="staff")
        return doc

    def check_in(self, appt: dict[str, Any], minutes: float = -1, priority: bool = False) -> dict[str, Any]:
        at = datetime.fromisoformat(appt["start"]) + timedelta(minutes=minutes)
        at = min(as_utc(at), utc_now() - timedelta(seconds=1))
        with write_tx() as s:
            return sch.check_in(s, appt["id"], CheckInIn(priority=priority or None, channel="desk"), at)

    def doctor_for(self, staff_user_id: str) -> str:
        """A clinician of this department who is the staff user."""
        with write_tx() as s:
            return str(sch.create_clinician(s, ClinicianCreate(
                department_id=self.department, code=f"qd{next(_n)}", name="李医生", title="主治医师",
                staff_user_id=staff_user_id), utc_now())["id"])


def outbox(topic: str) -> list[dict[str, Any]]:
    """The payloads queued under `topic`, oldest first."""
    with read_tx() as s:
        rows = s.execute(select(OutboxMessage.payload).where(OutboxMessage.topic == topic)
                         .order_by(OutboxMessage.created_at, OutboxMessage.id)).all()
    return [dict(r[0]) for r in rows]
