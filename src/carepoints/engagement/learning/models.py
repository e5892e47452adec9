"""Learning: education content with quizzes, health lectures (健康讲座), visit reviews
and health-profile items (健康档案). Each behaviour earns through the spine; the
"at most once" rules are unique constraints here and source keys there."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from carepoints.kit.db import Base
from carepoints.kit.types import UTCDateTime


class EducationItem(Base):
    """A video or an article with its quiz (`quiz` holds the correct answers: never
    answered to patients)."""

    __tablename__ = "education_items"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # video | article
    title: Mapped[dict[str, Any]] = mapped_column(JSON)  # {zh, en?}
    body_url: Mapped[str | None] = mapped_column(String(2000))
    body_text: Mapped[str | None] = mapped_column(Text)
    duration_seconds: Mapped[int] = mapped_column(Integer)
    quiz: Mapped[dict[str, Any]] = mapped_column(JSON)  # {pass_mark, questions: [{id, text, choices, correct, multi}]}
    status: Mapped[str] = mapped_column(String(16))  # draft | published | retired
    version: Mapped[int] = mapped_column(Integer)  # +1 on every change of the quiz
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_education_items_status", "status", "published_at"),)


class EducationLabel(Base):
    """A tag or a targeted condition code of an item (a row each, so that both databases
    filter on them the same way)."""

    __tablename__ = "education_labels"

    item_id: Mapped[str] = mapped_column(ForeignKey("education_items.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)  # tag | condition
    value: Mapped[str] = mapped_column(String(64), primary_key=True)

    __table_args__ = (Index("ix_education_labels_value", "kind", "value"),)


class QuizAttempt(Base):
    """One scored submission. `(patient_id, idempotency_key)` is unique: a resubmission
    with the same key answers the stored attempt and outcome."""

    __tablename__ = "quiz_attempts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    item_id: Mapped[str] = mapped_column(ForeignKey("education_items.id"))
    item_version: Mapped[int] = mapped_column(Integer)
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    request_digest: Mapped[str] = mapped_column(String(64))
    answers: Mapped[list[Any]] = mapped_column(JSON)
    correct_count: Mapped[int] = mapped_column(Integer)
    question_count: Mapped[int] = mapped_column(Integer)
    score: Mapped[int] = mapped_column(Integer)  # percent correct, rounded down
    pass_mark: Mapped[int] = mapped_column(Integer)  # percent
    passed: Mapped[bool] = mapped_column(Boolean)
    watched_seconds: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[dict[str, Any]] = mapped_column(JSON)  # the spine's answer (or ours when nothing was emitted)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("patient_id", "idempotency_key"),
        Index("ix_quiz_attempts_patient_item", "patient_id", "item_id", "created_at"),
    )


class EducationCompletion(Base):
    """The first passed attempt of a patient on an item: the only one that earns."""

    __tablename__ = "education_completions"

    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), primary_key=True)
    item_id: Mapped[str] = mapped_column(ForeignKey("education_items.id"), primary_key=True)
    attempt_id: Mapped[str] = mapped_column(ForeignKey("quiz_attempts.id"))
    event_id: Mapped[str | None] = mapped_column(String(36))
    completed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Lecture(Base):
    """A health lecture with `seats`; `taken` counts live registrations and walk-ins, and
    only a guarded UPDATE (`taken < seats`) ever raises it; the CHECK backs it."""

    __tablename__ = "lectures"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    title: Mapped[dict[str, Any]] = mapped_column(JSON)  # {zh, en?}
    place: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    seats: Mapped[int] = mapped_column(Integer)
    taken: Mapped[int] = mapped_column(Integer)
    institution_id: Mapped[str | None] = mapped_column(ForeignKey("institutions.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        CheckConstraint("taken >= 0 AND taken <= seats", name="seats_taken"),
        Index("ix_lectures_starts_at", "starts_at"),
    )


class LectureRegistration(Base):
    """A patient's seat at a lecture: one row per (lecture, patient); a cancelled one
    comes back to life when the patient registers again."""

    __tablename__ = "lecture_registrations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    lecture_id: Mapped[str] = mapped_column(ForeignKey("lectures.id"))
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    status: Mapped[str] = mapped_column(String(16))  # registered | cancelled | attended
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("lecture_id", "patient_id"),)


class LectureAttendance(Base):
    """A sign-in at the door: once per (lecture, patient)."""

    __tablename__ = "lecture_attendances"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    lecture_id: Mapped[str] = mapped_column(ForeignKey("lectures.id"))
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    walk_in: Mapped[bool] = mapped_column(Boolean)
    signed_in_at: Mapped[datetime] = mapped_column(UTCDateTime())
    outcome: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("lecture_id", "patient_id"),)


class Review(Base):
    """One review per appointment. `earned` is false when the content gate held it back
    (`repeat_of` names the patient's own earlier review it nearly repeats)."""

    __tablename__ = "reviews"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    appointment_id: Mapped[str] = mapped_column(ForeignKey("appointments.id"), unique=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    rating: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    repeat_of: Mapped[str | None] = mapped_column(String(36))
    similarity: Mapped[int | None] = mapped_column(Integer)  # per mille, against `repeat_of`
    outcome: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        CheckConstraint("rating >= 1 AND rating <= 5", name="rating_range"),
        Index("ix_reviews_patient", "patient_id", "created_at"),
    )


class ProfileItem(Base):
    """One health-record item of a patient. `value` is health data / PII: it never leaves
    through logs, audit details or the outbox. `completed_at` is set once, the first time
    the item has a value, and is what earns."""

    __tablename__ = "profile_items"

    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), primary_key=True)
    item: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON, nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
