"""Scheduling's part in the PIPL rights (enrolment.privacy): the patient's appointments and
waitlist entries in their data download, and at erasure their future bookings cancelled by
the hospital (`by: hospital` is never penalised and earns nothing) and their waitlist
places given up (an offered slot passes on)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from carepoints.audit.service import Actor
from carepoints.enrolment import privacy
from carepoints.scheduling import booking, service, waitlist
from carepoints.scheduling import repository as repo
from carepoints.scheduling.schemas import CancelIn


def appointments(session: Session, patient_id: str) -> list[dict[str, Any]]:
    rows = session.connection().execute(select(repo.appointments).where(repo.appointments.c.patient_id == patient_id)
                                        .order_by(repo.appointments.c.slot_start, repo.appointments.c.id)).mappings()
    return [booking.appointment_doc(r) for r in rows]


def waitlist_entries(session: Session, patient_id: str) -> list[dict[str, Any]]:
    w = repo.waitlist
    rows = session.connection().execute(select(w.c.id, w.c.session_id, w.c.status, w.c.joined_at, w.c.closed_at,
                                               w.c.appointment_id).where(w.c.patient_id == patient_id)
                                        .order_by(w.c.joined_at, w.c.id)).mappings()
    return [dict(r) for r in rows]


def withdraw(session: Session, patient_id: str, now: datetime, reason: str) -> dict[str, int]:
    """Cancel the patient's future bookings (`by: hospital`, never a penalty) and leave their
    waitlists: at erasure, and when an account closes (scheduling.closure)."""
    conn = session.connection()
    a, w = repo.appointments, repo.waitlist
    future = [r[0] for r in conn.execute(select(a.c.id).where(
        a.c.patient_id == patient_id, a.c.status == "booked", a.c.slot_start > now).order_by(a.c.id))]
    for appointment_id in future:
        service.cancel(session, appointment_id, CancelIn(by="hospital", reason=reason), now)
    places = [r[0] for r in conn.execute(select(w.c.id).where(
        w.c.patient_id == patient_id, w.c.status.in_(repo.WAITING)).order_by(w.c.id))]
    for entry_id in places:
        waitlist.decline(session, entry_id, now)
    return {"appointments_cancelled": len(future), "waitlist_left": len(places)}


def erase(session: Session, patient_id: str, _actor: Actor, now: datetime) -> dict[str, int]:
    return withdraw(session, patient_id, now, "erasure")


def connect() -> None:
    privacy.export_section("appointments", appointments)
    privacy.export_section("waitlist", waitlist_entries)
    privacy.on_erasure("scheduling", erase)
