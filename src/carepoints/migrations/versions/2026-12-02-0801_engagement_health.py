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

    op.create_table('measurements',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('systolic', sa.Integer(), nullable=True),
    sa.Column('diastolic', sa.Integer(), nullable=True),
    sa.Column('pulse', sa.Integer(), nullable=True),
    sa.Column('glucose_mmol_l', sa.Float(), nullable=True),
    sa.Column('provenance', sa.String(length=16), nullable=False),
    sa.Column('self_monitored', sa.Boolean(), nullable=False),
    sa.Column('taken_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('local_day', sa.Date(), nullable=False),
    sa.Column('abnormal', sa.Boolean(), nullable=False),
    sa.Column('reasons', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_measurements')),
    sa.UniqueConstraint('event_id', name=op.f('uq_measurements_event_id'))
    )
    with op.batch_alter_table('measurements', schema=None) as batch_op:
        batch_op.create_index('ix_measurements_patient', ['patient_id', 'taken_at'], unique=False)
        batch_op.create_index('ix_measurements_self_day', ['self_monitored', 'local_day', 'patient_id'], unique=False)

    op.create_table('medication_plans',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('medicine_name', sa.String(length=100), nullable=False),
    sa.Column('dose_text', sa.String(length=100), nullable=True),
    sa.Column('times', sa.JSON(), nullable=False),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('end_date', sa.Date(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('stopped_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_medication_plans_patient_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_medication_plans'))
    )
    with op.batch_alter_table('medication_plans', schema=None) as batch_op:
        batch_op.create_index('ix_medication_plans_patient', ['patient_id', 'status'], unique=False)

    op.create_table('patient_conditions',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('diagnosed_on', sa.Date(), nullable=True),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_patient_conditions_patient_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patient_conditions')),
    sa.UniqueConstraint('patient_id', 'code', name=op.f('uq_patient_conditions_patient_id_code'))
    )
    op.create_table('medication_doses',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('plan_id', sa.String(length=36), nullable=False),
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('scheduled_for', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reminded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('taken_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('event_id', sa.String(length=36), nullable=True),
    sa.ForeignKeyConstraint(['plan_id'], ['medication_plans.id'], name=op.f('fk_medication_doses_plan_id_medication_plans')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_medication_doses')),
    sa.UniqueConstraint('plan_id', 'scheduled_for', name=op.f('uq_medication_doses_plan_id_scheduled_for'))
    )



def downgrade() -> None:
    op.drop_table('medication_doses')
    op.drop_table('patient_conditions')
    with op.batch_alter_table('medication_plans', schema=None) as batch_op:
        batch_op.drop_index('ix_medication_plans_patient')

    op.drop_table('medication_plans')
    with op.batch_alter_table('measurements', schema=None) as batch_op:
        batch_op.drop_index('ix_measurements_self_day')
        batch_op.drop_index('ix_measurements_patient')

    op.drop_table('measurements')
    with op.batch_alter_table('care_alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_care_alerts_queue')
        batch_op.drop_index('ix_care_alerts_patient')

    op.drop_table('care_alerts')
