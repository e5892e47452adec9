"""The audit log: append-only rows naming who did what to which record, ids only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from carepoints.kit.db import Base
from carepoints.kit.types import UTCDateTime


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor_kind: Mapped[str] = mapped_column(String(16))  # api_key | staff | patient | system
    actor_id: Mapped[str] = mapped_column(String(36))
    action: Mapped[str] = mapped_column(String(64))  # domain:subject:action
    subject_id: Mapped[str | None] = mapped_column(String(36))
    patient_id: Mapped[str | None] = mapped_column(String(36))
    on_behalf_of: Mapped[str | None] = mapped_column(String(36))  # the patient a proxy acted for
    details: Mapped[dict[str, Any]] = mapped_column(JSON)  # ids and codes only, never PII or health data

    __table_args__ = (
        Index("ix_audit_log_patient", "patient_id", "at"),
        Index("ix_audit_log_actor", "actor_kind", "actor_id", "at"),
    )
