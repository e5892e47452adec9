"""Care signals beyond single readings: critical lab values (危急值) from the HIS/LIS and
the inactivity job (关怀提醒). Payloads carry ids and codes only: never the test, the
value or a name."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from carepoints.config import get_settings
from carepoints.engagement.care import service as care
from carepoints.engagement.care.schemas import AlertKind
from carepoints.engagement.health.models import HealthMeasurement
from carepoints.events.models import Event
from carepoints.kit.db import table
from carepoints.kit.outbox import enqueue_many
from carepoints.kit.time import local_date
from carepoints.patients.models import Patient
from carepoints.security.models import StaffUser

_readings = table(HealthMeasurement)
_events = table(Event)
_patients = table(Patient)
_staff = table(StaffUser)


def _staff_ids(session: Session, refs: set[str]) -> dict[str, str]:
    """Clinician reference (a staff user's id or username) → the active staff user's id."""
    if not refs:
        return {}
    rows = session.connection().execute(select(_staff.c.id, _staff.c.username).where(
        _staff.c.active.is_(True), or_(_staff.c.id.in_(refs), _staff.c.username.in_(refs)))).all()
    out: dict[str, str] = {}
    for sid, username in rows:
        out.setdefault(username, sid)
        out[sid] = sid
    return out


def critical_values(session: Session, rows: list[dict[str, Any]], now: datetime) -> None:
    """Observer of `lab.critical_value`: a critical care alert at once, `lab.critical_value`
    {alert_id, patient_id, staff_user_id?} for the responsible clinician / care team and,
    only where the hospital enables it, `lab.critical_value.patient` {patient_id, alert_id}."""
    notify_patient = get_settings().critical_value_notify_patient
    staff = _staff_ids(session, {str(r["attributes"]["clinician"]) for r in rows
                                 if r["attributes"].get("clinician")})
    messages: list[tuple[str, str | None, dict[str, Any]]] = []
    for row in rows:
        clinician = row["attributes"].get("clinician")
        details: dict[str, Any] = {"event_id": row["id"]}
        if clinician:
            details["clinician"] = str(clinician)[:64]
        alert_id = care.raise_alert(session, patient_id=row["patient_id"], kind=AlertKind.critical_value,
                                    source_ref=row["id"], now=now, severity="critical", details=details)
        if alert_id is None:
            continue
        payload: dict[str, Any] = {"alert_id": alert_id, "patient_id": row["patient_id"]}
        staff_id = staff.get(str(clinician)) if clinician else None
        if staff_id is not None:
            payload["staff_user_id"] = staff_id
        messages.append(("lab.critical_value", row["patient_id"], payload))
        if notify_patient:
            messages.append(("lab.critical_value.patient", row["patient_id"],
                             {"patient_id": row["patient_id"], "alert_id": alert_id}))
    enqueue_many(session.connection(), messages, now)


def flag_inactivity(session: Session, now: datetime) -> dict[str, int]:
    """Active patients with self-monitored readings on at least `inactivity_min_days` of the
    `inactivity_lookback_days` local days before the gap, and none in the
    `inactivity_gap_days` full local days before today (nor today), get one inactivity alert and one
    `care.inactivity` {patient_id, alert_id} message. The alert's source is the patient's
    last reading day, so re-running changes nothing until a new reading and a new gap.
    One grouped query finds them; only those found are visited."""
    settings = get_settings()
    today = local_date(now, settings.tz)
    gap_start = today - timedelta(days=settings.inactivity_gap_days)
    since = gap_start - timedelta(days=settings.inactivity_lookback_days)
    last_day = func.max(_readings.c.local_day)
    stmt = (select(_readings.c.patient_id, last_day)
            .join(_events, and_(_events.c.id == _readings.c.event_id, _events.c.status == "accepted"))
            .join(_patients, and_(_patients.c.id == _readings.c.patient_id, _patients.c.status == "active"))
            .where(_readings.c.self_monitored.is_(True), _readings.c.local_day >= since)
            .group_by(_readings.c.patient_id)
            .having(last_day < gap_start,
                    func.count(func.distinct(_readings.c.local_day)) >= settings.inactivity_min_days))
    found = session.connection().execute(stmt).all()
    messages: list[tuple[str, str | None, dict[str, Any]]] = []
    for patient_id, last in found:
        day = last if isinstance(last, str) else last.isoformat()
        alert_id = care.raise_alert(session, patient_id=patient_id, kind=AlertKind.inactivity,
                                    source_ref=f"inactivity:{patient_id}:{day}", now=now,
                                    details={"last_reading_day": day})
        if alert_id is not None:
            messages.append(("care.inactivity", patient_id, {"patient_id": patient_id, "alert_id": alert_id}))
    enqueue_many(session.connection(), messages, now)
    return {"inactive": len(messages)}
