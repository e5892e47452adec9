"""fraud signals

Revision ID: d4e5f6070806
Revises: d4e5f6070805
Create Date: 2026-12-02 10:06:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'd4e5f6070806'
down_revision: str | None = 'd4e5f6070805'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('fraud_signals',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('patient_id', sa.String(length=36), nullable=True),
    sa.Column('staff_id', sa.String(length=200), nullable=True),
    sa.Column('subject_key', sa.String(length=240), nullable=False),
    sa.Column('window_key', sa.String(length=32), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('event_ids', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('raised_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reviewed_by_kind', sa.String(length=16), nullable=True),
    sa.Column('reviewed_by_id', sa.String(length=64), nullable=True),
    sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('action', sa.String(length=32), nullable=True),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.CheckConstraint("kind IN ('velocity', 'repeated_reading', 'implausible_reading', 'staff_outlier', "
                       "'shared_phone', 'shared_device')", name=op.f('ck_fraud_signals_kind')),
    sa.CheckConstraint("status IN ('open', 'dismissed', 'actioned')", name=op.f('ck_fraud_signals_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fraud_signals')),
    sa.UniqueConstraint('kind', 'subject_key', 'window_key',
                        name=op.f('uq_fraud_signals_kind_subject_key_window_key'))
    )
    with op.batch_alter_table('fraud_signals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fraud_signals_patient_id'), ['patient_id'], unique=False)
        batch_op.create_index('ix_fraud_signals_queue', ['status', 'id'], unique=False)
    op.create_table('fraud_scan_cursors',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('last_event_id', sa.String(length=36), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_fraud_scan_cursors'))
    )


def downgrade() -> None:
    op.drop_table('fraud_scan_cursors')
    with op.batch_alter_table('fraud_signals', schema=None) as batch_op:
        batch_op.drop_index('ix_fraud_signals_queue')
        batch_op.drop_index(batch_op.f('ix_fraud_signals_patient_id'))
    op.drop_table('fraud_signals')
