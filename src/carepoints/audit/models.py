"""The audit log: append-only rows naming who did what to which record, ids only.

Rows are sealed in blocks (`audit_seals`): each seal covers the rows with
first_id <= id <= last_id (ids are UUIDv7, so id order is time order) and
chains its digest to the previous seal's. The database refuses UPDATE and
DELETE on both tables (triggers, see the 0901 migration) except inside the
retention purge."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from carepoints.kit.db import Base
from carepoints.kit.types import UTCDateTime


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor_kind: Mapped[str] = mapped_column(String(16))  # api_key | staff | patient | system
    actor_id: Mapped[str] = mapped_column(String(36))
    actor_role: Mapped[str | None] = mapped_column(String(32))  # the principal's role when it acted
    # domain:subject:action, or http:<METHOD>:<route template> for a request-level row
    action: Mapped[str] = mapped_column(String(160))
    subject_id: Mapped[str | None] = mapped_column(String(36))
    patient_id: Mapped[str | None] = mapped_column(String(36))
    on_behalf_of: Mapped[str | None] = mapped_column(String(36))  # the patient a proxy acted for
    details: Mapped[dict[str, Any]] = mapped_column(JSON)  # ids and codes only, never PII or health data

    __table_args__ = (
        Index("ix_audit_log_patient", "patient_id", "at"),
        Index("ix_audit_log_actor", "actor_kind", "actor_id", "at"),
    )


class AuditSeal(Base):
    """One sealed block of audit rows: digest = sha256 chained over the canonical rows,
    signature = HMAC-SHA256 of the seal with the checkpoint key (not in the database)."""

    __tablename__ = "audit_seals"

    block: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    first_id: Mapped[str] = mapped_column(String(36))
    last_id: Mapped[str] = mapped_column(String(36))
    row_count: Mapped[int] = mapped_column(Integer)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime())  # newest `at` in the block (retention)
    prev_digest: Mapped[str] = mapped_column(String(64))  # the previous seal's digest ("" for block 1)
    digest: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(64))
    # a 16-hex-digit prefix of each row's hash in id order: lets verify name the row that broke
    row_digests: Mapped[list[str]] = mapped_column(JSON)
    sealed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AuditPurgeGate(Base):
    """Holds a row only inside the retention purge's own transaction: the SQLite
    delete triggers let deletes through while it exists (PostgreSQL uses the
    transaction-local setting `carepoints.audit_purge` instead)."""

    __tablename__ = "audit_purge_gate"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
