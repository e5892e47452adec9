"""Online consultation tables (在线咨询): the staff who answer (advisers, by department and
profession), threads, their messages and images, and one rating per closed thread.

The database guards every "at most one": a thread has one assignee (claimed with a guarded
UPDATE ... WHERE assignee IS NULL), one closing (UPDATE ... WHERE state <> 'closed'), one rating
(the rating's primary key is the thread), one message per seq and per idempotency key. Message
text, subjects and images are health data: stored here, never logged or put in audit rows.
Images live in the database, so every app process serves them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from carepoints.kit.db import Base
from carepoints.kit.types import UTCDateTime


class ConsultAdviser(Base):
    """A staff user who answers consultations for a department as a clinician, nurse or
    pharmacist (the profession the patient sees; the staff role decides the permissions)."""

    __tablename__ = "consult_advisers"

    staff_user_id: Mapped[str] = mapped_column(ForeignKey("staff_users.id"), primary_key=True)
    department_id: Mapped[str] = mapped_column(ForeignKey("departments.id"), index=True)
    profession: Mapped[str] = mapped_column(String(16))  # clinician | nurse | pharmacist
    display_name: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(64), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        CheckConstraint("profession IN ('clinician', 'nurse', 'pharmacist')", name="profession_known"),
    )


class ConsultThread(Base):
    """One consultation: whom it is for (a named adviser, or a department's advisers of an
    optional profession), its state (open → answered / waiting → closed), when the patient
    accepted the disclaimer, when the hospital first answered and how long that took."""

    __tablename__ = "consult_threads"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    opened_by: Mapped[str] = mapped_column(String(36))  # the patient, or their proxy (代办)
    department_id: Mapped[str] = mapped_column(ForeignKey("departments.id"))
    target: Mapped[str] = mapped_column(String(16))  # adviser | department
    profession: Mapped[str | None] = mapped_column(String(16))  # asked for (department routing); None = any
    requested_staff_id: Mapped[str | None] = mapped_column(String(36))  # the named adviser
    assignee_staff_id: Mapped[str | None] = mapped_column(String(36))  # who answers (named, or claimed)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    subject: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(16))  # open | answered | waiting | closed
    disclaimer_version: Mapped[str] = mapped_column(String(32))
    disclaimer_accepted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    idempotency_key: Mapped[str] = mapped_column(String(64))
    message_count: Mapped[int] = mapped_column(Integer, default=0)
    image_count: Mapped[int] = mapped_column(Integer, default=0)
    # since when the patient waits for the hospital (None while the patient's turn)
    waiting_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_message_at: Mapped[datetime] = mapped_column(UTCDateTime())
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    first_response_seconds: Mapped[int | None] = mapped_column(Integer)  # for analytics
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_by: Mapped[str | None] = mapped_column(String(16))  # patient | staff | system
    close_reason: Mapped[str | None] = mapped_column(String(16))  # patient | staff | inactivity

    __table_args__ = (
        CheckConstraint("state IN ('open', 'answered', 'waiting', 'closed')", name="state_known"),
        CheckConstraint("target IN ('adviser', 'department')", name="target_known"),
        CheckConstraint("message_count >= 0 AND image_count >= 0", name="counts_nonneg"),
        UniqueConstraint("patient_id", "idempotency_key"),
        Index("ix_consult_threads_patient", "patient_id", "created_at"),
        Index("ix_consult_threads_queue", "state", "department_id", "waiting_since"),
        Index("ix_consult_threads_assignee", "assignee_staff_id", "state"),
        Index("ix_consult_threads_closed", "closed_at"),
    )


class ConsultImage(Base):
    """An image of a message: decoded by content (JPEG / PNG / WebP), re-encoded without metadata."""

    __tablename__ = "consult_images"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    thread_id: Mapped[str] = mapped_column(ForeignKey("consult_threads.id", ondelete="CASCADE"), index=True)
    media_type: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ConsultMessage(Base):
    """A message: text and / or one image, by the patient (or their proxy), a staff member or
    the system (the closing note). `seq` numbers a thread's messages from 1 (polling asks for
    the ones after the last it has)."""

    __tablename__ = "consult_messages"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    thread_id: Mapped[str] = mapped_column(ForeignKey("consult_threads.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    author: Mapped[str] = mapped_column(String(16))  # patient | staff | system
    author_id: Mapped[str | None] = mapped_column(String(36))  # patient id (or proxy's) / staff user id
    body: Mapped[str | None] = mapped_column(Text)
    image_id: Mapped[str | None] = mapped_column(ForeignKey("consult_images.id", ondelete="CASCADE"))
    idempotency_key: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        CheckConstraint("author IN ('patient', 'staff', 'system')", name="author_known"),
        UniqueConstraint("thread_id", "seq"),
        UniqueConstraint("thread_id", "idempotency_key"),
    )


class ConsultRating(Base):
    """The patient's rating of a closed thread: the primary key makes it once per thread."""

    __tablename__ = "consult_ratings"

    thread_id: Mapped[str] = mapped_column(ForeignKey("consult_threads.id", ondelete="CASCADE"), primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(36))
    stars: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (CheckConstraint("stars BETWEEN 1 AND 5", name="stars_range"),)
