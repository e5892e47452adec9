"""Scheduling's part in merging a duplicate record (enrolment.merge): the duplicate's
appointments, waitlist places and checkup bookings move to the survivor. A live booking
that would break one of the survivor's "at most one" rules (both booked one clinician the
same day, the same day rank, the same checkup package and day, a place on the same
waitlist) is cancelled by the hospital first (`by: hospital`: never penalised, earns
nothing) — its history then moves like any other; past rows that still clash stay with the
duplicate (counted as kept)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from carepoints.audit.service import Actor
from carepoints.enrolment import merge
from carepoints.scheduling import checkups, service, waitlist
from carepoints.scheduling import repository as repo
from carepoints.scheduling.models import Appointment, CheckupBooking, WaitlistEntry
from carepoints.scheduling.schemas import CancelIn


def move(session: Session, survivor_id: str, duplicate_id: str, _actor: Actor, now: datetime) -> dict[str, int]:
    conn = session.connection()
    a, w = repo.appointments, repo.waitlist
    clash = {k[0] for k in merge.clashing(session, Appointment, survivor_id, duplicate_id)}
    live = [r[0] for r in conn.execute(select(a.c.id).where(a.c.id.in_(clash), a.c.status == "booked",
                                                           a.c.slot_start > now).order_by(a.c.id))] if clash else []
    for appointment_id in live:
        service.cancel(session, appointment_id, CancelIn(by="hospital", reason="merge"), now)
    places = {k[0] for k in merge.clashing(session, WaitlistEntry, survivor_id, duplicate_id)}
    waiting = [r[0] for r in conn.execute(select(w.c.id).where(w.c.id.in_(places), w.c.status.in_(repo.WAITING))
                                          .order_by(w.c.id))] if places else []
    for entry_id in waiting:
        waitlist.decline(session, entry_id, now)
    cb = repo.checkup_bookings
    taken = {k[0] for k in merge.clashing(session, CheckupBooking, survivor_id, duplicate_id)}
    checkup_live = [r[0] for r in conn.execute(select(cb.c.id).where(cb.c.id.in_(taken), cb.c.status == "booked")
                                               .order_by(cb.c.id))] if taken else []
    for booking_id in checkup_live:
        checkups.cancel(session, booking_id, now)
    out: dict[str, int] = {"appointments_cancelled": len(live), "waitlist_declined": len(waiting),
                           "checkup_bookings_cancelled": len(checkup_live)}
    out["appointments"], out["appointments_kept"] = merge.move_rows(session, Appointment, survivor_id, duplicate_id)
    out["waitlist_entries"], out["waitlist_entries_kept"] = merge.move_rows(session, WaitlistEntry, survivor_id,
                                                                            duplicate_id)
    out["checkup_bookings"], out["checkup_bookings_kept"] = merge.move_rows(session, CheckupBooking, survivor_id,
                                                                            duplicate_id)
    return out


def connect() -> None:
    merge.on_merge("scheduling", move)
