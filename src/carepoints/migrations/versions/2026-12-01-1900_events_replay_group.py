"""events: replay group for order-sensitive rules

Events scored by a rule whose pay can depend on arrival order (once per item
together with another limit, or a count limit on multiplied awards) carry
their behaviour in `replay_group`, indexed per patient and time, so that a
late earlier event finds the later ones to re-evaluate. Existing events are
backfilled from the programme versions stored in the database (the engine
decides which behaviours are order sensitive, as it does at ingest).

Revision ID: 7a3e9c41d2b8
Revises: 5f1c2a9d7e30
Create Date: 2026-12-01 19:00:00
"""
import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '7a3e9c41d2b8'
down_revision: str | None = '5f1c2a9d7e30'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

def _groups(bind: sa.engine.Connection) -> dict[str, str]:
    """Behaviour → replay group over every stored programme version (the newest wins)."""
    from zoneinfo import ZoneInfo

    from carepoints.rules.engine import CompiledProgramme
    from carepoints.rules.programme import Programme

    out: dict[str, str] = {}
    rows = bind.execute(sa.text("SELECT version, document FROM program_versions ORDER BY version")).all()
    for version, document in rows:
        doc = document if isinstance(document, dict) else json.loads(document)
        out.update(CompiledProgramme(version, Programme.model_validate(doc), ZoneInfo("UTC")).replay_groups)
    return out


def upgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('replay_group', sa.String(length=64), nullable=True))
        batch_op.create_index('ix_events_replay', ['patient_id', 'replay_group', 'occurred_at'], unique=False,
                              sqlite_where=sa.text('replay_group IS NOT NULL'),
                              postgresql_where=sa.text('replay_group IS NOT NULL'))
    bind = op.get_bind()
    behaviour = ("json_extract(attributes, '$.behaviour')" if bind.dialect.name == "sqlite"
                 else "(attributes ->> 'behaviour')")
    for behaviour_type, group in _groups(bind).items():
        params = {"t": behaviour_type, "g": group}
        bind.execute(sa.text("UPDATE events SET replay_group = :g WHERE type = :t"), params)
        bind.execute(sa.text(f"UPDATE events SET replay_group = :g "  # noqa: S608 - a fixed expression
                             f"WHERE type = 'staff.offline_entry' AND {behaviour} = :t"), params)


def downgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_replay', sqlite_where=sa.text('replay_group IS NOT NULL'),
                            postgresql_where=sa.text('replay_group IS NOT NULL'))
        batch_op.drop_column('replay_group')
