"""Operations tables: each area keeps its own section (adjustments, appeals, fraud)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Date, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from carepoints.kit.db import Base
from carepoints.kit.types import UTCDateTime

# --- fraud ---

class FraudSignal(Base):
    """One item of the fraud review queue (operations.fraud). Raised by the `detect-fraud`
    job, never a penalty by itself: a reviewer dismisses it or acts (freeze earning, revoke
    events). `details` and `event_ids` hold ids and counts only, never readings or PII.
    The unique (kind, subject_key, window_key) is what makes re-runs and concurrent runs
    raise each signal once."""

    __tablename__ = "fraud_signals"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    patient_id: Mapped[str | None] = mapped_column(String(36), index=True)
    staff_id: Mapped[str | None] = mapped_column(String(200))
    subject_key: Mapped[str] = mapped_column(String(240))
    window_key: Mapped[str] = mapped_column(String(32))  # a local day (YYYY-MM-DD) or month (YYYY-MM)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    event_ids: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="open")
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reviewed_by_kind: Mapped[str | None] = mapped_column(String(16))
    reviewed_by_id: Mapped[str | None] = mapped_column(String(64))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    action: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (
        UniqueConstraint("kind", "subject_key", "window_key"),
        CheckConstraint("status IN ('open', 'dismissed', 'actioned')", name="status"),
        CheckConstraint("kind IN ('velocity', 'repeated_reading', 'implausible_reading', 'staff_outlier', "
                        "'shared_phone', 'shared_device')", name="kind"),
        Index("ix_fraud_signals_queue", "status", "id"),
    )


class FraudScanCursor(Base):
    """How far `detect-fraud` has read the events table: the last event id it scanned
    (UUIDv7, so ids are in reception order). One row per scanner."""

    __tablename__ = "fraud_scan_cursors"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_event_id: Mapped[str] = mapped_column(String(36))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


# --- appeals ---

class Appeal(Base):
    """A patient's appeal (申诉) of a penalty (an accepted event with a negative award) or of
    a suspension of earning (operations.appeals). `event_id` is the event a reversal revokes:
    the penalty itself, or the suspension's trigger no-show. The partial unique index keeps at
    most one open appeal per subject; the CHECKs keep the decider apart from the patient and
    from whoever filed it. Notes stay here, never in the audit log."""

    __tablename__ = "appeals"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(36), index=True)
    subject_kind: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[str] = mapped_column(String(36))
    event_id: Mapped[str] = mapped_column(String(36))
    reason: Mapped[str] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deadline: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by_kind: Mapped[str] = mapped_column(String(16))
    created_by_id: Mapped[str] = mapped_column(String(64))
    decided_by_kind: Mapped[str | None] = mapped_column(String(16))
    decided_by_id: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decision_note: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (
        CheckConstraint("subject_kind IN ('penalty', 'suspension')", name="subject_kind"),
        CheckConstraint("reason IN ('hospitalised', 'session_cancelled_unrecorded', 'wrong_patient', 'other')",
                        name="reason"),
        CheckConstraint("status IN ('open', 'upheld', 'reversed')", name="status"),
        CheckConstraint("(status = 'open') = (decided_by_id IS NULL)", name="decided"),
        CheckConstraint("decided_by_id IS NULL OR (decided_by_id <> created_by_id AND decided_by_id <> patient_id)",
                        name="decider"),
        Index("uq_appeals_open_subject", "subject_kind", "subject_id", unique=True,
              sqlite_where=text("status = 'open'"), postgresql_where=text("status = 'open'")),
        Index("ix_appeals_queue", "status", "id"),
    )


# --- adjustments ---

class Adjustment(Base):
    """A manual credit or debit of a patient's points by staff (operations.adjustments).
    Above the programme's approval threshold it waits (`pending`) for a second person: the
    CHECK `checker` keeps whoever decides it (approves or rejects) apart from its maker,
    and one guarded UPDATE pending → posted/rejected/expired decides it once. The unique
    `idempotency_key` makes a retried request answer the first one. Notes stay here,
    never in the audit log."""

    __tablename__ = "adjustments"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(36), index=True)
    points: Mapped[int] = mapped_column(Integer)
    reason_code: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16))
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    created_by_kind: Mapped[str] = mapped_column(String(16))
    created_by_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_by_kind: Mapped[str | None] = mapped_column(String(16))
    decided_by_id: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decision_note: Mapped[str | None] = mapped_column(String(500))
    transfer_id: Mapped[str | None] = mapped_column(String(36))
    balance_after: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        CheckConstraint("points <> 0", name="points"),
        CheckConstraint("status IN ('pending', 'posted', 'rejected', 'expired')", name="status"),
        CheckConstraint("decided_by_id IS NULL OR decided_by_id <> created_by_id", name="checker"),
        CheckConstraint("(status = 'posted') = (transfer_id IS NOT NULL)", name="posted"),
        Index("ix_adjustments_queue", "status", "id"),
    )


class AdjustmentOperatorDay(Base):
    """Σ|points| one operator has adjusted on one local day (pending ones included). Raised
    by one guarded UPDATE ... WHERE used + n <= cap; the CHECK is the last word."""

    __tablename__ = "adjustment_operator_days"

    operator_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    used: Mapped[int] = mapped_column(Integer, default=0)
    cap: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        CheckConstraint("used >= 0 AND used <= cap", name="used"),
    )
