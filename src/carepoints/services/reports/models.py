"""Diagnostic reports (检查检验报告) and their results. One row per report as the sender names it
(source, source id); an amended or corrected version replaces the results and raises `version`.
Conclusions and values are health data: stored here, never logged or put in audit rows."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from carepoints.kit.db import Base
from carepoints.kit.types import UTCDateTime


class DiagnosticReport(Base):
    """A report: what was examined, when it was issued and its status. `held` marks a report
    with a critical result kept from the patient until a clinician acknowledges its care alert
    (or the configured delay passes); `released_at` is when the patient could first see it."""

    __tablename__ = "diagnostic_reports"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"))
    institution_id: Mapped[str | None] = mapped_column(ForeignKey("institutions.id"))
    source: Mapped[str] = mapped_column(String(100))
    source_id: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(16))  # lab | imaging | other
    code: Mapped[str] = mapped_column(String(64))
    code_system: Mapped[str | None] = mapped_column(String(200))
    display: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20))  # ReportStatus
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    conclusion: Mapped[str | None] = mapped_column(Text)
    performer: Mapped[str | None] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    abnormal: Mapped[bool] = mapped_column(Boolean)
    critical: Mapped[bool] = mapped_column(Boolean)
    held: Mapped[bool] = mapped_column(Boolean)
    alert_id: Mapped[str | None] = mapped_column(String(36))  # the care alert of a critical version
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # the patient opened this version
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("source", "source_id"),
        Index("ix_diagnostic_reports_patient", "patient_id", "issued_at"),
        Index("ix_diagnostic_reports_held", "held"),
    )


class DiagnosticResult(Base):
    """One result of a report's current version: a number or a text, its reference range and
    its interpretation flag (N, H, L, HH, LL, A, critical), as sent or computed from the range."""

    __tablename__ = "diagnostic_results"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    report_id: Mapped[str] = mapped_column(ForeignKey("diagnostic_reports.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(64))
    display: Mapped[str] = mapped_column(String(200))
    value_number: Mapped[float | None] = mapped_column(Float)
    value_text: Mapped[str | None] = mapped_column(String(500))
    unit: Mapped[str | None] = mapped_column(String(40))
    range_low: Mapped[float | None] = mapped_column(Float)
    range_high: Mapped[float | None] = mapped_column(Float)
    range_text: Mapped[str | None] = mapped_column(String(200))
    flag: Mapped[str | None] = mapped_column(String(8))

    __table_args__ = (UniqueConstraint("report_id", "position"),)
