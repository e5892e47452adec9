"""Appointment reminders the day before (就诊提醒): one `appointment.reminder`
outbox message per live booking of tomorrow (the hospital's calendar), once
ever per appointment, whichever run gets there first."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from carepoints.config import get_settings
from carepoints.kit.db import table
from carepoints.kit.outbox import enqueue_many
from carepoints.kit.time import ONE_DAY, iso_z, local_date
from carepoints.notifications import service as notifications
from carepoints.scheduling.models import Appointment

_ap = table(Appointment)
TOPIC = "appointment.reminder"


def remind_tomorrow(session: Session, now: datetime) -> int:
    """Queue tomorrow's reminders not queued before; answers how many."""
    tomorrow = local_date(now, get_settings().tz) + ONE_DAY
    rows = session.connection().execute(
        select(_ap.c.id, _ap.c.patient_id, _ap.c.slot_start)
        .where(_ap.c.day == tomorrow, _ap.c.status == "booked").order_by(_ap.c.id)).all()
    messages: list[tuple[str, str | None, dict[str, Any]]] = []
    for aid, pid, start in rows:
        if notifications.once(session, TOPIC, aid, now):
            messages.append((TOPIC, pid, {"patient_id": pid, "appointment_id": aid, "slot_start": iso_z(start)}))
    enqueue_many(session.connection(), messages, now)
    return len(messages)
