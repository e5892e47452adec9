"""engagement: education, lectures, reviews, community, photo tasks, profile, invites

Revision ID: b2c3d4e5f603
Revises: b2c3d4e5f602
Create Date: 2026-12-02 08:02:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'b2c3d4e5f603'
down_revision: str | None = 'b2c3d4e5f602'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('education_items',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('title', sa.JSON(), nullable=False),
    sa.Column('body_url', sa.String(length=2000), nullable=True),
    sa.Column('body_text', sa.Text(), nullable=True),
    sa.Column('duration_seconds', sa.Integer(), nullable=False),
    sa.Column('quiz', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_education_items'))
    )
    with op.batch_alter_table('education_items', schema=None) as batch_op:
        batch_op.create_index('ix_education_items_status', ['status', 'published_at'], unique=False)

    op.create_table('education_labels',
    sa.Column('item_id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('value', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['education_items.id'], name=op.f('fk_education_labels_item_id_education_items')),
    sa.PrimaryKeyConstraint('item_id', 'kind', 'value', name=op.f('pk_education_labels'))
    )
    with op.batch_alter_table('education_labels', schema=None) as batch_op:
        batch_op.create_index('ix_education_labels_value', ['kind', 'value'], unique=False)

    op.create_table('lectures',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('title', sa.JSON(), nullable=False),
    sa.Column('place', sa.String(length=200), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('seats', sa.Integer(), nullable=False),
    sa.Column('taken', sa.Integer(), nullable=False),
    sa.Column('institution_id', sa.String(length=36), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('taken >= 0 AND taken <= seats', name=op.f('ck_lectures_seats_taken')),
    sa.ForeignKeyConstraint(['institution_id'], ['institutions.id'], name=op.f('fk_lectures_institution_id_institutions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lectures'))
    )
    with op.batch_alter_table('lectures', schema=None) as batch_op:
        batch_op.create_index('ix_lectures_starts_at', ['starts_at'], unique=False)

    op.create_table('profile_items',
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('item', sa.String(length=32), nullable=False),
    sa.Column('value', sa.JSON(), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_profile_items_patient_id_patients')),
    sa.PrimaryKeyConstraint('patient_id', 'item', name=op.f('pk_profile_items'))
    )
    op.create_table('quiz_attempts',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('item_id', sa.String(length=36), nullable=False),
    sa.Column('item_version', sa.Integer(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=128), nullable=True),
    sa.Column('request_digest', sa.String(length=64), nullable=False),
    sa.Column('answers', sa.JSON(), nullable=False),
    sa.Column('correct_count', sa.Integer(), nullable=False),
    sa.Column('question_count', sa.Integer(), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('pass_mark', sa.Integer(), nullable=False),
    sa.Column('passed', sa.Boolean(), nullable=False),
    sa.Column('watched_seconds', sa.Integer(), nullable=True),
    sa.Column('outcome', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['education_items.id'], name=op.f('fk_quiz_attempts_item_id_education_items')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_quiz_attempts_patient_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quiz_attempts')),
    sa.UniqueConstraint('patient_id', 'idempotency_key', name=op.f('uq_quiz_attempts_patient_id_idempotency_key'))
    )
    with op.batch_alter_table('quiz_attempts', schema=None) as batch_op:
        batch_op.create_index('ix_quiz_attempts_patient_item', ['patient_id', 'item_id', 'created_at'], unique=False)

    op.create_table('education_completions',
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('item_id', sa.String(length=36), nullable=False),
    sa.Column('attempt_id', sa.String(length=36), nullable=False),
    sa.Column('event_id', sa.String(length=36), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['attempt_id'], ['quiz_attempts.id'], name=op.f('fk_education_completions_attempt_id_quiz_attempts')),
    sa.ForeignKeyConstraint(['item_id'], ['education_items.id'], name=op.f('fk_education_completions_item_id_education_items')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_education_completions_patient_id_patients')),
    sa.PrimaryKeyConstraint('patient_id', 'item_id', name=op.f('pk_education_completions'))
    )
    op.create_table('lecture_attendances',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('lecture_id', sa.String(length=36), nullable=False),
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('walk_in', sa.Boolean(), nullable=False),
    sa.Column('signed_in_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('outcome', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['lecture_id'], ['lectures.id'], name=op.f('fk_lecture_attendances_lecture_id_lectures')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_lecture_attendances_patient_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lecture_attendances')),
    sa.UniqueConstraint('lecture_id', 'patient_id', name=op.f('uq_lecture_attendances_lecture_id_patient_id'))
    )
    op.create_table('lecture_registrations',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('lecture_id', sa.String(length=36), nullable=False),
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['lecture_id'], ['lectures.id'], name=op.f('fk_lecture_registrations_lecture_id_lectures')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_lecture_registrations_patient_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lecture_registrations')),
    sa.UniqueConstraint('lecture_id', 'patient_id', name=op.f('uq_lecture_registrations_lecture_id_patient_id'))
    )
    op.create_table('reviews',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('appointment_id', sa.String(length=36), nullable=False),
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('rating', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('repeat_of', sa.String(length=36), nullable=True),
    sa.Column('similarity', sa.Integer(), nullable=True),
    sa.Column('outcome', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('rating >= 1 AND rating <= 5', name=op.f('ck_reviews_rating_range')),
    sa.ForeignKeyConstraint(['appointment_id'], ['appointments.id'], name=op.f('fk_reviews_appointment_id_appointments')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_reviews_patient_id_patients')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reviews')),
    sa.UniqueConstraint('appointment_id', name=op.f('uq_reviews_appointment_id'))
    )
    with op.batch_alter_table('reviews', schema=None) as batch_op:
        batch_op.create_index('ix_reviews_patient', ['patient_id', 'created_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('reviews', schema=None) as batch_op:
        batch_op.drop_index('ix_reviews_patient')

    op.drop_table('reviews')
    op.drop_table('lecture_registrations')
    op.drop_table('lecture_attendances')
    op.drop_table('education_completions')
    with op.batch_alter_table('quiz_attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_quiz_attempts_patient_item')

    op.drop_table('quiz_attempts')
    op.drop_table('profile_items')
    with op.batch_alter_table('lectures', schema=None) as batch_op:
        batch_op.drop_index('ix_lectures_starts_at')

    op.drop_table('lectures')
    with op.batch_alter_table('education_labels', schema=None) as batch_op:
        batch_op.drop_index('ix_education_labels_value')

    op.drop_table('education_labels')
    with op.batch_alter_table('education_items', schema=None) as batch_op:
        batch_op.drop_index('ix_education_items_status')

    op.drop_table('education_items')
