"""engagement: care alerts, measurements, conditions, medication plans

Revision ID: b2c3d4e5f602
Revises: b2c3d4e5f601
Create Date: 2026-12-02 08:01:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'b2c3d4e5f602'
down_revision: str | None = 'b2c3d4e5f601'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('care_alerts',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('severity', sa.String(length=16), nullable=False),
    sa.Column('source_ref', sa.String(length=200), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('assigned_to', sa.String(length=36), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolution', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_care_alerts_patient_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_care_alerts')),
    sa.UniqueConstraint('kind', 'source_ref', name=op.f('uq_care_alerts_kind_source_ref'))
    )
    with op.batch_alter_table('care_alerts', schema=None) as batch_op:
        batch_op.create_index('ix_care_alerts_patient', ['patient_id', 'created_at'], unique=False)
        batch_op.create_index('ix_care_alerts_queue', ['status', 'created_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('care_alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_care_alerts_queue')
        batch_op.drop_index('ix_care_alerts_patient')

    op.drop_table('care_alerts')
