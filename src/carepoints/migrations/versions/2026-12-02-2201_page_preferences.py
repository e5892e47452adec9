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
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("language", sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.drop_column("language")
