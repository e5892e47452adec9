"""services queue calls (候诊提醒): calls per session

Revision ID: f60708090a07
Revises: f60708090a06
Create Date: 2026-12-07 15:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'f60708090a07'
down_revision: str | None = 'f60708090a06'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_LIVE = "status IN ('called', 'recalled', 'done')"
_WAIT = ("wait_minutes", "waited")


def upgrade() -> None:
    op.create_table(
        "queue_calls",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("session_id", sa.String(length=36), nullable=False),
        sa.Column("appointment_id", sa.String(length=36), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("called_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("called_by", sa.String(length=36), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("recall_count", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("checked_in_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("recall_count >= 0", name=op.f("ck_queue_calls_recall_count_nonneg")),
        sa.CheckConstraint("status IN ('called', 'recalled', 'skipped', 'done')",
                           name=op.f("ck_queue_calls_status_known")),
        sa.ForeignKeyConstraint(["session_id"], ["clinic_sessions.id"],
                                name=op.f("fk_queue_calls_session_id_clinic_sessions")),
        sa.ForeignKeyConstraint(["appointment_id"], ["appointments.id"],
                                name=op.f("fk_queue_calls_appointment_id_appointments")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_calls")),
    )
    op.create_index("uq_queue_calls_live", "queue_calls", ["appointment_id"], unique=True,
                    sqlite_where=sa.text(_LIVE), postgresql_where=sa.text(_LIVE))
    op.create_index("ix_queue_calls_session", "queue_calls", ["session_id", "called_at"])
    op.create_table(
        "queue_desk_staff",
        sa.Column("department_id", sa.String(length=36), nullable=False),
        sa.Column("staff_user_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["department_id"], ["departments.id"],
                                name=op.f("fk_queue_desk_staff_department_id_departments")),
        sa.ForeignKeyConstraint(["staff_user_id"], ["staff_users.id"],
                                name=op.f("fk_queue_desk_staff_staff_user_id_staff_users")),
        sa.PrimaryKeyConstraint("department_id", "staff_user_id", name=op.f("pk_queue_desk_staff")),
    )
    op.create_table(
        "queue_notices",
        sa.Column("appointment_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["appointment_id"], ["appointments.id"],
                                name=op.f("fk_queue_notices_appointment_id_appointments")),
        sa.PrimaryKeyConstraint("appointment_id", "kind", name=op.f("pk_queue_notices")),
    )
    # the in-clinic wait joins the visits cube (analytics.visits); days rolled up before count none
    for name in _WAIT:
        op.add_column("analytics_visits_daily",
                      sa.Column(name, sa.Integer(), server_default=sa.text("0"), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("analytics_visits_daily") as batch_op:
        for name in reversed(_WAIT):
            batch_op.drop_column(name)
    op.drop_table("queue_notices")
    op.drop_table("queue_desk_staff")
    op.drop_index("ix_queue_calls_session", table_name="queue_calls")
    op.drop_index("uq_queue_calls_live", table_name="queue_calls")
    op.drop_table("queue_calls")
