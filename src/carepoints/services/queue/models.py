"""Queue call tables: one row per call of a checked-in appointment, the staff who may call a
department's sessions, and the notices already sent (each at most once per appointment).

Two desks never call the same patient: call-next runs one at a time per session (an advisory
lock on PostgreSQL, BEGIN IMMEDIATE on SQLite) and a partial unique index allows one live call
(called, recalled or done) per appointment; a skipped call is closed and a later call of the
same appointment is a new row."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from carepoints.kit.db import Base
from carepoints.kit.types import UTCDateTime

LIVE_CALL = ("called", "recalled", "done")
_LIVE_SQL = "status IN ('called', 'recalled', 'done')"


class QueueCall(Base):
    __tablename__ = "queue_calls"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("clinic_sessions.id"))
    appointment_id: Mapped[str] = mapped_column(ForeignKey("appointments.id"))
    seq: Mapped[int] = mapped_column(Integer)
    called_at: Mapped[datetime] = mapped_column(UTCDateTime())
    called_by: Mapped[str | None] = mapped_column(String(36))  # the staff user or API key id
    source: Mapped[str] = mapped_column(String(16))  # staff | his | system
    recall_count: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16))  # called | recalled | skipped | done
    # the appointment's checked_in_at, kept so that the in-clinic wait is the call's own fact
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        CheckConstraint("recall_count >= 0", name="recall_count_nonneg"),
        CheckConstraint("status IN ('called', 'recalled', 'skipped', 'done')", name="status_known"),
        Index("uq_queue_calls_live", "appointment_id", unique=True,
              sqlite_where=text(_LIVE_SQL), postgresql_where=text(_LIVE_SQL)),
        Index("ix_queue_calls_session", "session_id", "called_at"),
    )


class QueueDeskStaff(Base):
    """A front-desk or nurse user who calls the sessions of a department (clinicians belong to
    theirs through `clinicians.staff_user_id`)."""

    __tablename__ = "queue_desk_staff"

    department_id: Mapped[str] = mapped_column(ForeignKey("departments.id"), primary_key=True)
    staff_user_id: Mapped[str] = mapped_column(ForeignKey("staff_users.id"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class QueueNotice(Base):
    """A "还有N位" notice sent for an appointment: the primary key makes it once."""

    __tablename__ = "queue_notices"

    appointment_id: Mapped[str] = mapped_column(ForeignKey("appointments.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)  # near
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime())
