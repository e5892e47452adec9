from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from carepoints.kit.db import Base
from carepoints.kit.types import UTCDateTime


class Event(Base):
    """An accepted behaviour event and its stored outcome (replayed for duplicates)."""

    __tablename__ = "events"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    patient_id: Mapped[str] = mapped_column(String(36))
    source: Mapped[str] = mapped_column(String(100))
    source_event_id: Mapped[str] = mapped_column(String(200))
    payload_hash: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="accepted")
    outcome: Mapped[dict[str, Any]] = mapped_column(JSON)
    effects: Mapped[dict[str, Any]] = mapped_column(JSON)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoke_reason: Mapped[str | None] = mapped_column(String(500))
    # The behaviour (effective type) of an event that an order-sensitive rule scores: such
    # events are re-evaluated in time order when an earlier one arrives late. NULL for
    # everything else, which keeps the partial index off the hot path.
    replay_group: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        UniqueConstraint("source", "source_event_id"),
        Index("ix_events_replay", "patient_id", "replay_group", "occurred_at",
              sqlite_where=text("replay_group IS NOT NULL"), postgresql_where=text("replay_group IS NOT NULL")),
    )
