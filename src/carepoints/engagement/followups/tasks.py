"""The follow-up steps of the periodic jobs (`remind-followups`, and the overdue
step of `care-alerts`), each one transaction reporting what it did."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from carepoints.engagement.followups import service
from carepoints.kit.db import write_tx


def remind_followups(now: datetime) -> dict[str, Any]:
    """`followup.due` notices for app / SMS steps that are due (once per step)."""
    with write_tx() as session:
        return {"notices": service.remind_due(session, now)}


def flag_overdue_followups(now: datetime) -> dict[str, Any]:
    """One care alert per step that became overdue without a response."""
    with write_tx() as session:
        return {"alerts": service.flag_overdue(session, now)}
