"""The audit log's retention kind (`apply-retention`): whole sealed blocks older than
the period go, with their seals; never less than six months (audit.sealing)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from carepoints.audit import sealing
from carepoints.kit import retention

KIND = "audit_log"
DEFAULT_DAYS = 3 * 365  # the access trail of a health record: three years unless set otherwise
BLOCKS_PER_CALL = 5  # one retention transaction deletes at most this many blocks


def purge(session: Session, cutoff: datetime) -> int:
    return sealing.purge_before(session, cutoff, max_blocks=BLOCKS_PER_CALL)


retention.register(KIND, DEFAULT_DAYS, purge, min_days=sealing.MIN_RETENTION.days,
                   description="audit rows in sealed blocks, with their seals (chain kept verifiable)")
