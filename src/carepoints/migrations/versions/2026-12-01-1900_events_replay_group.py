"""events: replay group for order-sensitive rules

Events scored by a rule whose pay can depend on arrival order (once per item
together with another limit, or a count limit on multiplied awards) carry
their behaviour in `replay_group`, indexed per patient and time, so that a
late earlier event finds the later ones to re-evaluate. Existing events of
the default programme's order-sensitive behaviours are backfilled.

Revision ID: 7a3e9c41d2b8
Revises: 5f1c2a9d7e30
Create Date: 2026-12-01 19:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '7a3e9c41d2b8'
down_revision: str | None = '5f1c2a9d7e30'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The default programme's order-sensitive behaviours when this migration was written
# (rules.engine.limits_order_sensitive); new events get theirs from the programme in force.
_GROUPS = ("appointment.cancelled", "community.post_approved", "education.completed", "invite.completed")


def upgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('replay_group', sa.String(length=64), nullable=True))
        batch_op.create_index('ix_events_replay', ['patient_id', 'replay_group', 'occurred_at'], unique=False,
                              sqlite_where=sa.text('replay_group IS NOT NULL'),
                              postgresql_where=sa.text('replay_group IS NOT NULL'))
    groups = ", ".join(f"'{g}'" for g in _GROUPS)
    behaviour = ("json_extract(attributes, '$.behaviour')" if op.get_bind().dialect.name == "sqlite"
                 else "(attributes ->> 'behaviour')")
    op.execute(f"UPDATE events SET replay_group = type WHERE type IN ({groups})")  # noqa: S608
    op.execute(f"UPDATE events SET replay_group = {behaviour} "  # noqa: S608
               f"WHERE type = 'staff.offline_entry' AND {behaviour} IN ({groups})")


def downgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_replay', sqlite_where=sa.text('replay_group IS NOT NULL'),
                            postgresql_where=sa.text('replay_group IS NOT NULL'))
        batch_op.drop_column('replay_group')
