"""governance

Revision ID: d4e5f6070805
Revises: d4e5f6070804
Create Date: 2026-12-02 10:05:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'd4e5f6070805'
down_revision: str | None = 'd4e5f6070804'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('programme_drafts',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('base_version', sa.Integer(), nullable=False),
    sa.Column('document', sa.JSON(), nullable=False),
    sa.Column('summary_zh', sa.String(length=500), nullable=False),
    sa.Column('summary_en', sa.String(length=500), nullable=False),
    sa.Column('change_kinds', sa.JSON(), nullable=False),
    sa.Column('created_by_kind', sa.String(length=16), nullable=False),
    sa.Column('created_by_id', sa.String(length=36), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('activate_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_by_kind', sa.String(length=16), nullable=True),
    sa.Column('decided_by_id', sa.String(length=36), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decision_note', sa.String(length=500), nullable=True),
    sa.Column('installed_version', sa.Integer(), nullable=True),
    sa.Column('announcement', sa.String(length=16), nullable=False),
    sa.Column('announce_cursor', sa.String(length=36), nullable=True),
    sa.Column('announced_count', sa.Integer(), nullable=False),
    sa.Column('announced_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('draft', 'approved', 'rejected', 'withdrawn')",
                       name=op.f('ck_programme_drafts_status')),
    sa.CheckConstraint("announcement IN ('none', 'pending', 'done')", name=op.f('ck_programme_drafts_announcement')),
    sa.CheckConstraint("decided_by_id IS NULL OR decided_by_kind <> created_by_kind "
                       "OR decided_by_id <> created_by_id", name=op.f('ck_programme_drafts_checker_not_maker')),
    sa.CheckConstraint("status <> 'approved' OR (installed_version IS NOT NULL AND decided_by_id IS NOT NULL)",
                       name=op.f('ck_programme_drafts_approved_installed')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_programme_drafts')),
    sa.UniqueConstraint('installed_version', name=op.f('uq_programme_drafts_installed_version'))
    )
    op.create_index('ix_programme_drafts_status', 'programme_drafts', ['status', 'created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_programme_drafts_status', table_name='programme_drafts')
    op.drop_table('programme_drafts')
