"""services triage: the shipped knowledge base's fingerprint (start-up refreshes unedited rows)

Revision ID: f60708090b06
Revises: f60708090a0e
Create Date: 2026-12-08 14:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'f60708090b06'
down_revision: str | None = 'f60708090a0e'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "triage_knowledge_state",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_triage_knowledge_state")),
    )


def downgrade() -> None:
    op.drop_table("triage_knowledge_state")
