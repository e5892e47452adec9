"""analytics points roll-ups: daily ledger figures, patient-days and distinct active patients

Also two read indexes on other domains' tables for the roll-ups: `transfers.at` (a day's ledger
entries) and `events.occurred_at` (a day's events). Created in place, no table is rebuilt.

Revision ID: f60708090a03
Revises: f60708090a02
Create Date: 2026-12-03 13:02:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'f60708090a03'
down_revision: str | None = 'f60708090a02'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "analytics_points_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("institution_id", sa.String(length=36), nullable=False),
        sa.Column("f_dim", sa.String(length=16), nullable=False),
        sa.Column("f_key", sa.String(length=64), nullable=False),
        sa.Column("b_dim", sa.String(length=16), nullable=False),
        sa.Column("b_key", sa.String(length=96), nullable=False),
        sa.Column("issued", sa.Integer(), nullable=False),
        sa.Column("penalised", sa.Integer(), nullable=False),
        sa.Column("redeemed", sa.Integer(), nullable=False),
        sa.Column("expired", sa.Integer(), nullable=False),
        sa.Column("adjusted", sa.Integer(), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("budget_fen", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "institution_id", "f_dim", "f_key", "b_dim", "b_key",
                                name=op.f("pk_analytics_points_daily")),
    )
    op.create_index("ix_analytics_points_daily_cut", "analytics_points_daily", ["f_dim", "f_key", "b_dim", "day"],
                    unique=False, postgresql_include=["institution_id", "b_key", "issued", "penalised", "redeemed",
                                                      "expired", "adjusted", "entries", "budget_fen"])
    op.create_table(
        "analytics_participation",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("patient_id", sa.String(length=36), nullable=False),
        sa.Column("institution_id", sa.String(length=36), nullable=False),
        sa.Column("department_id", sa.String(length=64), nullable=False),
        sa.Column("clinician_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("condition", sa.String(length=32), nullable=False),
        sa.Column("age_band", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("day", "patient_id", "institution_id", "department_id", "clinician_id", "channel",
                                "condition", "age_band", name=op.f("pk_analytics_participation")),
    )
    op.create_table(
        "analytics_active_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("institution_id", sa.String(length=36), nullable=False),
        sa.Column("dim", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=96), nullable=False),
        sa.Column("patients", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "institution_id", "dim", "key", name=op.f("pk_analytics_active_daily")),
    )
    op.create_table(
        "analytics_active_periods",
        sa.Column("grain", sa.String(length=8), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("institution_id", sa.String(length=36), nullable=False),
        sa.Column("dim", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=96), nullable=False),
        sa.Column("patients", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("grain", "period_start", "institution_id", "dim", "key",
                                name=op.f("pk_analytics_active_periods")),
    )
    op.create_index("ix_transfers_at", "transfers", ["at"], unique=False)
    op.create_index("ix_events_occurred_at", "events", ["occurred_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_events_occurred_at", table_name="events")
    op.drop_index("ix_transfers_at", table_name="transfers")
    op.drop_table("analytics_active_periods")
    op.drop_table("analytics_active_daily")
    op.drop_table("analytics_participation")
    op.drop_index("ix_analytics_points_daily_cut", table_name="analytics_points_daily")
    op.drop_table("analytics_points_daily")
