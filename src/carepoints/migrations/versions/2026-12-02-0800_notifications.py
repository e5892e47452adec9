"""notifications: deliveries, inbox, preferences, webhooks

Revision ID: b2c3d4e5f601
Revises: a1b2c3d4e503
Create Date: 2026-12-02 08:00:00
"""
from collections.abc import Sequence

revision: str = 'b2c3d4e5f601'
down_revision: str | None = 'a1b2c3d4e503'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
