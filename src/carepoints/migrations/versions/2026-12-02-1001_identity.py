"""identity

Revision ID: d4e5f6070801
Revises: d4e5f6070800
Create Date: 2026-12-02 10:01:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'd4e5f6070801'
down_revision: str | None = 'd4e5f6070800'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('patient_verifications',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('document_kind', sa.String(length=24), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('checker', sa.String(length=32), nullable=True),
    sa.Column('actor_kind', sa.String(length=16), nullable=False),
    sa.Column('actor_id', sa.String(length=36), nullable=False),
    sa.Column('verified_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("method IN ('desk_document', 'external')", name=op.f('ck_patient_verifications_method')),
    sa.CheckConstraint("outcome IN ('verified', 'mismatch')", name=op.f('ck_patient_verifications_outcome')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'],
                            name=op.f('fk_patient_verifications_patient_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patient_verifications'))
    )
    with op.batch_alter_table('patient_verifications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_patient_verifications_patient_id'), ['patient_id'], unique=False)

    op.create_table('duplicate_candidates',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('patient_a', sa.String(length=36), nullable=False),
    sa.Column('patient_b', sa.String(length=36), nullable=False),
    sa.Column('reason', sa.String(length=24), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('detected_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reviewed_by', sa.String(length=36), nullable=True),
    sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.CheckConstraint('patient_a < patient_b', name=op.f('ck_duplicate_candidates_ordered')),
    sa.CheckConstraint("reason IN ('national_id', 'name_birth_phone')", name=op.f('ck_duplicate_candidates_reason')),
    sa.CheckConstraint("status IN ('open', 'dismissed', 'merged')", name=op.f('ck_duplicate_candidates_status')),
    sa.ForeignKeyConstraint(['patient_a'], ['patients.id'], name=op.f('fk_duplicate_candidates_patient_a_patients')),
    sa.ForeignKeyConstraint(['patient_b'], ['patients.id'], name=op.f('fk_duplicate_candidates_patient_b_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_duplicate_candidates')),
    sa.UniqueConstraint('patient_a', 'patient_b', name=op.f('uq_duplicate_candidates_patient_a_patient_b'))
    )
    with op.batch_alter_table('duplicate_candidates', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_duplicate_candidates_patient_b'), ['patient_b'], unique=False)
        batch_op.create_index('ix_duplicate_candidates_review', ['status', 'id'], unique=False)

    op.create_table('patient_status_changes',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('status_from', sa.String(length=16), nullable=False),
    sa.Column('status_to', sa.String(length=16), nullable=False),
    sa.Column('reason_code', sa.String(length=64), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('actor_kind', sa.String(length=16), nullable=False),
    sa.Column('actor_id', sa.String(length=36), nullable=False),
    sa.Column('outcome', sa.JSON(), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'],
                            name=op.f('fk_patient_status_changes_patient_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patient_status_changes'))
    )
    with op.batch_alter_table('patient_status_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_patient_status_changes_patient_id'), ['patient_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('patient_status_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_patient_status_changes_patient_id'))
    op.drop_table('patient_status_changes')
    with op.batch_alter_table('duplicate_candidates', schema=None) as batch_op:
        batch_op.drop_index('ix_duplicate_candidates_review')
        batch_op.drop_index(batch_op.f('ix_duplicate_candidates_patient_b'))
    op.drop_table('duplicate_candidates')
    with op.batch_alter_table('patient_verifications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_patient_verifications_patient_id'))
    op.drop_table('patient_verifications')
