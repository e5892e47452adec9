"""Health use cases that span the parts: the patient's suggested tasks of a day, derived
from the chronic-disease registry and the medication plans."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from carepoints.config import get_settings
from carepoints.engagement.health import conditions, medication
from carepoints.engagement.health.models import HealthMeasurement
from carepoints.events.models import Event
from carepoints.kit.db import table
from carepoints.kit.time import day_start_utc
from carepoints.patients import service as patients
from carepoints.patients.errors import PatientNotFoundError

_readings = table(HealthMeasurement)
_events = table(Event)

# condition → the self-monitoring task it asks for each day
CHECKS: dict[str, tuple[str, str, str, str]] = {
    "hypertension": ("measure_bp", "blood_pressure", "测量血压", "Measure your blood pressure"),
    "diabetes": ("measure_glucose", "blood_glucose", "测量血糖", "Measure your blood glucose"),
}


def patient_id(session: Session, patient_id: str | None, ref: Any = None) -> str:
    """The patient a request names (by id or external reference), who must exist."""
    pid = patients.named(session, patient_id, ref)
    if not patients.exists(session, pid):
        raise PatientNotFoundError()
    return pid


def tasks_for(session: Session, patient_id: str, day: date) -> dict[str, Any]:
    """Suggested tasks of a local day: a reading for each condition that asks for one (done
    when a self-monitored reading of that kind exists that day) and each planned dose of an
    active plan (done when checked in)."""
    tz = get_settings().tz
    start, end = day_start_utc(day, tz), day_start_utc(day + timedelta(days=1), tz)
    codes = conditions.active_codes(session, patient_id)
    measured = set(session.connection().execute(
        select(_readings.c.kind).join(_events, _events.c.id == _readings.c.event_id).where(
            _readings.c.patient_id == patient_id, _readings.c.self_monitored.is_(True),
            _events.c.status == "accepted", _readings.c.taken_at >= start, _readings.c.taken_at < end)).scalars())
    items: list[dict[str, Any]] = []
    for code, (task, kind, zh, en) in CHECKS.items():
        if code in codes:
            items.append({"kind": task, "reason": code, "names": {"zh": zh, "en": en}, "done": kind in measured})
    plans = medication.plans_of(session, patient_id, include_stopped=False)
    doses = medication.doses_on(session, [p["id"] for p in plans], start, end)
    for plan in plans:
        row = {**plan, "start_date": date.fromisoformat(plan["start_date"]),
               "end_date": date.fromisoformat(plan["end_date"]) if plan["end_date"] else None}
        for instant in medication.planned(row, day, tz):
            dose = doses.get((plan["id"], instant))
            items.append({"kind": "medication", "plan_id": plan["id"], "medicine_name": plan["medicine_name"],
                          "dose_text": plan["dose_text"], "scheduled_for": instant.astimezone(tz).isoformat(),
                          "names": {"zh": "按时服药", "en": "Take your medicine"},
                          "done": dose is not None and dose["taken_at"] is not None})
    return {"patient_id": patient_id, "date": day.isoformat(), "conditions": sorted(codes), "items": items}
