"""engagement: questionnaires, follow-up plans, surveys

Revision ID: b2c3d4e5f604
Revises: b2c3d4e5f603
Create Date: 2026-12-02 08:03:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'b2c3d4e5f604'
down_revision: str | None = 'b2c3d4e5f603'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('questionnaires',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('title', sa.JSON(), nullable=False),
    sa.Column('purpose', sa.String(length=16), nullable=False),
    sa.Column('questions', sa.JSON(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_questionnaires')),
    sa.UniqueConstraint('code', 'version', name=op.f('uq_questionnaires_code_version'))
    )
    op.create_table('followup_plans',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('trigger', sa.String(length=16), nullable=False),
    sa.Column('occurred_on', sa.Date(), nullable=False),
    sa.Column('questionnaire_code', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('encounter_id', sa.String(length=100), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('cancel_reason', sa.String(length=40), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_followup_plans_patient_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_followup_plans')),
    sa.UniqueConstraint('patient_id', 'trigger', 'encounter_id', name=op.f('uq_followup_plans_patient_id_trigger_encounter_id'))
    )
    with op.batch_alter_table('followup_plans', schema=None) as batch_op:
        batch_op.create_index('ix_followup_plans_patient', ['patient_id', 'created_at'], unique=False)
    op.create_table('followup_steps',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('plan_id', sa.String(length=36), nullable=False),
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('offset_days', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('overdue_on', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('response_id', sa.String(length=36), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('due_notified_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('overdue_flagged_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_followup_steps_patient_id_patients')),
    sa.ForeignKeyConstraint(['plan_id'], ['followup_plans.id'], name=op.f('fk_followup_steps_plan_id_followup_plans')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_followup_steps')),
    sa.UniqueConstraint('plan_id', 'offset_days', name=op.f('uq_followup_steps_plan_id_offset_days'))
    )
    with op.batch_alter_table('followup_steps', schema=None) as batch_op:
        batch_op.create_index('ix_followup_steps_overdue', ['status', 'overdue_on'], unique=False)
        batch_op.create_index('ix_followup_steps_queue', ['status', 'due_on'], unique=False)
    op.create_table('questionnaire_responses',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('questionnaire_id', sa.String(length=36), nullable=False),
    sa.Column('step_id', sa.String(length=36), nullable=True),
    sa.Column('survey_period', sa.String(length=7), nullable=True),
    sa.Column('answers', sa.JSON(), nullable=False),
    sa.Column('answers_digest', sa.String(length=64), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('recorded_by', sa.String(length=36), nullable=True),
    sa.Column('actor_kind', sa.String(length=16), nullable=False),
    sa.Column('actor_id', sa.String(length=36), nullable=False),
    sa.Column('idempotency_key', sa.String(length=100), nullable=True),
    sa.Column('abnormal', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_questionnaire_responses_patient_id_patients')),
    sa.ForeignKeyConstraint(['questionnaire_id'], ['questionnaires.id'], name=op.f('fk_questionnaire_responses_questionnaire_id_questionnaires')),
    sa.ForeignKeyConstraint(['step_id'], ['followup_steps.id'], name=op.f('fk_questionnaire_responses_step_id_followup_steps')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_questionnaire_responses')),
    sa.UniqueConstraint('patient_id', 'survey_period', name=op.f('uq_questionnaire_responses_patient_id_survey_period')),
    sa.UniqueConstraint('step_id', name=op.f('uq_questionnaire_responses_step_id'))
    )
    with op.batch_alter_table('questionnaire_responses', schema=None) as batch_op:
        batch_op.create_index('ix_questionnaire_responses_patient', ['patient_id', 'created_at'], unique=False)

    # ### end Alembic commands ###


def downgrade() -> None:
    op.drop_table('questionnaire_responses')
    op.drop_table('followup_steps')
    op.drop_table('followup_plans')
    op.drop_table('questionnaires')
