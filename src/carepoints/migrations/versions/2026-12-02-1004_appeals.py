"""appeals

Revision ID: d4e5f6070804
Revises: d4e5f6070803
Create Date: 2026-12-02 10:04:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'd4e5f6070804'
down_revision: str | None = 'd4e5f6070803'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('appeals',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('subject_kind', sa.String(length=16), nullable=False),
    sa.Column('subject_id', sa.String(length=36), nullable=False),
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deadline', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by_kind', sa.String(length=16), nullable=False),
    sa.Column('created_by_id', sa.String(length=64), nullable=False),
    sa.Column('decided_by_kind', sa.String(length=16), nullable=True),
    sa.Column('decided_by_id', sa.String(length=64), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decision_note', sa.String(length=500), nullable=True),
    sa.CheckConstraint("subject_kind IN ('penalty', 'suspension')", name=op.f('ck_appeals_subject_kind')),
    sa.CheckConstraint("reason IN ('hospitalised', 'session_cancelled_unrecorded', 'wrong_patient', 'other')",
                       name=op.f('ck_appeals_reason')),
    sa.CheckConstraint("status IN ('open', 'upheld', 'reversed')", name=op.f('ck_appeals_status')),
    sa.CheckConstraint("(status = 'open') = (decided_by_id IS NULL)", name=op.f('ck_appeals_decided')),
    sa.CheckConstraint("decided_by_id IS NULL OR (decided_by_id <> created_by_id AND decided_by_id <> patient_id)",
                       name=op.f('ck_appeals_decider')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_appeals'))
    )
    with op.batch_alter_table('appeals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_appeals_patient_id'), ['patient_id'], unique=False)
        batch_op.create_index('ix_appeals_queue', ['status', 'id'], unique=False)
        batch_op.create_index('uq_appeals_open_subject', ['subject_kind', 'subject_id'], unique=True,
                              sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'"))


def downgrade() -> None:
    with op.batch_alter_table('appeals', schema=None) as batch_op:
        batch_op.drop_index('uq_appeals_open_subject', sqlite_where=sa.text("status = 'open'"),
                            postgresql_where=sa.text("status = 'open'"))
        batch_op.drop_index('ix_appeals_queue')
        batch_op.drop_index(batch_op.f('ix_appeals_patient_id'))
    op.drop_table('appeals')
