"""engagement: community posts, photo tasks and photos, invites

Revision ID: b2c3d4e5f605
Revises: b2c3d4e5f604
Create Date: 2026-12-02 08:04:00
"""
from collections.abc import Sequence

revision: str = 'b2c3d4e5f605'
down_revision: str | None = 'b2c3d4e5f604'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
