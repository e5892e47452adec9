"""Satisfaction loop tables.

- `satisfaction_scores`: one score (1–5) per visit review and per monthly survey response, with the
  department it is attributed to: the department averages, trends and drop alerts read it. Written
  by the `detect-improvements` job, exactly once per source (unique kind + source id).
- `improvement_items`: one per low survey response, negative review or complaint (unique kind +
  source id, so re-runs and concurrent job runs create each once); status open → assigned → closed
  by guarded UPDATEs; a closed item has its resolution (CHECK).
- `improvement_notes`: what staff did (actions, 整改措施) on an item, append-only.
- `complaints`: a patient's complaint (投诉) about a visit or a department; the text is the
  patient's words: stored here, never logged or audited. Idempotent on (patient, idempotency key).
- `satisfaction_alerts`: a department whose average fell by the set amount, once per department
  and window (unique department + window end).
- `satisfaction_scan_cursors`: how far the job has read each source table (ids are UUIDv7)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from carepoints.kit.db import Base
from carepoints.kit.types import UTCDateTime

ITEM_KINDS = ("survey", "review", "complaint")
ITEM_STATUSES = ("open", "assigned", "closed")
OPEN_STATUSES = ("open", "assigned")


class SatisfactionScore(Base):
    __tablename__ = "satisfaction_scores"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    source_kind: Mapped[str] = mapped_column(String(16))  # review | survey
    source_id: Mapped[str] = mapped_column(String(36))
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    department_id: Mapped[str | None] = mapped_column(ForeignKey("departments.id"))
    score: Mapped[float] = mapped_column(Float)  # 1 (very dissatisfied) … 5 (very satisfied)
    low: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(UTCDateTime())  # when the patient answered
    day: Mapped[date] = mapped_column(Date)  # its local day

    __table_args__ = (
        UniqueConstraint("source_kind", "source_id"),
        CheckConstraint("source_kind IN ('review', 'survey')", name="kind_known"),
        CheckConstraint("score >= 1 AND score <= 5", name="score_range"),
        Index("ix_satisfaction_scores_department_day", "department_id", "day"),
        Index("ix_satisfaction_scores_day", "day"),
    )


class ImprovementItem(Base):
    __tablename__ = "improvement_items"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # survey | review | complaint
    source_id: Mapped[str] = mapped_column(String(36))
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    department_id: Mapped[str | None] = mapped_column(ForeignKey("departments.id"))  # None: not attributed
    appointment_id: Mapped[str | None] = mapped_column(String(36))
    score: Mapped[float | None] = mapped_column(Float)
    reasons: Mapped[list[Any]] = mapped_column(JSON)  # codes only: question ids, "rating", a category
    status: Mapped[str] = mapped_column(String(16))
    assignee_id: Mapped[str | None] = mapped_column(ForeignKey("staff_users.id"))
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolution: Mapped[str | None] = mapped_column(Text)
    closed_by: Mapped[str | None] = mapped_column(String(36))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("kind", "source_id"),
        CheckConstraint("kind IN ('survey', 'review', 'complaint')", name="kind_known"),
        CheckConstraint("status IN ('open', 'assigned', 'closed')", name="status_known"),
        CheckConstraint("status <> 'assigned' OR assignee_id IS NOT NULL", name="assigned_has_assignee"),
        CheckConstraint("status <> 'closed' OR (resolution IS NOT NULL AND closed_at IS NOT NULL)",
                        name="closed_has_resolution"),
        Index("ix_improvement_items_queue", "status", "department_id", "created_at"),
        Index("ix_improvement_items_patient", "patient_id", "created_at"),
        Index("ix_improvement_items_closed", "closed_at"),
        Index("ix_improvement_items_created", "created_at"),
    )


class ImprovementNote(Base):
    __tablename__ = "improvement_notes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    item_id: Mapped[str] = mapped_column(ForeignKey("improvement_items.id"))
    author_kind: Mapped[str] = mapped_column(String(16))
    author_id: Mapped[str] = mapped_column(String(36))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_improvement_notes_item", "item_id", "created_at"),)


class Complaint(Base):
    __tablename__ = "complaints"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    appointment_id: Mapped[str | None] = mapped_column(ForeignKey("appointments.id"))
    department_id: Mapped[str] = mapped_column(ForeignKey("departments.id"))
    category: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(16))  # patient | staff | his
    filed_by_kind: Mapped[str] = mapped_column(String(16))
    filed_by_id: Mapped[str] = mapped_column(String(36))
    idempotency_key: Mapped[str | None] = mapped_column(String(100))
    request_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("patient_id", "idempotency_key"),
        Index("ix_complaints_patient", "patient_id", "created_at"),
        Index("ix_complaints_created", "created_at"),
    )


class SatisfactionAlert(Base):
    __tablename__ = "satisfaction_alerts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    department_id: Mapped[str] = mapped_column(ForeignKey("departments.id"))
    window_days: Mapped[int] = mapped_column(Integer)
    window_start: Mapped[date] = mapped_column(Date)
    window_end: Mapped[date] = mapped_column(Date)  # inclusive, local
    current_avg: Mapped[float] = mapped_column(Float)
    previous_avg: Mapped[float] = mapped_column(Float)
    current_n: Mapped[int] = mapped_column(Integer)
    previous_n: Mapped[int] = mapped_column(Integer)
    drop: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16))  # open | acknowledged
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime())
    acknowledged_by: Mapped[str | None] = mapped_column(String(36))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("department_id", "window_end"),
        CheckConstraint("status IN ('open', 'acknowledged')", name="status_known"),
        Index("ix_satisfaction_alerts_status", "status", "raised_at"),
    )


class SatisfactionScanCursor(Base):
    __tablename__ = "satisfaction_scan_cursors"

    name: Mapped[str] = mapped_column(String(16), primary_key=True)  # reviews | surveys
    last_id: Mapped[str] = mapped_column(String(36))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
