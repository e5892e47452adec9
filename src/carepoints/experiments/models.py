"""Experiments (A/B tests of rules). Assignments are not stored: they are a pure function of
the experiment and patient ids (experiments.assign)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from carepoints.kit.db import Base
from carepoints.kit.types import UTCDateTime


class Experiment(Base):
    """draft → running → stopped, each step a guarded UPDATE; the CHECKs keep the timestamps
    in step with the status. A started experiment never changes again but for its stop, so
    `count(started_at) + count(stopped_at)` grows with every change the engine must see."""

    __tablename__ = "experiments"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    ethics_ref: Mapped[str] = mapped_column(String(100))  # 伦理审批号
    variants: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    request_hash: Mapped[str] = mapped_column(String(64))  # the creating body: the same code again must match
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by_kind: Mapped[str] = mapped_column(String(16))
    created_by_id: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        CheckConstraint("status IN ('draft', 'running', 'stopped')", name="status"),
        CheckConstraint("length(trim(ethics_ref)) > 0", name="ethics_ref"),
        CheckConstraint("(status = 'draft' AND started_at IS NULL AND stopped_at IS NULL) "
                        "OR (status = 'running' AND started_at IS NOT NULL AND stopped_at IS NULL) "
                        "OR (status = 'stopped' AND started_at IS NOT NULL AND stopped_at >= started_at)",
                        name="lifecycle"),
        Index("ix_experiments_status", "status"),
    )
