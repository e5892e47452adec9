"""Engagement's part in the PIPL rights (enrolment.privacy): the patient's health readings,
conditions, medication plans and doses, follow-ups and their answers, care alerts,
learning, reviews, posts and photo check-ins in their data download (photo bytes are left
out: the metadata names each photo); at erasure their medication reminders and pending
follow-ups stop."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import LargeBinary, Table, delete, select, update
from sqlalchemy.orm import Session

from carepoints.audit.service import Actor
from carepoints.engagement.care.models import CareAlert
from carepoints.engagement.community.models import CommunityPost, Photo
from carepoints.engagement.followups.models import FollowupPlan, FollowupStep, QuestionnaireResponse
from carepoints.engagement.health.models import HealthMeasurement, MedicationDose, MedicationPlan, PatientCondition
from carepoints.engagement.learning.models import (
    EducationCompletion,
    LectureAttendance,
    LectureRegistration,
    ProfileItem,
    QuizAttempt,
    Review,
)
from carepoints.enrolment import privacy
from carepoints.kit import retention
from carepoints.kit.db import Base, table

SECTIONS: dict[str, type[Base]] = {
    "measurements": HealthMeasurement, "conditions": PatientCondition, "medication_plans": MedicationPlan,
    "medication_doses": MedicationDose, "followup_plans": FollowupPlan, "followup_steps": FollowupStep,
    "followup_responses": QuestionnaireResponse, "care_alerts": CareAlert, "quiz_attempts": QuizAttempt,
    "education_completions": EducationCompletion, "lecture_registrations": LectureRegistration,
    "lecture_attendance": LectureAttendance, "reviews": Review, "profile_items": ProfileItem,
    "community_posts": CommunityPost, "photos": Photo,
}


def _section(tbl: Table) -> Callable[[Session, str], list[dict[str, Any]]]:
    columns = [c for c in tbl.c if not isinstance(c.type, LargeBinary)]
    order = [tbl.c[n] for n in ("created_at", "taken_at", "joined_at") if n in tbl.c][:1] + list(tbl.primary_key)

    def rows(session: Session, patient_id: str) -> list[dict[str, Any]]:
        result = session.connection().execute(select(*columns).where(tbl.c.patient_id == patient_id)
                                              .order_by(*order)).mappings()
        return [dict(r) for r in result]

    return rows


def stop_plans(session: Session, patient_id: str, now: datetime) -> dict[str, int]:
    """Stop the patient's medication plans and cancel their pending follow-ups (no more
    reminders): at erasure, and when an account closes (engagement.closure)."""
    conn = session.connection()
    plans, fplans, steps = table(MedicationPlan), table(FollowupPlan), table(FollowupStep)
    stopped = conn.execute(update(plans).where(plans.c.patient_id == patient_id, plans.c.status == "active")
                           .values(status="stopped", stopped_at=now)).rowcount
    cancelled = conn.execute(update(steps).where(steps.c.patient_id == patient_id, steps.c.status == "pending")
                             .values(status="cancelled")).rowcount
    conn.execute(update(fplans).where(fplans.c.patient_id == patient_id, fplans.c.status == "active")
                 .values(status="cancelled"))
    return {"medication_plans_stopped": int(stopped or 0), "followup_steps_cancelled": int(cancelled or 0)}


def erase(session: Session, patient_id: str, _actor: Actor, now: datetime) -> dict[str, int]:
    return stop_plans(session, patient_id, now)


MEASUREMENTS_KIND = "health_measurements"
MEASUREMENTS_DAYS = 3 * 365  # with the health values inside their events (events.retention)


def purge_measurements(session: Session, cutoff: datetime) -> int:
    """Retention: one batch of readings taken before `cutoff`."""
    conn = session.connection()
    m = table(HealthMeasurement)
    ids = [r[0] for r in conn.execute(select(m.c.id).where(m.c.taken_at < cutoff).order_by(m.c.taken_at, m.c.id)
                                      .limit(retention.BATCH))]
    if not ids:
        return 0
    return int(conn.execute(delete(m).where(m.c.id.in_(ids))).rowcount or 0)


def connect() -> None:
    retention.register(MEASUREMENTS_KIND, MEASUREMENTS_DAYS, purge_measurements,
                       description="health readings (blood pressure, glucose)")
    for name, model in SECTIONS.items():
        privacy.export_section(name, _section(table(model)))
    privacy.on_erasure("engagement", erase)
