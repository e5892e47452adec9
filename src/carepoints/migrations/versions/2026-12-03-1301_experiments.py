"""experiments (assignment, variants and rule overrides)

Revision ID: f60708090a02
Revises: f60708090a01
Create Date: 2026-12-03 13:01:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'f60708090a02'
down_revision: str | None = 'f60708090a01'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name_zh", sa.String(length=200), nullable=False),
        sa.Column("name_en", sa.String(length=200), nullable=False),
        sa.Column("ethics_ref", sa.String(length=100), nullable=False),
        sa.Column("variants", sa.JSON(), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_kind", sa.String(length=16), nullable=False),
        sa.Column("created_by_id", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('draft', 'running', 'stopped')", name=op.f("ck_experiments_status")),
        sa.CheckConstraint("length(trim(ethics_ref)) > 0", name=op.f("ck_experiments_ethics_ref")),
        sa.CheckConstraint("(status = 'draft' AND started_at IS NULL AND stopped_at IS NULL) "
                           "OR (status = 'running' AND started_at IS NOT NULL AND stopped_at IS NULL) "
                           "OR (status = 'stopped' AND started_at IS NOT NULL AND stopped_at >= started_at)",
                           name=op.f("ck_experiments_lifecycle")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiments")),
        sa.UniqueConstraint("code", name=op.f("uq_experiments_code")),
    )
    op.create_index("ix_experiments_status", "experiments", ["status"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_experiments_status", table_name="experiments")
    op.drop_table("experiments")
