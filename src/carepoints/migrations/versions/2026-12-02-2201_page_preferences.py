"""page preferences: a patient's page language beside elderly_mode

Revision ID: e5f607080901
Revises: d4e5f6070808
Create Date: 2026-12-02 22:01:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'e5f607080901'
down_revision: str | None = 'd4e5f6070808'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN (SQLite has it natively): a batch rebuild would drop `patients`, which
    # rows of other tables reference.
    op.add_column("patients", sa.Column("language", sa.String(length=8), nullable=True))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE patients DROP COLUMN language")  # native since 3.35, no rebuild
    else:
        op.drop_column("patients", "language")
