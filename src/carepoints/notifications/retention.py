"""Retention of messages (kit.retention kind `notifications`): past the period, outbox
rows that were handled (dispatched, skipped, failed), external deliveries that ended
(sent, dead) and inbox messages are deleted. Pending work is never touched."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from carepoints.kit import retention
from carepoints.kit.db import table
from carepoints.kit.outbox import OutboxMessage
from carepoints.notifications.models import Delivery, InboxMessage

KIND = "notifications"
DEFAULT_DAYS = 365
_outbox = table(OutboxMessage)
_inbox = table(InboxMessage)
_deliveries = table(Delivery)


def purge(session: Session, cutoff: datetime) -> int:
    """One batch of each table, the deliveries first (they are what was sent)."""
    conn = session.connection()
    done = 0
    for tbl, where in (
            (_deliveries, (_deliveries.c.status.in_(("sent", "dead")), _deliveries.c.available_at < cutoff)),
            (_inbox, (_inbox.c.created_at < cutoff,)),
            (_outbox, (_outbox.c.status.in_(("dispatched", "skipped", "failed")), _outbox.c.available_at < cutoff))):
        ids = [r[0] for r in conn.execute(select(tbl.c.id).where(*where).order_by(tbl.c.id).limit(retention.BATCH))]
        if ids:
            done += conn.execute(delete(tbl).where(tbl.c.id.in_(ids))).rowcount or 0
    return int(done)


retention.register(KIND, DEFAULT_DAYS, purge, description="handled outbox rows, ended deliveries, inbox messages")
