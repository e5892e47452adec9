"""engagement: questionnaires, follow-up plans, surveys

Revision ID: b2c3d4e5f604
Revises: b2c3d4e5f603
Create Date: 2026-12-02 08:03:00
"""
from collections.abc import Sequence

revision: str = 'b2c3d4e5f604'
down_revision: str | None = 'b2c3d4e5f603'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
