"""Scheduling's part in deceased and closed accounts (enrolment.closure): the patient's future
bookings are cancelled by the hospital (`by: hospital` is never penalised and earns nothing)
and their waitlist places given up (an offered slot passes on)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from carepoints.audit.service import Actor
from carepoints.enrolment import closure
from carepoints.scheduling.privacy import withdraw


def close(session: Session, patient_id: str, _actor: Actor, now: datetime) -> dict[str, int]:
    return withdraw(session, patient_id, now, "account_closed")


def connect() -> None:
    closure.on_closure("scheduling", close)
