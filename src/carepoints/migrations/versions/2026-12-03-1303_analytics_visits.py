"""analytics visit and care roll-ups: the visits and care cubes, visit and public-health facts,
distinct patients per week / month

Revision ID: f60708090a04
Revises: f60708090a03
Create Date: 2026-12-03 13:03:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'f60708090a04'
down_revision: str | None = 'f60708090a03'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CUT = ("day", "institution_id", "f_dim", "f_key", "b_dim", "b_key")


def _cut_columns() -> list[sa.Column]:  # type: ignore[type-arg]
    return [sa.Column("day", sa.Date(), nullable=False),
            sa.Column("institution_id", sa.String(length=36), nullable=False),
            sa.Column("f_dim", sa.String(length=16), nullable=False),
            sa.Column("f_key", sa.String(length=64), nullable=False),
            sa.Column("b_dim", sa.String(length=16), nullable=False),
            sa.Column("b_key", sa.String(length=64), nullable=False)]


def _cube(name: str, measures: Sequence[str]) -> None:
    op.create_table(name, *_cut_columns(), *(sa.Column(m, sa.Integer(), nullable=False) for m in measures),
                    sa.PrimaryKeyConstraint(*_CUT, name=op.f(f"pk_{name}")))
    op.create_index(f"ix_{name}_cut", name, ["f_dim", "f_key", "b_dim", "day"], unique=False)


def upgrade() -> None:
    _cube("analytics_visits_daily", ("attended", "no_show", "cancelled", "open", "ahead", "off_peak"))
    _cube("analytics_care_daily", ("enrolled", "chronic", "elderly", "women", "readers", "chronic_readers",
                                   "followups_due", "followups_done"))
    op.create_table(
        "analytics_visit_patients",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("patient_id", sa.String(length=36), nullable=False),
        sa.Column("institution_id", sa.String(length=36), nullable=False),
        sa.Column("department_id", sa.String(length=36), nullable=False),
        sa.Column("clinician_id", sa.String(length=36), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("condition", sa.String(length=32), nullable=False),
        sa.Column("age_band", sa.String(length=16), nullable=False),
        sa.Column("visits", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "patient_id", "institution_id", "department_id", "clinician_id", "channel",
                                "condition", name=op.f("pk_analytics_visit_patients")),
    )
    op.create_index("ix_analytics_visit_patients_patient", "analytics_visit_patients", ["patient_id", "day"],
                    unique=False)
    op.create_table(
        "analytics_public_health",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("patient_id", sa.String(length=36), nullable=False),
        sa.Column("programme", sa.String(length=16), nullable=False),
        sa.Column("institution_id", sa.String(length=36), nullable=False),
        sa.Column("condition", sa.String(length=32), nullable=False),
        sa.Column("age_band", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("day", "patient_id", "programme", "institution_id", "condition",
                                name=op.f("pk_analytics_public_health")),
    )
    op.create_index("ix_analytics_public_health_patient", "analytics_public_health", ["patient_id", "day"],
                    unique=False)
    op.create_table(
        "analytics_visit_periods",
        sa.Column("grain", sa.String(length=8), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("span", sa.Integer(), nullable=False),
        sa.Column("institution_id", sa.String(length=36), nullable=False),
        sa.Column("measure", sa.String(length=16), nullable=False),
        sa.Column("dim", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("patients", sa.Integer(), nullable=False),
        sa.Column("repeat_patients", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("grain", "period_start", "span", "institution_id", "measure", "dim", "key",
                                name=op.f("pk_analytics_visit_periods")),
    )


def downgrade() -> None:
    op.drop_table("analytics_visit_periods")
    op.drop_index("ix_analytics_public_health_patient", table_name="analytics_public_health")
    op.drop_table("analytics_public_health")
    op.drop_index("ix_analytics_visit_patients_patient", table_name="analytics_visit_patients")
    op.drop_table("analytics_visit_patients")
    for name in ("analytics_care_daily", "analytics_visits_daily"):
        op.drop_index(f"ix_{name}_cut", table_name=name)
        op.drop_table(name)
