"""PIPL rights bookkeeping: one row per erased patient (the request and what it did)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from carepoints.kit.db import Base
from carepoints.kit.types import UTCDateTime


class Erasure(Base):
    """A patient's erasure (删除权): the primary key makes it happen at most once; a repeated
    request answers the stored outcome (counts and codes only, never PII)."""

    __tablename__ = "patient_erasures"

    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), primary_key=True)
    reason: Mapped[str | None] = mapped_column(String(64))  # a reason code, never free text
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str] = mapped_column(String(36))
    outcome: Mapped[dict[str, Any]] = mapped_column(JSON)
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime())
