"""The care-alert queue: raise (deduplicated by cause), list, assign, acknowledge,
resolve. Every staff step is audited; a new alert tells the care team through
the outbox (`care.alert`, ids only), in the transaction that raised it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, or_, select, update
from sqlalchemy.orm import Session

from carepoints.audit import service as audit
from carepoints.audit.service import Actor
from carepoints.engagement.care.errors import AlertClosedError, AlertNotFoundError, StaffNotFoundError
from carepoints.engagement.care.models import CareAlert
from carepoints.engagement.care.schemas import AlertKind, AlertResolution, AlertStatus
from carepoints.kit.bulk import insert_new
from carepoints.kit.db import table
from carepoints.kit.ids import is_id, new_id
from carepoints.kit.outbox import enqueue_many
from carepoints.patients.models import Patient
from carepoints.security import service as security

_alerts = table(CareAlert)
_patients = table(Patient)
SEVERITIES = ("normal", "high", "critical")


def raise_alert(session: Session, *, patient_id: str, kind: AlertKind, source_ref: str, now: datetime,
                severity: str = "normal", details: dict[str, Any] | None = None) -> str | None:
    """Open an alert for `patient_id` unless one for the same `(kind, source_ref)` exists
    (the unique constraint decides, also under concurrency). Returns the new alert's id,
    or None when it already existed. `details` hold ids and codes only."""
    if severity not in SEVERITIES:
        raise ValueError(severity)
    conn = session.connection()
    if conn.execute(select(_patients.c.status).where(_patients.c.id == patient_id)).scalar() != "active":
        return None  # (ops.identity) deceased, closed, merged or erased: nobody to reach out to
    aid = new_id()
    if not insert_new(conn, _alerts, {
        "id": aid, "patient_id": patient_id, "kind": str(kind), "severity": severity, "source_ref": source_ref,
        "details": details or {}, "status": AlertStatus.open.value, "assigned_to": None, "created_at": now,
        "updated_at": now, "acknowledged_at": None, "resolved_at": None, "resolution": None,
    }, ("kind", "source_ref")):
        return None
    enqueue_many(conn, [("care.alert", patient_id, {"alert_id": aid, "patient_id": patient_id, "kind": str(kind),
                                                    "severity": severity})], now)
    return aid


def _doc(row: Any) -> dict[str, Any]:
    return {"id": row["id"], "patient_id": row["patient_id"], "kind": row["kind"], "severity": row["severity"],
            "source_ref": row["source_ref"], "details": row["details"], "status": row["status"],
            "assigned_to": row["assigned_to"], "created_at": row["created_at"].isoformat(),
            "acknowledged_at": row["acknowledged_at"].isoformat() if row["acknowledged_at"] else None,
            "resolved_at": row["resolved_at"].isoformat() if row["resolved_at"] else None,
            "resolution": row["resolution"]}


def get(session: Session, alert_id: str, *, lock: bool = False) -> dict[str, Any]:
    if not is_id(alert_id):
        raise AlertNotFoundError()
    stmt = select(_alerts).where(_alerts.c.id == alert_id)
    row = session.connection().execute(stmt.with_for_update() if lock else stmt).mappings().first()
    if row is None:
        raise AlertNotFoundError()
    return _doc(row)


_rank = case((_alerts.c.severity == "critical", 0), (_alerts.c.severity == "high", 1), else_=2)


def queue(session: Session, *, status: Sequence[str] = ("open", "acknowledged"), kind: str | None = None,
          patient_id: str | None = None, assigned_to: str | None = None, limit: int = 100,
          before: str | None = None) -> dict[str, Any]:
    """Alerts in queue order: critical first, then high, then normal, oldest first within a
    severity, across pages. `before` is the `next` of the previous page: the alert after
    which this page starts (an unknown one starts from the top)."""
    stmt = select(_alerts).where(_alerts.c.status.in_(list(status)))
    if kind is not None:
        stmt = stmt.where(_alerts.c.kind == kind)
    if patient_id is not None:
        stmt = stmt.where(_alerts.c.patient_id == patient_id)
    if assigned_to is not None:
        stmt = stmt.where(_alerts.c.assigned_to == assigned_to)
    conn = session.connection()
    cursor = conn.execute(select(_rank, _alerts.c.created_at, _alerts.c.id).where(_alerts.c.id == before)).first() \
        if before is not None and is_id(before) else None
    if cursor is not None:
        rank, at, aid = cursor
        stmt = stmt.where(or_(_rank > rank, and_(_rank == rank, or_(
            _alerts.c.created_at > at, and_(_alerts.c.created_at == at, _alerts.c.id > aid)))))
    rows = conn.execute(stmt.order_by(_rank, _alerts.c.created_at, _alerts.c.id).limit(limit + 1)).mappings().all()
    more = len(rows) > limit
    return {"items": [_doc(r) for r in rows[:limit]], "next": rows[limit - 1]["id"] if more else None}


def _change(session: Session, alert_id: str, actor: Actor, action: str, now: datetime,
            **values: Any) -> dict[str, Any]:
    current = get(session, alert_id, lock=True)
    if current["status"] == AlertStatus.resolved:
        raise AlertClosedError()
    session.connection().execute(update(_alerts).where(_alerts.c.id == alert_id).values(updated_at=now, **values))
    audit.record(session, actor, f"care:alert:{action}", now, subject_id=alert_id, patient_id=current["patient_id"],
                 **{k: v for k, v in values.items() if isinstance(v, str)})
    return get(session, alert_id)


def assign(session: Session, alert_id: str, staff_user_id: str | None, actor: Actor, now: datetime
           ) -> dict[str, Any]:
    """Give the alert to an active staff user (or take it back with None)."""
    if staff_user_id is not None and (not is_id(staff_user_id) or security.active_staff(session, staff_user_id)
                                      is None):
        raise StaffNotFoundError()
    return _change(session, alert_id, actor, "assign", now, assigned_to=staff_user_id)


def acknowledge(session: Session, alert_id: str, actor: Actor, now: datetime) -> dict[str, Any]:
    """Someone on the team has seen it and is on it; again changes nothing."""
    current = get(session, alert_id)
    if current["status"] == AlertStatus.acknowledged:
        return current
    values: dict[str, Any] = {"status": AlertStatus.acknowledged.value, "acknowledged_at": now}
    if current["assigned_to"] is None and actor.kind == "staff":
        values["assigned_to"] = actor.id
    return _change(session, alert_id, actor, "acknowledge", now, **values)


def resolve(session: Session, alert_id: str, resolution: AlertResolution, actor: Actor, now: datetime
            ) -> dict[str, Any]:
    """Close the alert with a resolution code; resolving it again is a 409."""
    current = get(session, alert_id)
    values: dict[str, Any] = {"status": AlertStatus.resolved.value, "resolved_at": now,
                              "resolution": resolution.value}
    if current["acknowledged_at"] is None:
        values["acknowledged_at"] = now
    return _change(session, alert_id, actor, "resolve", now, **values)


def history(session: Session, alert_id: str) -> list[dict[str, Any]]:
    """The alert's audit trail, oldest first."""
    get(session, alert_id)
    return [{"at": e["at"].isoformat(), "action": e["action"], "actor_kind": e["actor_kind"],
             "actor_id": e["actor_id"], "details": e["details"]}
            for e in reversed(audit.entries(session, subject_id=alert_id))]
