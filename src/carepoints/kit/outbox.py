"""Transactional outbox: messages are written in the same transaction as the
change that causes them and delivered after commit (delivery lives in the
notifications domain). A rollback drops them with the change."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, mapped_column

from carepoints.kit.bulk import insert_rows
from carepoints.kit.db import Base, table
from carepoints.kit.ids import new_id
from carepoints.kit.time import utc_now
from carepoints.kit.types import UTCDateTime


class OutboxMessage(Base):
    __tablename__ = "outbox_messages"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    topic: Mapped[str] = mapped_column(String(64))
    key: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    available_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_outbox_pending", "status", "available_at"),)



def enqueue_many(conn: Connection, messages: Sequence[tuple[str, str | None, dict[str, Any]]],
                 now: datetime | None = None) -> None:
    """Queue (topic, key, payload) messages in the caller's transaction. Payloads carry ids only."""
    if not messages:
        return
    at = now or utc_now()
    insert_rows(conn, table(OutboxMessage), [
        {"id": new_id(), "topic": topic, "key": key, "payload": payload, "status": "pending",
         "attempts": 0, "created_at": at, "available_at": at}
        for topic, key, payload in messages
    ])


def enqueue(conn: Connection, topic: str, payload: dict[str, Any], key: str | None = None) -> None:
    enqueue_many(conn, [(topic, key, payload)])
