"""adjustments

Revision ID: d4e5f6070803
Revises: d4e5f6070802
Create Date: 2026-12-02 10:03:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'd4e5f6070803'
down_revision: str | None = 'd4e5f6070802'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('adjustments',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.Column('reason_code', sa.String(length=64), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('idempotency_key', sa.String(length=200), nullable=True),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('created_by_kind', sa.String(length=16), nullable=False),
    sa.Column('created_by_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decided_by_kind', sa.String(length=16), nullable=True),
    sa.Column('decided_by_id', sa.String(length=64), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decision_note', sa.String(length=500), nullable=True),
    sa.Column('transfer_id', sa.String(length=36), nullable=True),
    sa.Column('balance_after', sa.Integer(), nullable=True),
    sa.CheckConstraint('points <> 0', name=op.f('ck_adjustments_points')),
    sa.CheckConstraint("status IN ('pending', 'posted', 'rejected', 'expired')", name=op.f('ck_adjustments_status')),
    sa.CheckConstraint('decided_by_id IS NULL OR decided_by_id <> created_by_id', name=op.f('ck_adjustments_checker')),
    sa.CheckConstraint("(status = 'posted') = (transfer_id IS NOT NULL)", name=op.f('ck_adjustments_posted')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_adjustments')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_adjustments_idempotency_key'))
    )
    with op.batch_alter_table('adjustments', schema=None) as batch_op:
        batch_op.create_index('ix_adjustments_queue', ['status', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_adjustments_patient_id'), ['patient_id'], unique=False)
    op.create_table('adjustment_operator_days',
    sa.Column('operator_id', sa.String(length=64), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('used', sa.Integer(), nullable=False),
    sa.Column('cap', sa.Integer(), nullable=False),
    sa.CheckConstraint('used >= 0 AND used <= cap', name=op.f('ck_adjustment_operator_days_used')),
    sa.PrimaryKeyConstraint('operator_id', 'day', name=op.f('pk_adjustment_operator_days'))
    )


def downgrade() -> None:
    op.drop_table('adjustment_operator_days')
    with op.batch_alter_table('adjustments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_adjustments_patient_id'))
        batch_op.drop_index('ix_adjustments_queue')
    op.drop_table('adjustments')
