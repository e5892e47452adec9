"""analytics visit and care roll-ups

Revision ID: f60708090a04
Revises: f60708090a03
Create Date: 2026-12-03 13:03:00
"""
from collections.abc import Sequence

revision: str = 'f60708090a04'
down_revision: str | None = 'f60708090a03'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass  # filled in by its area


def downgrade() -> None:
    pass
