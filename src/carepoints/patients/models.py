from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Boolean, CheckConstraint, Date, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from carepoints.kit.db import Base
from carepoints.kit.types import UTCDateTime


class Patient(Base):
    """A person. PII lives in its own columns (name, phone, id_number) and never in logs."""

    __tablename__ = "patients"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str] = mapped_column(String(32))
    id_number: Mapped[str | None] = mapped_column(String(32))
    birth_date: Mapped[date | None] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(String(8), default="unknown")
    status: Mapped[str] = mapped_column(String(16), default="active")
    tier: Mapped[str] = mapped_column(String(16), default="standard")
    elderly_mode: Mapped[bool] = mapped_column(Boolean, default=False)
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_patients_phone", "phone"),)


class ExternalId(Base):
    __tablename__ = "patient_external_ids"

    system: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[str] = mapped_column(String(200), primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)


class Consent(Base):
    __tablename__ = "consents"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(32))
    version: Mapped[str] = mapped_column(String(32))
    accepted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    source: Mapped[str] = mapped_column(String(16), default="patient")
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Household(Base):
    """A family that pools its points (家庭积分); its wallet lives in the ledger."""

    __tablename__ = "households"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    head_patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class HouseholdMember(Base):
    """A membership; a patient is in at most one household at a time (partial unique
    index over the active rows), and a household has one active head."""

    __tablename__ = "household_members"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    household_id: Mapped[str] = mapped_column(ForeignKey("households.id"))
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    role: Mapped[str] = mapped_column(String(8))  # head | member
    can_redeem: Mapped[bool] = mapped_column(Boolean, default=False)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime())
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        CheckConstraint("role IN ('head', 'member')", name="role"),
        Index("ix_household_members_household", "household_id", "left_at"),
        Index("uq_household_members_active", "patient_id", unique=True,
              sqlite_where=text("left_at IS NULL"), postgresql_where=text("left_at IS NULL")),
        Index("uq_household_members_head", "household_id", unique=True,
              sqlite_where=text("left_at IS NULL AND role = 'head'"),
              postgresql_where=text("left_at IS NULL AND role = 'head'")),
    )


class ProxyAuthorisation(Base):
    """A caregiver (another patient, a guardian, or the service window) allowed to act
    for a patient within `scopes` (view, book, redeem) until revoked."""

    __tablename__ = "proxy_authorisations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    proxy_kind: Mapped[str] = mapped_column(String(16))  # patient | guardian | service_window
    proxy_patient_id: Mapped[str | None] = mapped_column(ForeignKey("patients.id"))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        CheckConstraint("(proxy_kind = 'service_window' AND proxy_patient_id IS NULL) OR "
                        "(proxy_kind IN ('patient', 'guardian') AND proxy_patient_id IS NOT NULL "
                        "AND proxy_patient_id <> patient_id)", name="proxy"),
        Index("ix_proxy_authorisations_patient", "patient_id", "created_at"),
        Index("uq_proxy_authorisations_active", "patient_id", "proxy_patient_id", unique=True,
              sqlite_where=text("revoked_at IS NULL AND proxy_patient_id IS NOT NULL"),
              postgresql_where=text("revoked_at IS NULL AND proxy_patient_id IS NOT NULL")),
        Index("uq_proxy_authorisations_window", "patient_id", unique=True,
              sqlite_where=text("revoked_at IS NULL AND proxy_kind = 'service_window'"),
              postgresql_where=text("revoked_at IS NULL AND proxy_kind = 'service_window'")),
    )
