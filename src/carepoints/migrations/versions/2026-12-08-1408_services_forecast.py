"""services forecast (智能号源): suggestions

Revision ID: f60708090a0d
Revises: f60708090a0c
Create Date: 2026-12-08 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'f60708090a0d'
down_revision: str | None = 'f60708090a0c'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_PENDING = "status = 'pending'"


def upgrade() -> None:
    op.create_table(
        "forecast_runs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=36), nullable=True),
        sa.Column("history_start", sa.Date(), nullable=False),
        sa.Column("history_end", sa.Date(), nullable=False),
        sa.Column("horizon_start", sa.Date(), nullable=False),
        sa.Column("horizon_days", sa.Integer(), nullable=False),
        sa.Column("holdout_days", sa.Integer(), nullable=False),
        sa.Column("headroom", sa.String(length=8), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.CheckConstraint("horizon_days BETWEEN 1 AND 366", name=op.f("ck_forecast_runs_horizon_range")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_forecast_runs")),
    )
    op.create_index("ix_forecast_runs_created", "forecast_runs", ["created_at"])
    op.create_table(
        "forecast_suggestions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("department_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("session_id", sa.String(length=36), nullable=True),
        sa.Column("template_id", sa.String(length=36), nullable=True),
        sa.Column("day", sa.Date(), nullable=True),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.Column("start_time", sa.String(length=5), nullable=False),
        sa.Column("end_time", sa.String(length=5), nullable=False),
        sa.Column("owner", sa.String(length=100), nullable=False),
        sa.Column("demand", sa.Float(), nullable=False),
        sa.Column("current_capacity", sa.Integer(), nullable=False),
        sa.Column("suggested_capacity", sa.Integer(), nullable=False),
        sa.Column("taken", sa.Integer(), nullable=False),
        sa.Column("fit", sa.Integer(), nullable=False),
        sa.Column("capped", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("applied_by", sa.String(length=36), nullable=True),
        sa.CheckConstraint("kind IN ('session', 'template')", name=op.f("ck_forecast_suggestions_kind_known")),
        sa.CheckConstraint("(session_id IS NULL) <> (template_id IS NULL)",
                           name=op.f("ck_forecast_suggestions_one_target")),
        sa.CheckConstraint("status IN ('pending', 'unchanged', 'applied', 'superseded')",
                           name=op.f("ck_forecast_suggestions_status_known")),
        sa.CheckConstraint("suggested_capacity >= 1 AND current_capacity >= 1",
                           name=op.f("ck_forecast_suggestions_capacity_positive")),
        sa.CheckConstraint("demand >= 0", name=op.f("ck_forecast_suggestions_demand_nonneg")),
        sa.ForeignKeyConstraint(["run_id"], ["forecast_runs.id"],
                                name=op.f("fk_forecast_suggestions_run_id_forecast_runs")),
        sa.ForeignKeyConstraint(["department_id"], ["departments.id"],
                                name=op.f("fk_forecast_suggestions_department_id_departments")),
        sa.ForeignKeyConstraint(["session_id"], ["clinic_sessions.id"],
                                name=op.f("fk_forecast_suggestions_session_id_clinic_sessions")),
        sa.ForeignKeyConstraint(["template_id"], ["session_templates.id"],
                                name=op.f("fk_forecast_suggestions_template_id_session_templates")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_forecast_suggestions")),
    )
    op.create_index("ix_forecast_suggestions_run", "forecast_suggestions", ["run_id", "department_id"])
    for column in ("session_id", "template_id"):
        where = sa.text(f"{_PENDING} AND {column} IS NOT NULL")
        op.create_index(f"uq_forecast_suggestions_pending_{column.removesuffix('_id')}", "forecast_suggestions",
                        [column], unique=True, sqlite_where=where, postgresql_where=where)


def downgrade() -> None:
    op.drop_index("uq_forecast_suggestions_pending_template", table_name="forecast_suggestions")
    op.drop_index("uq_forecast_suggestions_pending_session", table_name="forecast_suggestions")
    op.drop_index("ix_forecast_suggestions_run", table_name="forecast_suggestions")
    op.drop_table("forecast_suggestions")
    op.drop_index("ix_forecast_runs_created", table_name="forecast_runs")
    op.drop_table("forecast_runs")
