"""FHIR resource versions

Revision ID: c3d4e5f60706
Revises: c3d4e5f60705
Create Date: 2026-12-02 09:05:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'c3d4e5f60706'
down_revision: str | None = 'c3d4e5f60705'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('fhir_resources',
    sa.Column('source', sa.String(length=100), nullable=False),
    sa.Column('resource_type', sa.String(length=40), nullable=False),
    sa.Column('resource_id', sa.String(length=200), nullable=False),
    sa.Column('version', sa.String(length=64), nullable=True),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('event_source_key', sa.String(length=200), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('source', 'resource_type', 'resource_id', name=op.f('pk_fhir_resources'))
    )


def downgrade() -> None:
    op.drop_table('fhir_resources')
