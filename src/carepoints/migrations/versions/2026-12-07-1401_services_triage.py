"""services triage (智能导诊): symptom knowledge base and red flags

Revision ID: f60708090a06
Revises: f60708090a05
Create Date: 2026-12-07 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'f60708090a06'
down_revision: str | None = 'f60708090a05'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "triage_kinds",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name_zh", sa.String(length=64), nullable=False),
        sa.Column("name_en", sa.String(length=128), nullable=False),
        sa.Column("names", sa.JSON(), nullable=False),
        sa.Column("sex", sa.String(length=8), nullable=True),
        sa.Column("sort", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_triage_kinds")),
    )
    op.create_table(
        "triage_terms",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name_zh", sa.String(length=64), nullable=False),
        sa.Column("name_en", sa.String(length=128), nullable=False),
        sa.Column("synonyms", sa.JSON(), nullable=False),
        sa.Column("weights", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("version >= 1", name=op.f("ck_triage_terms_version_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_triage_terms")),
    )
    op.create_table(
        "triage_red_flags",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name_zh", sa.String(length=64), nullable=False),
        sa.Column("name_en", sa.String(length=128), nullable=False),
        sa.Column("message_zh", sa.Text(), nullable=False),
        sa.Column("message_en", sa.Text(), nullable=False),
        sa.Column("hotline_zh", sa.Text(), nullable=True),
        sa.Column("hotline_en", sa.Text(), nullable=True),
        sa.Column("when", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("sort", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("version >= 1", name=op.f("ck_triage_red_flags_version_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_triage_red_flags")),
    )
    op.create_table(
        "triage_department_map",
        sa.Column("kind_code", sa.String(length=64), nullable=False),
        sa.Column("department_id", sa.String(length=36), nullable=False),
        sa.Column("institution_id", sa.String(length=36), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["kind_code"], ["triage_kinds.code"],
                                name=op.f("fk_triage_department_map_kind_code_triage_kinds")),
        sa.ForeignKeyConstraint(["department_id"], ["departments.id"],
                                name=op.f("fk_triage_department_map_department_id_departments")),
        sa.ForeignKeyConstraint(["institution_id"], ["institutions.id"],
                                name=op.f("fk_triage_department_map_institution_id_institutions")),
        sa.PrimaryKeyConstraint("kind_code", "department_id", name=op.f("pk_triage_department_map")),
    )
    op.create_index("ix_triage_department_map_department", "triage_department_map", ["department_id"],
                    unique=False)
    op.create_table(
        "triage_daily_counts",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("dimension", sa.String(length=16), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.CheckConstraint("count >= 0", name=op.f("ck_triage_daily_counts_count_nonnegative")),
        sa.PrimaryKeyConstraint("day", "dimension", "code", name=op.f("pk_triage_daily_counts")),
    )


def downgrade() -> None:
    op.drop_table("triage_daily_counts")
    op.drop_index("ix_triage_department_map_department", table_name="triage_department_map")
    op.drop_table("triage_department_map")
    op.drop_table("triage_red_flags")
    op.drop_table("triage_terms")
    op.drop_table("triage_kinds")
