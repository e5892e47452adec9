"""Scheduling tables: institutions → departments → clinicians and resources →
sessions → slots, and the appointments that hold them.

A slot is one sequence number (一个时段对应一个序号). It is held by at most
one live appointment: `slots.appointment_id` is claimed by a guarded update
(only while NULL), and a partial unique index on `appointments.slot_id` over
live statuses backs it. A patient's limits are indexes too: one live booking
per clinician per local day, and at most N live bookings per day through a
`day_rank` in 1..N that is unique per patient and day."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, Date, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from carepoints.kit.db import Base
from carepoints.kit.types import UTCDateTime

# An appointment in one of these holds its slot and counts against the patient's limits.
LIVE = ("booked", "checked_in")
_LIVE_SQL = "status IN ('booked', 'checked_in')"
_HOLDS_SLOT_SQL = "status IN ('booked', 'checked_in', 'attended', 'no_show')"


class Alliance(Base):
    """A medical alliance (医联体): a lead hospital and the centres that share its programme."""

    __tablename__ = "alliances"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Institution(Base):
    __tablename__ = "institutions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # (ops.alliance) the alliance it belongs to; None = not yet assigned (the migration assigns
    # existing institutions to a default alliance)
    alliance_id: Mapped[str | None] = mapped_column(ForeignKey("alliances.id"), index=True)


class Department(Base):
    __tablename__ = "departments"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    institution_id: Mapped[str] = mapped_column(ForeignKey("institutions.id"))
    code: Mapped[str] = mapped_column(String(32))
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("institution_id", "code"),)


class Clinician(Base):
    __tablename__ = "clinicians"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    department_id: Mapped[str] = mapped_column(ForeignKey("departments.id"), index=True)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(64), default="")
    staff_user_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("department_id", "code"),)


class Resource(Base):
    """An exam resource (CT, MRI, ultrasound) booked like a clinician."""

    __tablename__ = "resources"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    department_id: Mapped[str] = mapped_column(ForeignKey("departments.id"), index=True)
    code: Mapped[str] = mapped_column(String(32))
    modality: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("department_id", "code"),)


class SessionTemplate(Base):
    """A weekly session (every Monday 08:00–12:00, …) that `generate-sessions` turns into
    dated sessions ahead of time."""

    __tablename__ = "session_templates"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    department_id: Mapped[str] = mapped_column(ForeignKey("departments.id"))
    clinician_id: Mapped[str | None] = mapped_column(ForeignKey("clinicians.id"))
    resource_id: Mapped[str | None] = mapped_column(ForeignKey("resources.id"))
    weekday: Mapped[int] = mapped_column(Integer)  # ISO: 1 = Monday … 7 = Sunday
    start: Mapped[str] = mapped_column(String(5))  # local HH:MM
    end: Mapped[str] = mapped_column(String(5))
    slot_minutes: Mapped[int] = mapped_column(Integer)
    capacity: Mapped[int | None] = mapped_column(Integer)
    level: Mapped[str] = mapped_column(String(16))
    fee_fen: Mapped[int] = mapped_column(Integer)
    pattern: Mapped[list[str] | None] = mapped_column(JSON)
    referral_share: Mapped[str | None] = mapped_column(String(8))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        CheckConstraint("(clinician_id IS NULL) <> (resource_id IS NULL)", name="one_owner"),
        CheckConstraint("weekday BETWEEN 1 AND 7", name="weekday_range"),
        CheckConstraint("slot_minutes BETWEEN 1 AND 60", name="slot_minutes_range"),
    )


class ClinicSession(Base):
    """One clinic session (出诊), of a clinician or a resource, cut into slots."""

    __tablename__ = "clinic_sessions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    department_id: Mapped[str] = mapped_column(ForeignKey("departments.id"))
    clinician_id: Mapped[str | None] = mapped_column(ForeignKey("clinicians.id"))
    resource_id: Mapped[str | None] = mapped_column(ForeignKey("resources.id"))
    day: Mapped[date] = mapped_column(Date)  # the hospital's local date
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    slot_minutes: Mapped[int] = mapped_column(Integer)
    capacity: Mapped[int] = mapped_column(Integer)
    level: Mapped[str] = mapped_column(String(16))  # general | expert
    fee_fen: Mapped[int] = mapped_column(Integer)
    release_at: Mapped[datetime] = mapped_column(UTCDateTime())
    referral_release_at: Mapped[datetime] = mapped_column(UTCDateTime())
    pattern: Mapped[list[str]] = mapped_column(JSON)
    referral_share: Mapped[str] = mapped_column(String(8))  # a decimal fraction, e.g. "0.2"
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | cancelled
    template_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        CheckConstraint("(clinician_id IS NULL) <> (resource_id IS NULL)", name="one_owner"),
        CheckConstraint("slot_minutes BETWEEN 1 AND 60", name="slot_minutes_range"),
        CheckConstraint("capacity >= 1", name="capacity_positive"),
        CheckConstraint("fee_fen >= 0", name="fee_nonneg"),
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        Index("ix_clinic_sessions_day", "day", "department_id"),
        Index("ix_clinic_sessions_clinician", "clinician_id", "day"),
        # a template generates each of its sessions once, however often the job runs
        Index("uq_clinic_sessions_template_day", "template_id", "day", unique=True,
              sqlite_where=text("template_id IS NOT NULL"), postgresql_where=text("template_id IS NOT NULL")),
    )


class Slot(Base):
    __tablename__ = "slots"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("clinic_sessions.id"))
    seq: Mapped[int] = mapped_column(Integer)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    pool: Mapped[str] = mapped_column(String(16))  # online | onsite | referral
    appointment_id: Mapped[str | None] = mapped_column(String(36))
    # a freed slot offered to a waiting patient (候补) until they confirm or the offer lapses
    held_for: Mapped[str | None] = mapped_column(String(36))

    __table_args__ = (
        UniqueConstraint("session_id", "seq"),
        CheckConstraint("seq >= 1", name="seq_positive"),
        Index("ix_slots_free", "session_id", "pool", "seq", sqlite_where=text("appointment_id IS NULL"),
              postgresql_where=text("appointment_id IS NULL")),
        # one held slot per offer
        Index("uq_slots_held_for", "held_for", unique=True, sqlite_where=text("held_for IS NOT NULL"),
              postgresql_where=text("held_for IS NOT NULL")),
    )


class WaitlistEntry(Base):
    """A patient waiting for a full session (候补). Entries are served in the order they
    joined; a freed slot goes to the first one waiting, never back to the open pool."""

    __tablename__ = "waitlist_entries"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("clinic_sessions.id"))
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    channel: Mapped[str] = mapped_column(String(16))
    referral_id: Mapped[str | None] = mapped_column(String(64))
    # waiting | offered | booked | lapsed | declined | skipped | cancelled
    status: Mapped[str] = mapped_column(String(16))
    idempotency_key: Mapped[str] = mapped_column(String(128))
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime())
    offered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    offer_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    slot_id: Mapped[str | None] = mapped_column(String(36))
    appointment_id: Mapped[str | None] = mapped_column(String(36))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("patient_id", "idempotency_key"),
        Index("uq_waitlist_live", "session_id", "patient_id", unique=True,
              sqlite_where=text("status IN ('waiting', 'offered')"),
              postgresql_where=text("status IN ('waiting', 'offered')")),
        Index("ix_waitlist_queue", "session_id", "status", "joined_at"),
        Index("ix_waitlist_offers", "offer_expires_at", sqlite_where=text("status = 'offered'"),
              postgresql_where=text("status = 'offered'")),
    )


class Appointment(Base):
    __tablename__ = "appointments"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    session_id: Mapped[str] = mapped_column(ForeignKey("clinic_sessions.id"))
    slot_id: Mapped[str] = mapped_column(ForeignKey("slots.id"))
    clinician_id: Mapped[str | None] = mapped_column(String(36))
    resource_id: Mapped[str | None] = mapped_column(String(36))
    # the clinician id while "one booking per clinician per day" applies, else NULL (never unique-checked)
    clinician_guard: Mapped[str | None] = mapped_column(String(36))
    day: Mapped[date] = mapped_column(Date)
    day_rank: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    slot_start: Mapped[datetime] = mapped_column(UTCDateTime())
    slot_end: Mapped[datetime] = mapped_column(UTCDateTime())
    channel: Mapped[str] = mapped_column(String(16))  # online | onsite | referral
    referral_id: Mapped[str | None] = mapped_column(String(64))
    booked_by: Mapped[str] = mapped_column(String(16))  # patient | clinician | staff
    status: Mapped[str] = mapped_column(String(16))  # booked | checked_in | attended | cancelled | no_show
    idempotency_key: Mapped[str] = mapped_column(String(128))
    request_hash: Mapped[str] = mapped_column(String(64))
    booked_at: Mapped[datetime] = mapped_column(UTCDateTime())
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    late: Mapped[bool | None] = mapped_column(Boolean)
    priority: Mapped[bool] = mapped_column(Boolean, default=False)
    attended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_by: Mapped[str | None] = mapped_column(String(16))
    no_show_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    history: Mapped[list[dict[str, Any]]] = mapped_column(JSON)

    __table_args__ = (
        UniqueConstraint("patient_id", "idempotency_key"),
        CheckConstraint("day_rank >= 1", name="day_rank_positive"),
        Index("uq_appointments_slot_live", "slot_id", unique=True,
              sqlite_where=text(_HOLDS_SLOT_SQL), postgresql_where=text(_HOLDS_SLOT_SQL)),
        Index("uq_appointments_clinician_day", "patient_id", "clinician_guard", "day", unique=True,
              sqlite_where=text(f"{_LIVE_SQL} AND clinician_guard IS NOT NULL"),
              postgresql_where=text(f"{_LIVE_SQL} AND clinician_guard IS NOT NULL")),
        Index("uq_appointments_day_rank", "patient_id", "day", "day_rank", unique=True,
              sqlite_where=text(_LIVE_SQL), postgresql_where=text(_LIVE_SQL)),
        Index("ix_appointments_session", "session_id", "status"),
        Index("ix_appointments_patient", "patient_id", "day"),
    )


class CheckupPackage(Base):
    """A checkup package (体检套餐): its items, price and how many can be done a day."""

    __tablename__ = "checkup_packages"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    items: Mapped[list[str]] = mapped_column(JSON)
    price_fen: Mapped[int] = mapped_column(Integer)
    daily_capacity: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        CheckConstraint("daily_capacity >= 1", name="capacity_positive"),
        CheckConstraint("price_fen >= 0", name="price_nonneg"),
    )


class CheckupDay(Base):
    """Bookings taken per package and local day: a guarded counter (never above the
    capacity it carries), the database's answer to "is there room"."""

    __tablename__ = "checkup_days"

    package_id: Mapped[str] = mapped_column(ForeignKey("checkup_packages.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    booked: Mapped[int] = mapped_column(Integer)
    capacity: Mapped[int] = mapped_column(Integer)

    __table_args__ = (CheckConstraint("booked >= 0 AND booked <= capacity", name="within_capacity"),)


class CheckupBooking(Base):
    __tablename__ = "checkup_bookings"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    package_id: Mapped[str] = mapped_column(ForeignKey("checkup_packages.id"))
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    day: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))  # booked | attended | cancelled
    idempotency_key: Mapped[str] = mapped_column(String(128))
    booked_at: Mapped[datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("patient_id", "idempotency_key"),
        Index("uq_checkup_bookings_live", "patient_id", "package_id", "day", unique=True,
              sqlite_where=text("status = 'booked'"), postgresql_where=text("status = 'booked'")),
    )
