"""Admissions tables: wards with their admissions per day, admission orders (住院证), operating
rooms with their minutes and cases per day, surgery requests, and pre-visit orders (预就诊).

Capacity is the database's: a ward's day and a room's day are counter rows changed by one
guarded statement each (never above the capacity they carry, CHECK constraints behind it), a
partial unique index allows one live admission order per patient and ward, and every order and
request carries an idempotency key under a unique constraint. Procedure names are health data: stored here,
never logged, audited or put in a message."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, CheckConstraint, Date, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from carepoints.kit.db import Base
from carepoints.kit.types import UTCDateTime

ORDER_LIVE = ("issued", "booked")
_ORDER_LIVE_SQL = "status IN ('issued', 'booked')"
SURGERY_LIVE = ("requested", "scheduled")
_SURGERY_LIVE_SQL = "status IN ('requested', 'scheduled')"


class Ward(Base):
    """A ward (病区) of a department: how many patients it admits a day, when they arrive and the
    pre-admission instructions (入院须知) every booked patient is shown."""

    __tablename__ = "admission_wards"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    department_id: Mapped[str] = mapped_column(ForeignKey("departments.id"), index=True)
    code: Mapped[str] = mapped_column(String(32))
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    daily_admissions: Mapped[int] = mapped_column(Integer)
    arrival_time: Mapped[str] = mapped_column(String(5))  # local HH:MM
    instructions_zh: Mapped[str] = mapped_column(String(2000))
    instructions_en: Mapped[str] = mapped_column(String(2000))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("department_id", "code"),
        CheckConstraint("daily_admissions BETWEEN 1 AND 500", name="daily_admissions_range"),
    )


class WardDay(Base):
    """Admissions booked per ward and local day: a guarded counter (the day's capacity is the
    ward's unless staff set another for that day)."""

    __tablename__ = "admission_ward_days"

    ward_id: Mapped[str] = mapped_column(ForeignKey("admission_wards.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    booked: Mapped[int] = mapped_column(Integer)
    capacity: Mapped[int] = mapped_column(Integer)

    __table_args__ = (CheckConstraint("booked >= 0 AND booked <= capacity", name="within_capacity"),)


class AdmissionOrder(Base):
    """An admission order (住院证) for a patient and ward: issued → booked (a date chosen, one place
    of that day taken) → admitted (staff confirmed arrival), or cancelled. A booked order may be
    rescheduled (its old day's place given back in the same transaction)."""

    __tablename__ = "admission_orders"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    ward_id: Mapped[str] = mapped_column(ForeignKey("admission_wards.id"))
    status: Mapped[str] = mapped_column(String(16))  # issued | booked | admitted | cancelled
    earliest_date: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)
    admission_date: Mapped[date | None] = mapped_column(Date)
    reschedules: Mapped[int] = mapped_column(Integer, default=0)
    issued_by: Mapped[str] = mapped_column(String(36))  # the staff user or API key
    idempotency_key: Mapped[str] = mapped_column(String(128))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    booked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    admitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_by: Mapped[str | None] = mapped_column(String(16))  # patient | hospital

    __table_args__ = (
        UniqueConstraint("idempotency_key"),
        CheckConstraint("status IN ('issued', 'booked', 'admitted', 'cancelled')", name="status_known"),
        CheckConstraint("valid_until >= earliest_date", name="valid_after_earliest"),
        CheckConstraint("(status IN ('booked', 'admitted')) = (admission_date IS NOT NULL)", name="date_when_booked"),
        CheckConstraint("reschedules >= 0", name="reschedules_nonneg"),
        Index("uq_admission_orders_live", "patient_id", "ward_id", unique=True,
              sqlite_where=text(_ORDER_LIVE_SQL), postgresql_where=text(_ORDER_LIVE_SQL)),
        Index("ix_admission_orders_patient", "patient_id", "issued_at"),
        Index("ix_admission_orders_ward_day", "ward_id", "admission_date"),
    )


class OperatingRoom(Base):
    """An operating room (手术间) of a department: the minutes and cases it takes a day, and which
    kinds of surgery it takes (a day-surgery centre's rooms take day surgery)."""

    __tablename__ = "operating_rooms"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    department_id: Mapped[str] = mapped_column(ForeignKey("departments.id"), index=True)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    minutes_per_day: Mapped[int] = mapped_column(Integer)
    cases_per_day: Mapped[int] = mapped_column(Integer)
    elective: Mapped[bool] = mapped_column(Boolean)
    day_surgery: Mapped[bool] = mapped_column(Boolean)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("department_id", "code"),
        CheckConstraint("minutes_per_day BETWEEN 30 AND 1440", name="minutes_range"),
        CheckConstraint("cases_per_day BETWEEN 1 AND 100", name="cases_range"),
        CheckConstraint("elective OR day_surgery", name="takes_a_kind"),
    )


class RoomDay(Base):
    """Minutes and cases booked per operating room and local day: one guarded counter row."""

    __tablename__ = "operating_room_days"

    room_id: Mapped[str] = mapped_column(ForeignKey("operating_rooms.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    minutes_booked: Mapped[int] = mapped_column(Integer)
    minutes_capacity: Mapped[int] = mapped_column(Integer)
    cases_booked: Mapped[int] = mapped_column(Integer)
    cases_capacity: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        CheckConstraint("minutes_booked >= 0 AND minutes_booked <= minutes_capacity", name="minutes_within"),
        CheckConstraint("cases_booked >= 0 AND cases_booked <= cases_capacity", name="cases_within"),
    )


class SurgeryRequest(Base):
    """A clinician's surgery request (手术申请): requested → scheduled (a room and a date; its
    minutes and one case taken from the room's day) → done, or cancelled. A day surgery (日间手术)
    needs the pre-op exam and the anaesthesia assessment recorded before it is scheduled and is
    discharged the same day."""

    __tablename__ = "surgery_requests"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    department_id: Mapped[str] = mapped_column(ForeignKey("departments.id"))
    procedure: Mapped[str] = mapped_column(String(100))  # health data: shown, never logged or audited
    kind: Mapped[str] = mapped_column(String(16))  # elective | day
    expected_minutes: Mapped[int] = mapped_column(Integer)
    earliest_date: Mapped[date] = mapped_column(Date)
    admission_order_id: Mapped[str | None] = mapped_column(ForeignKey("admission_orders.id"))
    status: Mapped[str] = mapped_column(String(16))  # requested | scheduled | done | cancelled
    room_id: Mapped[str | None] = mapped_column(ForeignKey("operating_rooms.id"))
    surgery_date: Mapped[date | None] = mapped_column(Date)
    preop_exam_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    anaesthesia_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    requested_by: Mapped[str] = mapped_column(String(36))
    idempotency_key: Mapped[str] = mapped_column(String(128))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("idempotency_key"),
        CheckConstraint("kind IN ('elective', 'day')", name="kind_known"),
        CheckConstraint("status IN ('requested', 'scheduled', 'done', 'cancelled')", name="status_known"),
        CheckConstraint("expected_minutes BETWEEN 10 AND 720", name="minutes_range"),
        CheckConstraint("(status IN ('scheduled', 'done')) = (surgery_date IS NOT NULL AND room_id IS NOT NULL)",
                        name="date_when_scheduled"),
        Index("ix_surgery_requests_patient", "patient_id", "requested_at"),
        Index("ix_surgery_requests_room_day", "room_id", "surgery_date"),
        Index("ix_surgery_requests_open", "department_id", "status"),
    )


class PrevisitOrder(Base):
    """A pre-visit exam (预就诊): the exam booked on a resource's session and the follow-up with the
    ordering clinician in the first session starting once the result is expected (the exam slot's
    end + `result_hours`). Both are scheduling appointments (booked by the clinician)."""

    __tablename__ = "previsit_orders"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    clinician_id: Mapped[str] = mapped_column(ForeignKey("clinicians.id"))
    resource_id: Mapped[str] = mapped_column(ForeignKey("resources.id"))
    exam: Mapped[str] = mapped_column(String(100))  # health data: shown, never logged or audited
    result_hours: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # booked | cancelled
    exam_appointment_id: Mapped[str] = mapped_column(ForeignKey("appointments.id"))
    followup_appointment_id: Mapped[str] = mapped_column(ForeignKey("appointments.id"))
    results_expected_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ordered_by: Mapped[str] = mapped_column(String(36))
    idempotency_key: Mapped[str] = mapped_column(String(128))
    ordered_at: Mapped[datetime] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("idempotency_key"),
        CheckConstraint("status IN ('booked', 'cancelled')", name="status_known"),
        CheckConstraint("result_hours BETWEEN 0 AND 720", name="result_hours_range"),
        Index("ix_previsit_orders_patient", "patient_id", "ordered_at"),
    )
