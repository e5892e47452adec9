"""services satisfaction (满意度闭环): improvement items, complaints

Revision ID: f60708090a0b
Revises: f60708090a0a
Create Date: 2026-12-08 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'f60708090a0b'
down_revision: str | None = 'f60708090a0a'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _id(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.String(length=36), nullable=nullable)


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"))


def upgrade() -> None:
    op.create_table(
        "satisfaction_scores",
        _id("id"),
        sa.Column("source_kind", sa.String(length=16), nullable=False),
        _id("source_id"),
        _id("patient_id"),
        _id("department_id", True),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("low", sa.Boolean(), nullable=False),
        _ts("at"),
        sa.Column("day", sa.Date(), nullable=False),
        sa.CheckConstraint("source_kind IN ('review', 'survey')", name=op.f("ck_satisfaction_scores_kind_known")),
        sa.CheckConstraint("score >= 1 AND score <= 5", name=op.f("ck_satisfaction_scores_score_range")),
        _fk("satisfaction_scores", "patient_id", "patients"),
        _fk("satisfaction_scores", "department_id", "departments"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_satisfaction_scores")),
        sa.UniqueConstraint("source_kind", "source_id", name=op.f("uq_satisfaction_scores_source_kind_source_id")),
    )
    op.create_index("ix_satisfaction_scores_department_day", "satisfaction_scores", ["department_id", "day"])
    op.create_index("ix_satisfaction_scores_day", "satisfaction_scores", ["day"])
    op.create_table(
        "improvement_items",
        _id("id"),
        sa.Column("kind", sa.String(length=16), nullable=False),
        _id("source_id"),
        _id("patient_id"),
        _id("department_id", True),
        _id("appointment_id", True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        _id("assignee_id", True),
        _ts("assigned_at", True),
        sa.Column("resolution", sa.Text(), nullable=True),
        _id("closed_by", True),
        _ts("closed_at", True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.CheckConstraint("kind IN ('survey', 'review', 'complaint')", name=op.f("ck_improvement_items_kind_known")),
        sa.CheckConstraint("status IN ('open', 'assigned', 'closed')", name=op.f("ck_improvement_items_status_known")),
        sa.CheckConstraint("status <> 'assigned' OR assignee_id IS NOT NULL",
                           name=op.f("ck_improvement_items_assigned_has_assignee")),
        sa.CheckConstraint("status <> 'closed' OR (resolution IS NOT NULL AND closed_at IS NOT NULL)",
                           name=op.f("ck_improvement_items_closed_has_resolution")),
        _fk("improvement_items", "patient_id", "patients"),
        _fk("improvement_items", "department_id", "departments"),
        _fk("improvement_items", "assignee_id", "staff_users"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_improvement_items")),
        sa.UniqueConstraint("kind", "source_id", name=op.f("uq_improvement_items_kind_source_id")),
    )
    op.create_index("ix_improvement_items_queue", "improvement_items", ["status", "department_id", "created_at"])
    op.create_index("ix_improvement_items_patient", "improvement_items", ["patient_id", "created_at"])
    op.create_index("ix_improvement_items_closed", "improvement_items", ["closed_at"])
    op.create_index("ix_improvement_items_created", "improvement_items", ["created_at"])
    op.create_table(
        "improvement_notes",
        _id("id"),
        _id("item_id"),
        sa.Column("author_kind", sa.String(length=16), nullable=False),
        _id("author_id"),
        sa.Column("text", sa.Text(), nullable=False),
        _ts("created_at"),
        _fk("improvement_notes", "item_id", "improvement_items"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_improvement_notes")),
    )
    op.create_index("ix_improvement_notes_item", "improvement_notes", ["item_id", "created_at"])
    op.create_table(
        "complaints",
        _id("id"),
        _id("patient_id"),
        _id("appointment_id", True),
        _id("department_id"),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("filed_by_kind", sa.String(length=16), nullable=False),
        _id("filed_by_id"),
        sa.Column("idempotency_key", sa.String(length=100), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        _ts("created_at"),
        _fk("complaints", "patient_id", "patients"),
        _fk("complaints", "appointment_id", "appointments"),
        _fk("complaints", "department_id", "departments"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_complaints")),
        sa.UniqueConstraint("patient_id", "idempotency_key", name=op.f("uq_complaints_patient_id_idempotency_key")),
    )
    op.create_index("ix_complaints_patient", "complaints", ["patient_id", "created_at"])
    op.create_index("ix_complaints_created", "complaints", ["created_at"])
    op.create_table(
        "satisfaction_alerts",
        _id("id"),
        _id("department_id"),
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.Date(), nullable=False),
        sa.Column("window_end", sa.Date(), nullable=False),
        sa.Column("current_avg", sa.Float(), nullable=False),
        sa.Column("previous_avg", sa.Float(), nullable=False),
        sa.Column("current_n", sa.Integer(), nullable=False),
        sa.Column("previous_n", sa.Integer(), nullable=False),
        sa.Column("drop", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        _ts("raised_at"),
        _id("acknowledged_by", True),
        _ts("acknowledged_at", True),
        sa.CheckConstraint("status IN ('open', 'acknowledged')", name=op.f("ck_satisfaction_alerts_status_known")),
        _fk("satisfaction_alerts", "department_id", "departments"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_satisfaction_alerts")),
        sa.UniqueConstraint("department_id", "window_end", name=op.f("uq_satisfaction_alerts_department_id_window_end")),
    )
    op.create_index("ix_satisfaction_alerts_status", "satisfaction_alerts", ["status", "raised_at"])
    op.create_table(
        "satisfaction_scan_cursors",
        sa.Column("name", sa.String(length=16), nullable=False),
        _id("last_id"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_satisfaction_scan_cursors")),
    )
    # complaints join the visits cube (analytics.visits); days rolled up before count none
    op.add_column("analytics_visits_daily",
                  sa.Column("complaints", sa.Integer(), server_default=sa.text("0"), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("analytics_visits_daily") as batch_op:
        batch_op.drop_column("complaints")
    op.drop_table("satisfaction_scan_cursors")
    op.drop_index("ix_satisfaction_alerts_status", table_name="satisfaction_alerts")
    op.drop_table("satisfaction_alerts")
    op.drop_index("ix_complaints_created", table_name="complaints")
    op.drop_index("ix_complaints_patient", table_name="complaints")
    op.drop_table("complaints")
    op.drop_index("ix_improvement_notes_item", table_name="improvement_notes")
    op.drop_table("improvement_notes")
    for name in ("ix_improvement_items_created", "ix_improvement_items_closed", "ix_improvement_items_patient",
                 "ix_improvement_items_queue"):
        op.drop_index(name, table_name="improvement_items")
    op.drop_table("improvement_items")
    op.drop_index("ix_satisfaction_scores_day", table_name="satisfaction_scores")
    op.drop_index("ix_satisfaction_scores_department_day", table_name="satisfaction_scores")
    op.drop_table("satisfaction_scores")
