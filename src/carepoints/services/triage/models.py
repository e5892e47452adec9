"""Triage guidance tables: the editable knowledge base (department kinds, symptom terms, red
flags), the kind → hospital department mapping, and daily counts. No symptom text and no
patient id is ever stored: a triage leaves only +1 on a count of its day."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from carepoints.kit.db import Base
from carepoints.kit.types import UTCDateTime


class TriageKind(Base):
    """A department kind (心内科, 儿科, …); `names` are the department names it is matched by."""

    __tablename__ = "triage_kinds"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(128))
    names: Mapped[list[str]] = mapped_column(JSON)
    sex: Mapped[str | None] = mapped_column(String(8))  # female | male: only for that sex
    sort: Mapped[int] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TriageTerm(Base):
    """A symptom or circumstance: the patient's words for it and its weight per department kind.
    `version` rises with every edit (audited)."""

    __tablename__ = "triage_terms"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(128))
    synonyms: Mapped[list[str]] = mapped_column(JSON)
    weights: Mapped[dict[str, int]] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(8))  # shipped | admin
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (CheckConstraint("version >= 1", name="version_positive"),)


class TriageRedFlag(Base):
    """A combination of terms that sends the patient to the emergency department at once."""

    __tablename__ = "triage_red_flags"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(128))
    message_zh: Mapped[str] = mapped_column(Text)
    message_en: Mapped[str] = mapped_column(Text)
    hotline_zh: Mapped[str | None] = mapped_column(Text)
    hotline_en: Mapped[str | None] = mapped_column(Text)
    when: Mapped[list[Any]] = mapped_column(JSON)  # alternatives of groups of term ids
    enabled: Mapped[bool] = mapped_column(Boolean)
    sort: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (CheckConstraint("version >= 1", name="version_positive"),)


class TriageDepartmentMap(Base):
    """Which hospital department a kind stands for. Rows come from name matching (`source`
    name) or the admin (admin); an admin row with `enabled` false keeps a name match away.
    A department without any row for a kind is matched by name when a triage reads it."""

    __tablename__ = "triage_department_map"

    kind_code: Mapped[str] = mapped_column(ForeignKey("triage_kinds.code"), primary_key=True)
    department_id: Mapped[str] = mapped_column(ForeignKey("departments.id"), primary_key=True)
    institution_id: Mapped[str] = mapped_column(ForeignKey("institutions.id"))
    source: Mapped[str] = mapped_column(String(8))  # name | admin
    enabled: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_triage_department_map_department", "department_id"),)


class TriageDailyCount(Base):
    """How many triages of a local day raised a red flag, suggested a kind first, or matched
    nothing: `dimension` total | red_flag | department | unmatched, `code` the flag or kind."""

    __tablename__ = "triage_daily_counts"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    dimension: Mapped[str] = mapped_column(String(16), primary_key=True)
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)

    __table_args__ = (CheckConstraint("count >= 0", name="count_nonnegative"),)


class TriageKnowledgeState(Base):
    """Which shipped knowledge base the tables were last refreshed from: `name` shipped, `fingerprint`
    the SHA-256 of the file's content. A start-up with the same file does nothing."""

    __tablename__ = "triage_knowledge_state"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
