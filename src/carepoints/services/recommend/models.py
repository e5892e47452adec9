"""The per-patient switch of recommendations: one row per patient once they (or the desk, or
the hospital's app) changed it; no row means on. The primary key keeps it to one row."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from carepoints.kit.db import Base
from carepoints.kit.types import UTCDateTime


class RecommendationSetting(Base):
    __tablename__ = "recommendation_settings"

    patient_id: Mapped[str] = mapped_column(String(36), ForeignKey("patients.id"), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
