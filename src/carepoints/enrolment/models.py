"""PIPL rights bookkeeping: one row per erased patient (the request and what it did)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from carepoints.kit.db import Base
from carepoints.kit.types import UTCDateTime


class Erasure(Base):
    """A patient's erasure (删除权): the primary key makes it happen at most once; a repeated
    request answers the stored outcome (counts and codes only, never PII)."""

    __tablename__ = "patient_erasures"

    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), primary_key=True)
    reason: Mapped[str | None] = mapped_column(String(64))  # a reason code, never free text
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str] = mapped_column(String(36))
    outcome: Mapped[dict[str, Any]] = mapped_column(JSON)
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime())


# --- merge ---

class PatientMerge(Base):
    """A duplicate record merged into its survivor (enrolment.merge). The unique duplicate id
    makes a record merge at most once; a repeated request answers the stored result (ids and
    counts only). The note is staff's own text and never leaves this row (not audited)."""

    __tablename__ = "patient_merges"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    duplicate_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), unique=True)
    survivor_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)
    reason_code: Mapped[str] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(String(500))
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str] = mapped_column(String(36))
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    merged_at: Mapped[datetime] = mapped_column(UTCDateTime())


# --- identity ---

class PatientVerification(Base):
    """One real-name verification (实名认证) step of a patient, newest last: staff saw an ID
    document at the desk (its kind only, never its number) or an external check answered.
    The patient's current status is their newest row (none: unverified)."""

    __tablename__ = "patient_verifications"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)
    method: Mapped[str] = mapped_column(String(16))  # desk_document | external
    document_kind: Mapped[str | None] = mapped_column(String(24))
    outcome: Mapped[str] = mapped_column(String(16))  # verified | mismatch
    checker: Mapped[str | None] = mapped_column(String(32))  # the external adapter that answered
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str] = mapped_column(String(36))
    verified_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        CheckConstraint("method IN ('desk_document', 'external')", name="method"),
        CheckConstraint("outcome IN ('verified', 'mismatch')", name="outcome"),
    )


class DuplicateCandidate(Base):
    """Two patient records that may be one person, for staff review (enrolment.identity). The
    pair is stored ordered (lower id first) and at most once, whatever found it first."""

    __tablename__ = "duplicate_candidates"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    patient_a: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    patient_b: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)
    reason: Mapped[str] = mapped_column(String(24))  # national_id | name_birth_phone
    status: Mapped[str] = mapped_column(String(16))  # open | dismissed | merged
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reviewed_by: Mapped[str | None] = mapped_column(String(36))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    note: Mapped[str | None] = mapped_column(String(500))  # staff's own words: never audited

    __table_args__ = (
        UniqueConstraint("patient_a", "patient_b"),
        CheckConstraint("patient_a < patient_b", name="ordered"),
        CheckConstraint("reason IN ('national_id', 'name_birth_phone')", name="reason"),
        CheckConstraint("status IN ('open', 'dismissed', 'merged')", name="status"),
        Index("ix_duplicate_candidates_review", "status", "id"),
    )


class PatientStatusChange(Base):
    """A patient's status changed (deceased, closed, reopened) through enrolment.closure, with
    the reason code and what it did (counts only). The note is staff's own text (not audited)."""

    __tablename__ = "patient_status_changes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)
    status_from: Mapped[str] = mapped_column(String(16))
    status_to: Mapped[str] = mapped_column(String(16))
    reason_code: Mapped[str] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(String(500))
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str] = mapped_column(String(36))
    outcome: Mapped[dict[str, Any]] = mapped_column(JSON)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
