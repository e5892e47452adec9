"""The scheduling jobs (API.md names → `scheduling.verb_object`), each in
transactions of bounded size, reporting what they did."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from carepoints.kit.db import drain, write_tx
from carepoints.scheduling import reminders, service, waitlist

GENERATE_DAYS_AHEAD = 14  # sessions exist two weeks ahead; they open at their release time


def generate_sessions(now: datetime) -> dict[str, Any]:
    with write_tx() as session:
        return {"sessions": service.generate_sessions(session, now, GENERATE_DAYS_AHEAD)}


def sweep_no_shows(now: datetime) -> dict[str, Any]:
    return {"no_shows": drain(lambda session: service.sweep_no_shows(session, now))}


def release_reserved_slots(now: datetime) -> dict[str, Any]:
    with write_tx() as session:
        return {"slots": service.release_reserved_slots(session, now)}


def expire_waitlist_offers(now: datetime) -> dict[str, Any]:
    return {"offers": drain(lambda session: waitlist.expire_offers(session, now))}


def remind_appointments(now: datetime) -> dict[str, Any]:
    with write_tx() as session:
        return {"reminders": reminders.remind_tomorrow(session, now)}
