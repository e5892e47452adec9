"""Health jobs: medication reminders and the inactivity step of `care-alerts`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from carepoints.engagement.health import care_signals, medication
from carepoints.kit.db import write_tx


def remind_medication(now: datetime) -> dict[str, Any]:
    """`remind-medication`: a reminder for each planned dose whose time has come."""
    with write_tx() as session:
        return {"reminders": medication.remind(session, now)}


def flag_inactivity(now: datetime) -> dict[str, Any]:
    """The inactivity step of `care-alerts`."""
    with write_tx() as session:
        return care_signals.flag_inactivity(session, now)
