"""services recommendations: per-patient switch

Revision ID: f60708090a0c
Revises: f60708090a0b
Create Date: 2026-12-08 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'f60708090a0c'
down_revision: str | None = 'f60708090a0b'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "recommendation_settings",
        sa.Column("patient_id", sa.String(length=36), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"],
                                name=op.f("fk_recommendation_settings_patient_id_patients")),
        sa.PrimaryKeyConstraint("patient_id", name=op.f("pk_recommendation_settings")),
    )


def downgrade() -> None:
    op.drop_table("recommendation_settings")
