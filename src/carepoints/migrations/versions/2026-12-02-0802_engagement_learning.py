"""engagement: education, lectures, reviews, community, photo tasks, profile, invites

Revision ID: b2c3d4e5f603
Revises: b2c3d4e5f602
Create Date: 2026-12-02 08:02:00
"""
from collections.abc import Sequence

revision: str = 'b2c3d4e5f603'
down_revision: str | None = 'b2c3d4e5f602'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
