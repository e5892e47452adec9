"""tiers: earned-points tiers, advisors, tier history

Revision ID: a1b2c3d4e502
Revises: a1b2c3d4e501
Create Date: 2026-12-01 23:31:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'a1b2c3d4e502'
down_revision: str | None = 'a1b2c3d4e501'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('tier_changes',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('from_tier', sa.String(length=16), nullable=False),
    sa.Column('to_tier', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=16), nullable=False),
    sa.Column('earned', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_tier_changes_patient_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tier_changes'))
    )
    with op.batch_alter_table('tier_changes', schema=None) as batch_op:
        batch_op.create_index('ix_tier_changes_patient', ['patient_id', 'at'], unique=False)

    op.create_table('patient_advisors',
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('staff_user_id', sa.String(length=36), nullable=False),
    sa.Column('assigned_by', sa.String(length=36), nullable=False),
    sa.Column('assigned_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_patient_advisors_patient_id_patients')),
    sa.ForeignKeyConstraint(['staff_user_id'], ['staff_users.id'],
                            name=op.f('fk_patient_advisors_staff_user_id_staff_users')),
    sa.PrimaryKeyConstraint('patient_id', name=op.f('pk_patient_advisors'))
    )
    with op.batch_alter_table('patient_advisors', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_patient_advisors_staff_user_id'), ['staff_user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('patient_advisors', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_patient_advisors_staff_user_id'))
    op.drop_table('patient_advisors')

    with op.batch_alter_table('tier_changes', schema=None) as batch_op:
        batch_op.drop_index('ix_tier_changes_patient')
    op.drop_table('tier_changes')
