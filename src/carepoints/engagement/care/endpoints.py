"""Care-alert API for the care team (nurses, clinicians): the queue and its steps."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from carepoints.engagement.care import service
from carepoints.engagement.care.schemas import AlertAssign, AlertKind, AlertResolve, AlertStatus
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.time import utc_now
from carepoints.kit.web import JSON
from carepoints.security.deps import require
from carepoints.security.service import Principal

router = APIRouter(tags=["care alerts"])


@router.get("/care-alerts")
def list_alerts(status: list[AlertStatus] = Query([AlertStatus.open, AlertStatus.acknowledged]),
                kind: AlertKind | None = None, patient_id: str | None = Query(None, max_length=36),
                assigned_to: str | None = Query(None, max_length=36), limit: int = Query(50, ge=1, le=200),
                before: str | None = Query(None, max_length=36),
                _p: Principal = Depends(require("care:read"))) -> JSON:
    """The care team's queue: open and acknowledged alerts by default, critical first."""
    with read_tx() as session:
        return JSON(service.queue(session, status=[s.value for s in status], kind=kind, patient_id=patient_id,
                                  assigned_to=assigned_to, limit=limit, before=before))


@router.get("/care-alerts/{alert_id}")
def get_alert(alert_id: str, _p: Principal = Depends(require("care:read"))) -> JSON:
    """One alert with its audit trail."""
    with read_tx() as session:
        return JSON({**service.get(session, alert_id), "history": service.history(session, alert_id)})


@router.post("/care-alerts/{alert_id}/assign")
def assign(alert_id: str, body: AlertAssign, p: Principal = Depends(require("care:write"))) -> JSON:
    """Give the alert to a staff member (or unassign it with `staff_user_id: null`)."""
    with write_tx() as session:
        return JSON(service.assign(session, alert_id, body.staff_user_id, p.actor(), utc_now()))


@router.post("/care-alerts/{alert_id}/acknowledge")
def acknowledge(alert_id: str, p: Principal = Depends(require("care:write"))) -> JSON:
    """Seen and being handled; a staff user who acknowledges an unassigned alert takes it."""
    with write_tx() as session:
        return JSON(service.acknowledge(session, alert_id, p.actor(), utc_now()))


@router.post("/care-alerts/{alert_id}/resolve")
def resolve(alert_id: str, body: AlertResolve, p: Principal = Depends(require("care:write"))) -> JSON:
    """Close the alert with a resolution code."""
    with write_tx() as session:
        return JSON(service.resolve(session, alert_id, body.resolution, p.actor(), utc_now()))
