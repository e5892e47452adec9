"""The programme (versions of rules and settings) and the rules' state:
guarded counters, streak runs, no-shows and suspensions."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Date, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from carepoints.kit.db import Base
from carepoints.kit.types import UTCDateTime


class ProgramVersion(Base):
    __tablename__ = "program_versions"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(200))
    effective_from: Mapped[datetime] = mapped_column(UTCDateTime())
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    source_sha256: Mapped[str] = mapped_column(String(64))
    document: Mapped[dict[str, Any]] = mapped_column(JSON)


class ProgramRule(Base):
    __tablename__ = "program_rules"

    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)


class Counter(Base):
    """A guarded counter: the database refuses `used` beyond `cap`."""

    __tablename__ = "rule_counters"

    patient_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    used: Mapped[int] = mapped_column(Integer)
    cap: Mapped[int | None] = mapped_column(Integer)

    # WITHOUT ROWID on SQLite: a patient's counters share b-tree pages (see the migration).
    __table_args__ = (CheckConstraint("used >= 0 AND (cap IS NULL OR used <= cap)", name="within_cap"),
                      {"sqlite_with_rowid": False})


class StreakRun(Base):
    """Maximal runs of consecutive qualifying days, kept so that a new day needs
    only its neighbours, however long the run. Which events count a day is in
    each event's recorded effects (used when one is revoked)."""

    __tablename__ = "streak_runs"

    patient_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    grp: Mapped[str] = mapped_column(String(64), primary_key=True)
    start_day: Mapped[date] = mapped_column(Date, primary_key=True)
    end_day: Mapped[date] = mapped_column(Date)

    __table_args__ = ({"sqlite_with_rowid": False},)


class NoShow(Base):
    __tablename__ = "no_shows"

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(36), index=True)
    slot_start: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16))  # counted | consumed | reset | revoked


class Suspension(Base):
    __tablename__ = "suspensions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(36), index=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    trigger_event_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


# --- governance ---

class ProgrammeDraft(Base):
    """A proposed programme version (maker-checker): the full validated document, until a
    second admin approves it (installed as the next version from `activate_at`), rejects
    it, or its author withdraws it. The database refuses an approver who is the author,
    and the announcement to patients keeps its cursor here (announce-programme)."""

    __tablename__ = "programme_drafts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    base_version: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    summary_zh: Mapped[str] = mapped_column(String(500))
    summary_en: Mapped[str] = mapped_column(String(500))
    change_kinds: Mapped[list[str]] = mapped_column(JSON)  # rules | point_value | tiers | budget | settings | ...
    created_by_kind: Mapped[str] = mapped_column(String(16))
    created_by_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16))  # draft | approved | rejected | withdrawn
    activate_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_by_kind: Mapped[str | None] = mapped_column(String(16))
    decided_by_id: Mapped[str | None] = mapped_column(String(36))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decision_note: Mapped[str | None] = mapped_column(String(500))
    installed_version: Mapped[int | None] = mapped_column(Integer, unique=True)
    # none | pending | done; the last patient id told, and how many were told
    announcement: Mapped[str] = mapped_column(String(16))
    announce_cursor: Mapped[str | None] = mapped_column(String(36))
    announced_count: Mapped[int] = mapped_column(Integer)
    announced_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        CheckConstraint("status IN ('draft', 'approved', 'rejected', 'withdrawn')", name="status"),
        CheckConstraint("announcement IN ('none', 'pending', 'done')", name="announcement"),
        CheckConstraint("decided_by_id IS NULL OR decided_by_kind <> created_by_kind "
                        "OR decided_by_id <> created_by_id", name="checker_not_maker"),
        CheckConstraint("status <> 'approved' OR (installed_version IS NOT NULL AND decided_by_id IS NOT NULL)",
                        name="approved_installed"),
        Index("ix_programme_drafts_status", "status", "created_at"),
    )
