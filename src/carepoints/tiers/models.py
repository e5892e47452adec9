"""A patient's tier lives on `patients.tier` (the rules engine reads it with the
patient); here are its history and the assigned health advisors."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from carepoints.kit.db import Base
from carepoints.kit.types import UTCDateTime


class TierChange(Base):
    """One change of a patient's tier: an upgrade on earning, or the nightly recompute."""

    __tablename__ = "tier_changes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    from_tier: Mapped[str] = mapped_column(String(16))
    to_tier: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(16))  # upgrade | recompute
    earned: Mapped[int] = mapped_column(Integer)  # points earned in the 12 months before `at`
    at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_tier_changes_patient", "patient_id", "at"),)


class PatientAdvisor(Base):
    """The staff member assigned as a patient's health advisor (专属健康顾问)."""

    __tablename__ = "patient_advisors"

    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), primary_key=True)
    staff_user_id: Mapped[str] = mapped_column(ForeignKey("staff_users.id"), index=True)
    assigned_by: Mapped[str] = mapped_column(String(36))  # the principal (staff user or API key) who assigned
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime())
