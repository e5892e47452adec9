"""analytics: rolling distinct windows, experiment roll-up

Revision ID: f60708090a0e
Revises: f60708090a0d
Create Date: 2026-12-08 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'f60708090a0e'
down_revision: str | None = 'f60708090a0d'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _s(name: str, length: int) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.String(length=length), nullable=False)


def _i(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.Integer(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "analytics_active_windows",
        sa.Column("day", sa.Date(), nullable=False), _i("span"), _s("institution_id", 36), _s("dim", 16),
        _s("key", 96), _i("patients"),
        sa.PrimaryKeyConstraint("day", "span", "institution_id", "dim", "key", name=op.f("pk_analytics_active_windows")),
    )
    op.create_index("ix_analytics_participation_patient", "analytics_participation", ["patient_id", "day"])
    op.create_table(
        "analytics_experiment_facts",
        sa.Column("day", sa.Date(), nullable=False), _s("experiment_id", 36), _s("patient_id", 36), _i("active"),
        _i("checkin"),
        sa.PrimaryKeyConstraint("day", "experiment_id", "patient_id", name=op.f("pk_analytics_experiment_facts")),
    )
    op.create_index("ix_analytics_experiment_facts_exp", "analytics_experiment_facts", ["experiment_id", "day"])
    op.create_table(
        "analytics_experiment_visits",
        sa.Column("day", sa.Date(), nullable=False), _s("experiment_id", 36), _s("patient_id", 36),
        _s("appointment_id", 64), _i("reports"), _i("no_shows"),
        sa.PrimaryKeyConstraint("day", "experiment_id", "patient_id", "appointment_id",
                                name=op.f("pk_analytics_experiment_visits")),
    )
    op.create_index("ix_analytics_experiment_visits_exp", "analytics_experiment_visits", ["experiment_id", "day"])
    op.create_table(
        "analytics_experiment_members",
        _s("experiment_id", 36), _s("patient_id", 36), _s("variant", 64), _s("age_band", 16), _i("active"),
        _i("checkin_days"), _i("days"), _i("appointments"), _i("missed"),
        sa.PrimaryKeyConstraint("experiment_id", "patient_id", name=op.f("pk_analytics_experiment_members")),
    )
    op.create_table(
        "analytics_experiment_cells",
        _s("experiment_id", 36), _s("outcome", 32), _s("institution_id", 36), _s("variant", 64), _s("age_band", 16),
        sa.Column("valid_on", sa.Date(), nullable=True), sa.Column("through", sa.Date(), nullable=False),
        _i("patients"), _i("n"), sa.Column("total", sa.Float(), nullable=False),
        sa.Column("squares", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("experiment_id", "outcome", "institution_id", "variant", "age_band",
                                name=op.f("pk_analytics_experiment_cells")),
    )
    op.create_index("ix_consents_purpose_accepted", "consents", ["purpose", "accepted_at"])
    op.create_index("ix_consents_purpose_withdrawn", "consents", ["purpose", "withdrawn_at"])


def downgrade() -> None:
    op.drop_index("ix_consents_purpose_withdrawn", table_name="consents")
    op.drop_index("ix_consents_purpose_accepted", table_name="consents")
    op.drop_table("analytics_experiment_cells")
    op.drop_table("analytics_experiment_members")
    op.drop_index("ix_analytics_experiment_visits_exp", table_name="analytics_experiment_visits")
    op.drop_table("analytics_experiment_visits")
    op.drop_index("ix_analytics_experiment_facts_exp", table_name="analytics_experiment_facts")
    op.drop_table("analytics_experiment_facts")
    op.drop_index("ix_analytics_participation_patient", table_name="analytics_participation")
    op.drop_table("analytics_active_windows")
