"""Retention of health values inside events (kit.retention kind `event_health_values`):
past the period, the readings of `health.measurement` events (and the values of
`lab.critical_value` events, and of paper entries standing for a reading) are removed
from their attributes. The event itself stays, with its type, time, `kind` and
`provenance`: the ledger entries it caused, the rules' streak days and replays still
need it. A redacted event carries `"redacted": true`, so a re-run skips it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.orm import Session

from carepoints.events.models import Event
from carepoints.kit import retention
from carepoints.kit.db import table

KIND = "event_health_values"
DEFAULT_DAYS = 3 * 365  # three years: as long as an event may still earn (max_event_age)
HEALTH_VALUES: dict[str, tuple[str, ...]] = {
    "health.measurement": ("systolic", "diastolic", "pulse", "glucose_mmol_l", "device_id"),
    "lab.critical_value": ("test", "value", "unit"),
}
_events = table(Event)


def redacted(type_: str, attributes: dict[str, Any]) -> dict[str, Any]:
    """The attributes without their health values (pure)."""
    out = dict(attributes)
    if type_ == "staff.offline_entry":
        inner = out.get("attributes")
        if isinstance(inner, dict):
            out["attributes"] = redacted(str(out.get("behaviour")), inner)
            out["redacted"] = True
        return out
    for name in HEALTH_VALUES.get(type_, ()):
        out.pop(name, None)
    out["redacted"] = True
    return out


def purge(session: Session, cutoff: datetime) -> int:
    conn = session.connection()
    attrs = _events.c.attributes
    rows = conn.execute(
        select(_events.c.id, _events.c.type, attrs)
        .where(_events.c.occurred_at < cutoff, attrs["redacted"].as_string().is_(None),
               or_(_events.c.type.in_(tuple(HEALTH_VALUES)),
                   and_(_events.c.type == "staff.offline_entry",
                        attrs["behaviour"].as_string().in_(tuple(HEALTH_VALUES)))))
        .order_by(_events.c.occurred_at, _events.c.id).limit(retention.BATCH)).all()
    if not rows:
        return 0
    conn.execute(update(_events).where(_events.c.id == bindparam("b_id")).values(attributes=bindparam("b_attrs")),
                 [{"b_id": r[0], "b_attrs": redacted(r[1], dict(r[2] or {}))} for r in rows])
    return len(rows)


retention.register(KIND, DEFAULT_DAYS, purge,
                   description="health readings and lab values inside events (the events stay)")
