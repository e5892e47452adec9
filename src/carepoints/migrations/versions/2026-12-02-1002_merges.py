"""merges

Revision ID: d4e5f6070802
Revises: d4e5f6070801
Create Date: 2026-12-02 10:02:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'd4e5f6070802'
down_revision: str | None = 'd4e5f6070801'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('patient_merges',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('duplicate_id', sa.String(length=36), nullable=False),
    sa.Column('survivor_id', sa.String(length=36), nullable=False),
    sa.Column('reason_code', sa.String(length=64), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('idempotency_key', sa.String(length=128), nullable=True),
    sa.Column('actor_kind', sa.String(length=16), nullable=False),
    sa.Column('actor_id', sa.String(length=36), nullable=False),
    sa.Column('result', sa.JSON(), nullable=False),
    sa.Column('merged_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['duplicate_id'], ['patients.id'], name=op.f('fk_patient_merges_duplicate_id_patients')),
    sa.ForeignKeyConstraint(['survivor_id'], ['patients.id'], name=op.f('fk_patient_merges_survivor_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patient_merges')),
    sa.UniqueConstraint('duplicate_id', name=op.f('uq_patient_merges_duplicate_id')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_patient_merges_idempotency_key'))
    )
    op.create_index(op.f('ix_patient_merges_survivor_id'), 'patient_merges', ['survivor_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_patient_merges_survivor_id'), table_name='patient_merges')
    op.drop_table('patient_merges')
