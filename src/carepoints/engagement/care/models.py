"""Care alerts (关怀 / 异常提醒): one queue for the care team."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from carepoints.kit.db import Base
from carepoints.kit.types import UTCDateTime


class CareAlert(Base):
    """One alert for the care team. `(kind, source_ref)` is unique, so whatever raises an
    alert twice for the same cause (a replayed reading, a re-run job) raises it once."""

    __tablename__ = "care_alerts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    kind: Mapped[str] = mapped_column(String(32))  # AlertKind
    severity: Mapped[str] = mapped_column(String(16))  # normal | high | critical
    source_ref: Mapped[str] = mapped_column(String(200))  # what caused it: an event, an answer, a plan step, a day
    details: Mapped[dict[str, Any]] = mapped_column(JSON)  # ids and codes only
    status: Mapped[str] = mapped_column(String(16))  # open | acknowledged | resolved
    assigned_to: Mapped[str | None] = mapped_column(String(36))  # a staff user
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolution: Mapped[str | None] = mapped_column(String(32))  # a code (AlertResolution)

    __table_args__ = (
        UniqueConstraint("kind", "source_ref"),
        Index("ix_care_alerts_queue", "status", "created_at"),
        Index("ix_care_alerts_patient", "patient_id", "created_at"),
    )
