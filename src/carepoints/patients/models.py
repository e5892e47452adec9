from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Boolean, CheckConstraint, Date, ForeignKey, Index, LargeBinary, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from carepoints.kit.db import Base
from carepoints.kit.types import UTCDateTime


class Patient(Base):
    """A person. Name, phone, national id and address are stored encrypted (patients/crypto.py:
    `*_enc`, all under the key tag `pii_kid`), phone and national id also as blind indexes for
    lookup; birth date and sex stay plain (ingest and age rules read them). An erased patient
    (crypto-shredded) has NULL in every PII column."""

    __tablename__ = "patients"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name_enc: Mapped[str | None] = mapped_column(Text)
    phone_enc: Mapped[str | None] = mapped_column(Text)
    id_number_enc: Mapped[str | None] = mapped_column(Text)
    address_enc: Mapped[str | None] = mapped_column(Text)
    phone_index: Mapped[str | None] = mapped_column(String(64), index=True)
    id_number_index: Mapped[str | None] = mapped_column(String(64), index=True)
    # "alg:kid" of every *_enc value of the row (NULL when erased): `keys rotate` finds old rows by it
    pii_kid: Mapped[str | None] = mapped_column(String(24), index=True)
    birth_date: Mapped[date | None] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(String(8), default="unknown")
    status: Mapped[str] = mapped_column(String(16), default="active")
    tier: Mapped[str] = mapped_column(String(16), default="standard")
    elderly_mode: Mapped[bool] = mapped_column(Boolean, default=False)
    language: Mapped[str | None] = mapped_column(String(8))  # page language (zh / en); None = Chinese
    # (ops) a reviewer froze earning (fraud review): ingest awards nothing positive while set
    earning_frozen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # (ops) status `merged`: the record this one was merged into (enrolment.merge)
    merged_into: Mapped[str | None] = mapped_column(ForeignKey("patients.id"))
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PatientKey(Base):
    """A patient's own key material (HKDF salt of their PII keys). Deleting the row is the
    crypto-shredding of an erasure: the master key alone no longer reads their values."""

    __tablename__ = "patient_keys"

    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), primary_key=True)
    salt: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


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
    # (trust.privacy) who consented for a child (source guardian), why a grant ended
    guardian_relation: Mapped[str | None] = mapped_column(String(16))
    guardian_patient_id: Mapped[str | None] = mapped_column(ForeignKey("patients.id"))
    guardian_name_enc: Mapped[str | None] = mapped_column(String(512))  # encrypted under the child's key
    ended_by: Mapped[str | None] = mapped_column(String(16))  # withdrawn | superseded | erasure

    __table_args__ = (
        CheckConstraint("source IN ('patient', 'guardian', 'institution')", name="source"),
        Index("uq_consents_active", "patient_id", "purpose", unique=True,
              sqlite_where=text("withdrawn_at IS NULL"), postgresql_where=text("withdrawn_at IS NULL")),
    )


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


# --- alliance ---


class InstitutionSystem(Base):
    """An external-id system an institution of the alliance issues (its HIS MRN system URI):
    a key bound to that institution may name patients by ids of its systems only."""

    __tablename__ = "institution_systems"

    system: Mapped[str] = mapped_column(String(200), primary_key=True)
    institution_id: Mapped[str] = mapped_column(ForeignKey("institutions.id"), index=True)


class PatientInstitution(Base):
    """A patient belongs to an institution (医联体 member): enrolled there, named by one of its
    systems, booked at one of its sessions, or linked explicitly."""

    __tablename__ = "patient_institutions"

    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), primary_key=True)
    institution_id: Mapped[str] = mapped_column(ForeignKey("institutions.id"), primary_key=True)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
