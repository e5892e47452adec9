"""The tiers job (`recompute-tiers` → `tiers.recompute_tiers`): every patient's tier
from the points earned in the last 12 months, the only place a tier goes down."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from carepoints.kit.db import drain
from carepoints.tiers import service

BATCH = 500


def recompute_tiers(now: datetime) -> dict[str, Any]:
    """Pages of patients in id order, one transaction each, with the settings in force at `now`."""
    after = [""]
    changed = [0]

    def step(session: Session) -> int:
        page = service.recompute(session, now, service.settings_at(session, now), limit=BATCH, after=after[0])
        after[0] = page["last"]
        changed[0] += page["changed"]
        return int(page["examined"])

    return {"patients": drain(step), "changed": changed[0]}
