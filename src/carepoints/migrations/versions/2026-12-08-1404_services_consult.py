"""services consult (在线咨询): threads, messages, images, ratings

Revision ID: f60708090a09
Revises: f60708090a08
Create Date: 2026-12-08 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'f60708090a09'
down_revision: str | None = 'f60708090a08'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "consult_advisers",
        sa.Column("staff_user_id", sa.String(length=36), nullable=False),
        sa.Column("department_id", sa.String(length=36), nullable=False),
        sa.Column("profession", sa.String(length=16), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("title", sa.String(length=64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        _ts("created_at"), _ts("updated_at"),
        sa.CheckConstraint("profession IN ('clinician', 'nurse', 'pharmacist')",
                           name=op.f("ck_consult_advisers_profession_known")),
        sa.ForeignKeyConstraint(["department_id"], ["departments.id"],
                                name=op.f("fk_consult_advisers_department_id_departments")),
        sa.ForeignKeyConstraint(["staff_user_id"], ["staff_users.id"],
                                name=op.f("fk_consult_advisers_staff_user_id_staff_users")),
        sa.PrimaryKeyConstraint("staff_user_id", name=op.f("pk_consult_advisers")),
    )
    op.create_index(op.f("ix_consult_advisers_department_id"), "consult_advisers", ["department_id"])
    op.create_table(
        "consult_threads",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("patient_id", sa.String(length=36), nullable=False),
        sa.Column("opened_by", sa.String(length=36), nullable=False),
        sa.Column("department_id", sa.String(length=36), nullable=False),
        sa.Column("target", sa.String(length=16), nullable=False),
        sa.Column("profession", sa.String(length=16), nullable=True),
        sa.Column("requested_staff_id", sa.String(length=36), nullable=True),
        sa.Column("assignee_staff_id", sa.String(length=36), nullable=True),
        _ts("claimed_at", True),
        sa.Column("subject", sa.String(length=100), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("disclaimer_version", sa.String(length=32), nullable=False),
        _ts("disclaimer_accepted_at"),
        sa.Column("idempotency_key", sa.String(length=64), nullable=False),
        sa.Column("message_count", sa.Integer(), nullable=False),
        sa.Column("image_count", sa.Integer(), nullable=False),
        _ts("waiting_since", True), _ts("last_message_at"), _ts("first_response_at", True),
        sa.Column("first_response_seconds", sa.Integer(), nullable=True),
        _ts("created_at"), _ts("closed_at", True),
        sa.Column("closed_by", sa.String(length=16), nullable=True),
        sa.Column("close_reason", sa.String(length=16), nullable=True),
        sa.CheckConstraint("state IN ('open', 'answered', 'waiting', 'closed')",
                           name=op.f("ck_consult_threads_state_known")),
        sa.CheckConstraint("target IN ('adviser', 'department')", name=op.f("ck_consult_threads_target_known")),
        sa.CheckConstraint("message_count >= 0 AND image_count >= 0", name=op.f("ck_consult_threads_counts_nonneg")),
        sa.ForeignKeyConstraint(["department_id"], ["departments.id"],
                                name=op.f("fk_consult_threads_department_id_departments")),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], name=op.f("fk_consult_threads_patient_id_patients")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consult_threads")),
        sa.UniqueConstraint("patient_id", "idempotency_key",
                            name=op.f("uq_consult_threads_patient_id_idempotency_key")),
    )
    op.create_index("ix_consult_threads_patient", "consult_threads", ["patient_id", "created_at"])
    op.create_index("ix_consult_threads_queue", "consult_threads", ["state", "department_id", "waiting_since"])
    op.create_index("ix_consult_threads_assignee", "consult_threads", ["assignee_staff_id", "state"])
    op.create_index("ix_consult_threads_closed", "consult_threads", ["closed_at"])
    op.create_table(
        "consult_images",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("thread_id", sa.String(length=36), nullable=False),
        sa.Column("media_type", sa.String(length=32), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        _ts("created_at"),
        sa.ForeignKeyConstraint(["thread_id"], ["consult_threads.id"], ondelete="CASCADE",
                                name=op.f("fk_consult_images_thread_id_consult_threads")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consult_images")),
    )
    op.create_index(op.f("ix_consult_images_thread_id"), "consult_images", ["thread_id"])
    op.create_table(
        "consult_messages",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("thread_id", sa.String(length=36), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("author", sa.String(length=16), nullable=False),
        sa.Column("author_id", sa.String(length=36), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("image_id", sa.String(length=36), nullable=True),
        sa.Column("idempotency_key", sa.String(length=64), nullable=True),
        _ts("created_at"),
        sa.CheckConstraint("author IN ('patient', 'staff', 'system')", name=op.f("ck_consult_messages_author_known")),
        sa.ForeignKeyConstraint(["image_id"], ["consult_images.id"], ondelete="CASCADE",
                                name=op.f("fk_consult_messages_image_id_consult_images")),
        sa.ForeignKeyConstraint(["thread_id"], ["consult_threads.id"], ondelete="CASCADE",
                                name=op.f("fk_consult_messages_thread_id_consult_threads")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consult_messages")),
        sa.UniqueConstraint("thread_id", "seq", name=op.f("uq_consult_messages_thread_id_seq")),
        sa.UniqueConstraint("thread_id", "idempotency_key", name=op.f("uq_consult_messages_thread_id_idempotency_key")),
    )
    op.create_table(
        "consult_ratings",
        sa.Column("thread_id", sa.String(length=36), nullable=False),
        sa.Column("patient_id", sa.String(length=36), nullable=False),
        sa.Column("stars", sa.Integer(), nullable=False),
        sa.Column("comment", sa.String(length=500), nullable=True),
        _ts("created_at"),
        sa.CheckConstraint("stars BETWEEN 1 AND 5", name=op.f("ck_consult_ratings_stars_range")),
        sa.ForeignKeyConstraint(["thread_id"], ["consult_threads.id"], ondelete="CASCADE",
                                name=op.f("fk_consult_ratings_thread_id_consult_threads")),
        sa.PrimaryKeyConstraint("thread_id", name=op.f("pk_consult_ratings")),
    )


def downgrade() -> None:
    op.drop_table("consult_ratings")
    op.drop_table("consult_messages")
    op.drop_index(op.f("ix_consult_images_thread_id"), table_name="consult_images")
    op.drop_table("consult_images")
    for name in ("ix_consult_threads_closed", "ix_consult_threads_assignee", "ix_consult_threads_queue",
                 "ix_consult_threads_patient"):
        op.drop_index(name, table_name="consult_threads")
    op.drop_table("consult_threads")
    op.drop_index(op.f("ix_consult_advisers_department_id"), table_name="consult_advisers")
    op.drop_table("consult_advisers")
