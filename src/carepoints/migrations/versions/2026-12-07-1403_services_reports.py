"""services reports (检查检验报告): diagnostic reports and their results

Revision ID: f60708090a08
Revises: f60708090a07
Create Date: 2026-12-07 15:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'f60708090a08'
down_revision: str | None = 'f60708090a07'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "diagnostic_reports",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("patient_id", sa.String(length=36), nullable=False),
        sa.Column("institution_id", sa.String(length=36), nullable=True),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("source_id", sa.String(length=200), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("code_system", sa.String(length=200), nullable=True),
        sa.Column("display", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("conclusion", sa.Text(), nullable=True),
        sa.Column("performer", sa.String(length=200), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("abnormal", sa.Boolean(), nullable=False),
        sa.Column("critical", sa.Boolean(), nullable=False),
        sa.Column("held", sa.Boolean(), nullable=False),
        sa.Column("alert_id", sa.String(length=36), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["institution_id"], ["institutions.id"],
                                name=op.f("fk_diagnostic_reports_institution_id_institutions")),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"],
                                name=op.f("fk_diagnostic_reports_patient_id_patients")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_diagnostic_reports")),
        sa.UniqueConstraint("source", "source_id", name=op.f("uq_diagnostic_reports_source_source_id")),
    )
    op.create_index("ix_diagnostic_reports_patient", "diagnostic_reports", ["patient_id", "issued_at"])
    op.create_index("ix_diagnostic_reports_held", "diagnostic_reports", ["held"])
    op.create_table(
        "diagnostic_results",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("report_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("display", sa.String(length=200), nullable=False),
        sa.Column("value_number", sa.Float(), nullable=True),
        sa.Column("value_text", sa.String(length=500), nullable=True),
        sa.Column("unit", sa.String(length=40), nullable=True),
        sa.Column("range_low", sa.Float(), nullable=True),
        sa.Column("range_high", sa.Float(), nullable=True),
        sa.Column("range_text", sa.String(length=200), nullable=True),
        sa.Column("flag", sa.String(length=8), nullable=True),
        sa.ForeignKeyConstraint(["report_id"], ["diagnostic_reports.id"], ondelete="CASCADE",
                                name=op.f("fk_diagnostic_results_report_id_diagnostic_reports")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_diagnostic_results")),
        sa.UniqueConstraint("report_id", "position", name=op.f("uq_diagnostic_results_report_id_position")),
    )


def downgrade() -> None:
    op.drop_table("diagnostic_results")
    op.drop_index("ix_diagnostic_reports_held", table_name="diagnostic_reports")
    op.drop_index("ix_diagnostic_reports_patient", table_name="diagnostic_reports")
    op.drop_table("diagnostic_reports")
