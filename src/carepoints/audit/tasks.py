"""Audit jobs: `seal-audit` (and the audit part of `seal-checkpoint`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from carepoints.audit import sealing
from carepoints.config import get_settings
from carepoints.kit.db import read_tx, write_tx


def seal_blocks(now: datetime, *, margin: timedelta | None = None) -> dict[str, Any]:
    """Seal every due block, each in its own short transaction; answers
    {"audit_blocks", "audit_rows", "audit_pending"} (pending = not yet sealed)."""
    settings = get_settings()
    margin = timedelta(seconds=settings.audit_seal_margin_seconds) if margin is None else margin
    blocks = rows = 0
    while True:
        with write_tx() as session:
            n = sealing.seal(session, settings.checkpoint_key, now, margin=margin,
                             block_rows=settings.audit_seal_block_rows)
        if n == 0:
            break
        blocks, rows = blocks + 1, rows + n
    with read_tx() as session:
        left = sealing.pending(session)
    return {"audit_blocks": blocks, "audit_rows": rows, "audit_pending": left}
