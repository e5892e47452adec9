"""A department with nine weeks of booking history written into the real tables, and sessions
coming next week. Each past Monday, Tuesday and Thursday had one session 08:00–12:00 with sixteen
15-minute slots: Mondays full (16 attended) with 4 more patients on the waitlist (demand 20),
Tuesdays 10 attended, Thursdays 4 (filled from slot 1: 4, 4, 2, 0 and 4, 0, 0, 0 an hour). The history is flat, so the
baseline forecasts it exactly: next Tuesday 10 → 11 slots at headroom 1.1, next Thursday 4 → 5."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update

from carepoints.audit.service import Actor
from carepoints.config import get_settings
from carepoints.kit.bulk import insert_rows
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.time import utc_now
from carepoints.scheduling import repository as sched
from carepoints.scheduling import service as sch
from carepoints.scheduling.schemas import AppointmentCreate, SessionCreate
from carepoints.services.forecast import service
from carepoints.services.forecast.schemas import RunCreate
from tests.helpers import enrol
from tests.pages.test_patient_booking import Hospital

WEEKS = 9
DEMAND = {1: 16, 2: 10, 4: 4}  # ISO weekday → attended bookings
WAITLIST = {1: 4}
ADMIN = Actor("staff", "admin-forecast", "admin")
_n = iter(range(10**6))


def next_weekday(today: date, weekday: int) -> date:
    """The first day after today with this ISO weekday."""
    return today + timedelta(days=(weekday - today.isoweekday()) % 7 or 7)


class Demand(Hospital):
    """`tuesday` and `thursday` are next week's sessions (capacities 8 and 16)."""

    def __init__(self, weeks: int = WEEKS) -> None:
        super().__init__()
        now = utc_now()
        self.today = now.astimezone(get_settings().tz).date()
        self.patients = [enrol(now - timedelta(days=400)) for _ in range(2)]
        with write_tx() as s:
            for back in range(1, 7 * weeks + 1):
                day = self.today - timedelta(days=back)
                if day.isoweekday() in DEMAND:
                    sess = self._create(s, day, None)
                    self._fill(s, sess, DEMAND[day.isoweekday()], WAITLIST.get(day.isoweekday(), 0))
        self.tuesday = self.session(next_weekday(self.today, 2), time(8), time(12), minutes=15, capacity=8)
        self.thursday = self.session(next_weekday(self.today, 4), time(8), time(12), minutes=15, capacity=16)

    def _create(self, s: Any, day: date, capacity: int | None) -> dict[str, Any]:
        return sch.create_session(s, SessionCreate(
            clinician_id=self.clinicians[0], date=day, start=time(8), end=time(12), slot_minutes=15,
            capacity=capacity, fee_cny=Decimal("25"), level="general", pattern=["online"], referral_share=Decimal(0),
            release_at=utc_now() - timedelta(days=500)), utc_now())

    def _fill(self, s: Any, sess: dict[str, Any], attended: int, waiting: int) -> None:
        conn = s.connection()
        slots = conn.execute(select(sched.slots).where(sched.slots.c.session_id == sess["id"])
                             .order_by(sched.slots.c.seq).limit(attended)).mappings().all()
        rows = []
        for k, slot in enumerate(slots):
            aid = str(uuid.uuid4())
            conn.execute(update(sched.slots).where(sched.slots.c.id == slot["id"]).values(appointment_id=aid))
            booked_at = slot["starts_at"] - timedelta(days=3)
            rows.append({"id": aid, "patient_id": self.patients[k % 2], "session_id": sess["id"], "slot_id": slot["id"],
                         "clinician_id": self.clinicians[0], "resource_id": None, "clinician_guard": None,
                         "day": date.fromisoformat(sess["date"]), "day_rank": 1, "seq": slot["seq"],
                         "slot_start": slot["starts_at"], "slot_end": slot["ends_at"], "channel": "online",
                         "referral_id": None, "booked_by": "patient", "status": "attended",
                         "idempotency_key": f"h{next(_n)}", "request_hash": "h", "booked_at": booked_at,
                         "checked_in_at": slot["starts_at"], "late": False, "priority": False,
                         "attended_at": slot["starts_at"], "cancelled_at": None, "cancelled_by": None,
                         "no_show_at": None, "history": []})
        insert_rows(conn, sched.appointments, rows)
        entries = [{"id": str(uuid.uuid4()), "session_id": sess["id"], "patient_id": self.patients[k % 2],
                    "channel": "online", "referral_id": None, "status": "lapsed", "idempotency_key": f"w{next(_n)}",
                    "joined_at": utc_now() - timedelta(days=60), "offered_at": None, "offer_expires_at": None,
                    "slot_id": None, "appointment_id": None, "closed_at": None} for k in range(waiting)]
        insert_rows(conn, sched.waitlist, entries)

    def book(self, session_id: str, n: int) -> list[dict[str, Any]]:
        """`n` new patients book the session through the scheduling service."""
        out = []
        for _ in range(n):
            pid = enrol(utc_now() - timedelta(days=2))
            with write_tx() as s:
                doc, _ = sch.book(s, AppointmentCreate(patient_id=pid, session_id=session_id,
                                                       idempotency_key=f"f{next(_n)}"), utc_now())
            out.append(doc)
        return out


def run(weeks: int = 2, now: datetime | None = None) -> dict[str, Any]:
    """Prepare and save a forecast run (as the API does)."""
    now = now or utc_now()
    with read_tx() as s:
        plan = service.prepare(s, RunCreate(weeks=weeks), now)
    with write_tx() as s:
        return service.save(s, plan, ADMIN, now)


def suggestion_for(doc: dict[str, Any], session_id: str) -> dict[str, Any]:
    return next(s for s in doc["suggestions"] if s["session_id"] == session_id)


def capacity_of(session_id: str) -> tuple[int, int]:
    """(the session's capacity column, its number of slots)."""
    with read_tx() as s:
        conn = s.connection()
        cap = conn.execute(select(sched.sessions.c.capacity).where(sched.sessions.c.id == session_id)).scalar_one()
        slots = conn.execute(select(sched.slots.c.id).where(sched.slots.c.session_id == session_id)).all()
    return int(cap), len(slots)
