"""Health data of engagement (健康打卡 / 慢病管理 / 用药): readings, the chronic-disease
registry and medication plans with their planned doses. Health data: never logged."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Boolean, Date, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from carepoints.kit.db import Base
from carepoints.kit.types import UTCDateTime


class HealthMeasurement(Base):
    """One accepted `health.measurement` event, whichever path it came in. `local_day`
    is the hospital's calendar day of `taken_at` (fixed time zone), for day summaries and
    the inactivity job; the reading leaves the trend when its event is revoked."""

    __tablename__ = "measurements"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    patient_id: Mapped[str] = mapped_column(String(36))
    kind: Mapped[str] = mapped_column(String(16))  # blood_pressure | blood_glucose
    systolic: Mapped[int | None] = mapped_column(Integer)
    diastolic: Mapped[int | None] = mapped_column(Integer)
    pulse: Mapped[int | None] = mapped_column(Integer)
    glucose_mmol_l: Mapped[float | None] = mapped_column(Float)
    provenance: Mapped[str] = mapped_column(String(16))  # self_reported | device | clinic
    self_monitored: Mapped[bool] = mapped_column(Boolean)  # provenance self_reported or device
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime())
    local_day: Mapped[date] = mapped_column(Date)
    abnormal: Mapped[bool] = mapped_column(Boolean)
    reasons: Mapped[str | None] = mapped_column(String(64))  # comma-separated codes: sbp_high,dbp_high,…
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_measurements_patient", "patient_id", "taken_at"),
        Index("ix_measurements_self_day", "self_monitored", "local_day", "patient_id"),
    )


class PatientCondition(Base):
    """A chronic condition of the registry: one row per (patient, code); ending it keeps
    the row (ended_on set), recording it again starts it anew."""

    __tablename__ = "patient_conditions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    code: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(16))  # staff | his
    diagnosed_on: Mapped[date | None] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(String(500))  # health data: never logged or audited
    active: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("patient_id", "code"),)


class MedicationPlan(Base):
    """A medication plan: planned local times each day from start_date to end_date."""

    __tablename__ = "medication_plans"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    medicine_name: Mapped[str] = mapped_column(String(100))  # health data: never logged
    dose_text: Mapped[str | None] = mapped_column(String(100))
    times: Mapped[list[str]] = mapped_column(JSON)  # ["08:00", "20:00"], sorted
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))  # active | stopped
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_medication_plans_patient", "patient_id", "status"),)


class MedicationDose(Base):
    """A planned dose (plan, planned instant): reminded once, taken once. The unique key
    is what makes "one reminder" and "one check-in per planned time" hold."""

    __tablename__ = "medication_doses"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    plan_id: Mapped[str] = mapped_column(ForeignKey("medication_plans.id"))
    patient_id: Mapped[str] = mapped_column(String(36))
    scheduled_for: Mapped[datetime] = mapped_column(UTCDateTime())
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    taken_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    event_id: Mapped[str | None] = mapped_column(String(36))

    __table_args__ = (UniqueConstraint("plan_id", "scheduled_for"),)
