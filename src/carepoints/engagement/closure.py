"""Engagement's part in deceased and closed accounts (enrolment.closure): medication plans
stop (no more reminders), pending follow-ups are cancelled, and the open care alerts that only
ask the team to reach out (inactivity, overdue follow-ups) are resolved `no_action`; alerts
about readings and answers stay for the care team. New alerts are not raised for a patient
who is not active (care.service.raise_alert)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from carepoints.audit.service import Actor
from carepoints.engagement.care.models import CareAlert
from carepoints.engagement.care.schemas import AlertKind, AlertResolution, AlertStatus
from carepoints.engagement.privacy import stop_plans
from carepoints.enrolment import closure
from carepoints.kit.db import table

OUTREACH = (AlertKind.inactivity.value, AlertKind.overdue_followup.value)


def close(session: Session, patient_id: str, _actor: Actor, now: datetime) -> dict[str, int]:
    stopped = stop_plans(session, patient_id, now)
    conn = session.connection()
    alerts = table(CareAlert)
    resolved = conn.execute(update(alerts).where(
        alerts.c.patient_id == patient_id, alerts.c.kind.in_(OUTREACH),
        alerts.c.status.in_((AlertStatus.open.value, AlertStatus.acknowledged.value)))
        .values(status=AlertStatus.resolved.value, resolved_at=now, updated_at=now,
                resolution=AlertResolution.no_action.value)).rowcount
    return {**stopped, "care_alerts_resolved": int(resolved or 0)}


def connect() -> None:
    closure.on_closure("engagement", close)
