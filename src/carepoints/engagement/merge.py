"""Engagement's part in merging a duplicate record (enrolment.merge): the duplicate's health
readings, conditions, medication and follow-up plans (with their doses and steps),
questionnaire answers, education, lectures, reviews, profile items, posts, photos, its invite
code and care alerts move to the survivor. A row that would break one of the survivor's
unique keys (the same condition code, the same lecture, the same monthly survey, an invite
code of their own) stays with the duplicate and is counted as kept; doses and steps follow
their plan."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from carepoints.audit.service import Actor
from carepoints.engagement.care.models import CareAlert
from carepoints.engagement.community.models import CommunityPost, InviteCode, Photo
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
from carepoints.enrolment import merge
from carepoints.kit.db import table

_ROWS: tuple[tuple[str, type], ...] = (
    ("measurements", HealthMeasurement), ("conditions", PatientCondition), ("medication_plans", MedicationPlan),
    ("followup_plans", FollowupPlan), ("questionnaire_responses", QuestionnaireResponse),
    ("quiz_attempts", QuizAttempt), ("education_completions", EducationCompletion),
    ("lecture_registrations", LectureRegistration), ("lecture_attendances", LectureAttendance),
    ("reviews", Review), ("profile_items", ProfileItem), ("posts", CommunityPost), ("photos", Photo),
    ("invite_code", InviteCode), ("care_alerts", CareAlert),
)
_CHILDREN: tuple[tuple[type, type], ...] = ((MedicationDose, MedicationPlan), (FollowupStep, FollowupPlan))


def move(session: Session, survivor_id: str, duplicate_id: str, _actor: Actor, now: datetime) -> dict[str, int]:
    out: dict[str, int] = {}
    kept = 0
    for name, model in _ROWS:
        out[name], left = merge.move_rows(session, model, survivor_id, duplicate_id)
        kept += left
    conn = session.connection()
    for child, parent in _CHILDREN:  # a dose or step belongs to whoever holds its plan
        c, p = table(child), table(parent)
        conn.execute(update(c).where(c.c.patient_id == duplicate_id, c.c.plan_id.in_(
            select(p.c.id).where(p.c.patient_id == survivor_id))).values(patient_id=survivor_id))
    out["engagement_kept"] = kept
    return out


def connect() -> None:
    merge.on_merge("engagement", move)
