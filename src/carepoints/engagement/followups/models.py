"""Questionnaires (versioned templates), follow-up plans with their steps (day 3/7/30
after a discharge or surgery) and the responses to both steps and monthly surveys.
The "at most one" rules are unique constraints: one response per step, one survey
response per patient and period, one plan per patient, trigger and encounter."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from carepoints.kit.db import Base
from carepoints.kit.types import UTCDateTime


class Questionnaire(Base):
    """One version of a template; a change of its questions is a new row (version + 1)."""

    __tablename__ = "questionnaires"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    code: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[dict[str, Any]] = mapped_column(JSON)  # {zh, en?}
    purpose: Mapped[str] = mapped_column(String(16))  # followup | rehab | satisfaction | other
    questions: Mapped[list[Any]] = mapped_column(JSON)
    digest: Mapped[str] = mapped_column(String(64))  # sha256 of the canonical content
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("code", "version"),)


class FollowupPlan(Base):
    """Follow-ups after one discharge or surgery. `(patient_id, trigger, encounter_id)`
    is unique so that the HIS may resend; plans without an encounter id never collide."""

    __tablename__ = "followup_plans"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    trigger: Mapped[str] = mapped_column(String(16))  # discharge | surgery
    occurred_on: Mapped[date] = mapped_column(Date)  # local calendar day
    questionnaire_code: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # routine | rehab
    channel: Mapped[str] = mapped_column(String(16))  # phone | sms | app
    encounter_id: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16))  # active | cancelled
    cancel_reason: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("patient_id", "trigger", "encounter_id"),
        Index("ix_followup_plans_patient", "patient_id", "created_at"),
    )


class FollowupStep(Base):
    """One questionnaire of a plan, due on `due_on` (local) until the day before
    `overdue_on`. `due_notified_at` / `overdue_flagged_at` are set once by the jobs."""

    __tablename__ = "followup_steps"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    plan_id: Mapped[str] = mapped_column(ForeignKey("followup_plans.id"))
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    offset_days: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer)  # 1, 2, 3 … in offset order
    channel: Mapped[str] = mapped_column(String(16))
    due_on: Mapped[date] = mapped_column(Date)
    overdue_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))  # pending | completed | cancelled
    response_id: Mapped[str | None] = mapped_column(String(36))
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    due_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    overdue_flagged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("plan_id", "offset_days"),
        Index("ix_followup_steps_queue", "status", "due_on"),
        Index("ix_followup_steps_overdue", "status", "overdue_on"),
    )


class QuestionnaireResponse(Base):
    """Answers to one template version: for a plan step (`step_id`, unique) or for a
    monthly survey (`survey_period`, unique per patient)."""

    __tablename__ = "questionnaire_responses"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    questionnaire_id: Mapped[str] = mapped_column(ForeignKey("questionnaires.id"))
    step_id: Mapped[str | None] = mapped_column(ForeignKey("followup_steps.id"))
    survey_period: Mapped[str | None] = mapped_column(String(7))  # YYYY-MM
    answers: Mapped[dict[str, Any]] = mapped_column(JSON)
    answers_digest: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    recorded_by: Mapped[str | None] = mapped_column(String(36))  # the staff user of a phone follow-up
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str] = mapped_column(String(36))
    idempotency_key: Mapped[str | None] = mapped_column(String(100))
    abnormal: Mapped[list[Any]] = mapped_column(JSON)  # question ids whose answers matched an alert rule
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("step_id"),
        UniqueConstraint("patient_id", "survey_period"),
        Index("ix_questionnaire_responses_patient", "patient_id", "created_at"),
    )
