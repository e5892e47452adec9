"""Forecast runs and the capacity suggestions they make.

A run stores what the admin saw: per department the models compared on the held-back weeks with
their errors, the model chosen, the daily history and forecast (the chart) and the off-peak
windows. Its suggestions are applied by id: a guarded UPDATE (pending → applied) under a row lock
applies each once however often it is sent, and partial unique indexes allow one pending
suggestion per session and per template (a new run supersedes the older pending ones)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, Date, Float, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from carepoints.kit.db import Base
from carepoints.kit.types import UTCDateTime

_PENDING = "status = 'pending'"


class ForecastRun(Base):
    __tablename__ = "forecast_runs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str | None] = mapped_column(String(36))  # the staff user or API key id
    history_start: Mapped[date] = mapped_column(Date)  # local days of booking history read
    history_end: Mapped[date] = mapped_column(Date)
    horizon_start: Mapped[date] = mapped_column(Date)  # the local days forecast
    horizon_days: Mapped[int] = mapped_column(Integer)
    holdout_days: Mapped[int] = mapped_column(Integer)
    headroom: Mapped[str] = mapped_column(String(8))  # a decimal factor, e.g. "1.10"
    # per department: models and their held-back errors, the chosen one, daily series, off-peak windows
    result: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (
        CheckConstraint("horizon_days BETWEEN 1 AND 366", name="horizon_range"),
        Index("ix_forecast_runs_created", "created_at"),
    )


class ForecastSuggestion(Base):
    """A capacity for one future session (or one weekly template): the forecast demand, the
    capacity now, the slots taken when it was made, what fits, and the suggestion."""

    __tablename__ = "forecast_suggestions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("forecast_runs.id"))
    department_id: Mapped[str] = mapped_column(ForeignKey("departments.id"))
    kind: Mapped[str] = mapped_column(String(16))  # session | template
    session_id: Mapped[str | None] = mapped_column(ForeignKey("clinic_sessions.id"))
    template_id: Mapped[str | None] = mapped_column(ForeignKey("session_templates.id"))
    day: Mapped[date | None] = mapped_column(Date)  # a session's local day
    weekday: Mapped[int] = mapped_column(Integer)  # ISO 1..7
    start_time: Mapped[str] = mapped_column(String(5))  # local HH:MM
    end_time: Mapped[str] = mapped_column(String(5))
    owner: Mapped[str] = mapped_column(String(100))  # the clinician's or resource's name (shown beside it)
    demand: Mapped[float] = mapped_column(Float)  # forecast patients for this session (or an average day)
    current_capacity: Mapped[int] = mapped_column(Integer)
    suggested_capacity: Mapped[int] = mapped_column(Integer)
    taken: Mapped[int] = mapped_column(Integer)
    fit: Mapped[int] = mapped_column(Integer)
    capped: Mapped[bool] = mapped_column(Boolean)  # demand × headroom exceeds what fits
    status: Mapped[str] = mapped_column(String(16))  # pending | unchanged | applied | superseded
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    applied_by: Mapped[str | None] = mapped_column(String(36))

    __table_args__ = (
        CheckConstraint("kind IN ('session', 'template')", name="kind_known"),
        CheckConstraint("(session_id IS NULL) <> (template_id IS NULL)", name="one_target"),
        CheckConstraint("status IN ('pending', 'unchanged', 'applied', 'superseded')", name="status_known"),
        CheckConstraint("suggested_capacity >= 1 AND current_capacity >= 1", name="capacity_positive"),
        CheckConstraint("demand >= 0", name="demand_nonneg"),
        Index("ix_forecast_suggestions_run", "run_id", "department_id"),
        Index("uq_forecast_suggestions_pending_session", "session_id", unique=True,
              sqlite_where=text(_PENDING + " AND session_id IS NOT NULL"),
              postgresql_where=text(_PENDING + " AND session_id IS NOT NULL")),
        Index("uq_forecast_suggestions_pending_template", "template_id", unique=True,
              sqlite_where=text(_PENDING + " AND template_id IS NOT NULL"),
              postgresql_where=text(_PENDING + " AND template_id IS NOT NULL")),
    )
