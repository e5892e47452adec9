"""rule counters and streak runs clustered by patient on SQLite

Rule counters and streak runs are read and written by (patient, key). As
ordinary SQLite tables each row lives in a rowid table apart from its
primary-key index, so one event's few counters touch several scattered
pages; as WITHOUT ROWID tables a patient's rows share the primary-key
b-tree's leaf pages, and a commit writes (and syncs) far fewer pages.
PostgreSQL keeps its heap tables: nothing changes there.

Revision ID: 5f1c2a9d7e30
Revises: b8db750c1103
Create Date: 2026-12-01 18:30:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = '5f1c2a9d7e30'
down_revision: str | None = 'b8db750c1103'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COUNTERS = """CREATE TABLE {name} (
    patient_id VARCHAR(36) NOT NULL,
    key VARCHAR(200) NOT NULL,
    used INTEGER NOT NULL,
    cap INTEGER,
    CONSTRAINT pk_rule_counters PRIMARY KEY (patient_id, key),
    CONSTRAINT ck_rule_counters_within_cap CHECK (used >= 0 AND (cap IS NULL OR used <= cap))
){suffix}"""

_RUNS = """CREATE TABLE {name} (
    patient_id VARCHAR(36) NOT NULL,
    grp VARCHAR(64) NOT NULL,
    start_day DATE NOT NULL,
    end_day DATE NOT NULL,
    CONSTRAINT pk_streak_runs PRIMARY KEY (patient_id, grp, start_day)
){suffix}"""


def _rebuild(table: str, ddl: str, columns: str, suffix: str) -> None:
    op.execute(ddl.format(name=f"{table}_new", suffix=suffix))
    op.execute(f"INSERT INTO {table}_new ({columns}) SELECT {columns} FROM {table}")  # noqa: S608
    op.execute(f"DROP TABLE {table}")
    op.execute(f"ALTER TABLE {table}_new RENAME TO {table}")


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    _rebuild("rule_counters", _COUNTERS, "patient_id, key, used, cap", " WITHOUT ROWID")
    _rebuild("streak_runs", _RUNS, "patient_id, grp, start_day, end_day", " WITHOUT ROWID")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    _rebuild("rule_counters", _COUNTERS, "patient_id, key, used, cap", "")
    _rebuild("streak_runs", _RUNS, "patient_id, grp, start_day, end_day", "")
