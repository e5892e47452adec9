"""Satisfaction loop API (满意度闭环): complaints filed by a patient for themself, by the desk or by
the hospital's app (complaints:write) and read back (complaints:read); the improvement-item queue
(improvements:read / improvements:write: front desk, nurses, clinicians, admins; auditors read);
the dashboard and department alerts (satisfaction:read: admins, auditors; acknowledging:
satisfaction:write, admins)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query

from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.time import utc_now
from carepoints.kit.web import JSON
from carepoints.security.deps import require
from carepoints.security.service import Principal
from carepoints.services.satisfaction import dashboard, service
from carepoints.services.satisfaction.schemas import AssignIn, CloseIn, ComplaintIn, NoteIn

router = APIRouter(tags=["satisfaction"])
_items_read = require("improvements:read")
_items_write = require("improvements:write")


def _id() -> Any:
    """A fresh optional id parameter (FastAPI binds a Query object to one parameter's name)."""
    return Query(default=None, max_length=36)


@router.post("/patients/{patient_id}/complaints", status_code=201,
             responses={200: {"description": "the same idempotency key again: the stored complaint"}})
def file_complaint(patient_id: str, body: ComplaintIn, p: Principal = Depends(require("complaints:write"))) -> JSON:
    """File a complaint (投诉) about one of the patient's visits (`appointment_id`) or a department
    (`department_id`), with a category and the patient's words; it becomes an improvement item of
    that department. Idempotent on `idempotency_key`."""
    with write_tx() as session:
        pid = service.patient_id(session, patient_id)
        doc, created = service.file_complaint(session, pid, body, p.actor(), utc_now())
    return JSON(doc, status_code=201 if created else 200)


@router.get("/patients/{patient_id}/complaints")
def list_complaints(patient_id: str, limit: int = Query(50, ge=1, le=200),
                    p: Principal = Depends(require("complaints:read"))) -> JSON:
    """The patient's complaints, newest first: department, category, state and, once closed, the
    resolution."""
    with read_tx() as session:
        pid = service.patient_id(session, patient_id)
        return JSON(service.complaints_of(session, pid, limit=limit))


@router.get("/patients/{patient_id}/complaints/{complaint_id}")
def get_complaint(patient_id: str, complaint_id: str, p: Principal = Depends(require("complaints:read"))) -> JSON:
    """One of the patient's complaints (another patient's is 404)."""
    with read_tx() as session:
        pid = service.patient_id(session, patient_id)
        return JSON(service.complaint(session, pid, complaint_id))


@router.get("/improvements")
def list_items(status: Literal["open", "assigned", "closed", "all"] = "open", department_id: str | None = _id(),
               kind: Literal["survey", "review", "complaint"] | None = None, assignee_id: str | None = _id(),
               before: str | None = _id(), limit: int = Query(50, ge=1, le=200), p: Principal = Depends(_items_read)
               ) -> JSON:
    """The improvement items, newest first (open = open and assigned), with the patient masked."""
    with read_tx() as session:
        return JSON(service.items(session, status=None if status == "all" else status, department_id=department_id,
                                  kind=kind, assignee_id=assignee_id, before=before, limit=limit))


@router.get("/improvements/{item_id}")
def get_item(item_id: str, p: Principal = Depends(_items_read)) -> JSON:
    """One item with what the patient said and the notes; the read is audited."""
    with write_tx() as session:
        return JSON(service.view_item(session, item_id, p.actor(), utc_now()))


@router.post("/improvements/{item_id}/assign")
def assign_item(item_id: str, body: AssignIn, p: Principal = Depends(_items_write)) -> JSON:
    """Assign the item to a staff user who handles items (they are told in their inbox)."""
    with write_tx() as session:
        return JSON(service.assign(session, item_id, body, p.actor(), utc_now()))


@router.post("/improvements/{item_id}/notes", status_code=201)
def add_note(item_id: str, body: NoteIn, p: Principal = Depends(_items_write)) -> JSON:
    """Record what was done (整改措施) on an open item."""
    with write_tx() as session:
        return JSON(service.add_note(session, item_id, body, p.actor(), utc_now()), status_code=201)


@router.post("/improvements/{item_id}/close")
def close_item(item_id: str, body: CloseIn, p: Principal = Depends(_items_write)) -> JSON:
    """Close the item with its resolution, once (409 `satisfaction.item_closed`); a complaint's
    patient is told and reads the resolution."""
    with write_tx() as session:
        return JSON(service.close(session, item_id, body, p.actor(), utc_now()))


@router.get("/satisfaction/dashboard")
def get_dashboard(weeks: int = Query(12, ge=1, le=52), department_id: str | None = _id(),
                  p: Principal = Depends(require("satisfaction:read"))) -> JSON:
    """Open items by department, time to close (mean, median hours), the weekly trend of
    satisfaction and of items, and the open department alerts."""
    with read_tx() as session:
        return JSON(dashboard.dashboard(session, utc_now(), weeks=weeks, department_id=department_id))


@router.get("/satisfaction/alerts")
def list_alerts(status: Literal["open", "acknowledged", "all"] = "all", limit: int = Query(50, ge=1, le=200),
                p: Principal = Depends(require("satisfaction:read"))) -> JSON:
    """Department satisfaction alerts, newest first."""
    with read_tx() as session:
        return JSON(dashboard.alerts(session, status=None if status == "all" else status, limit=limit))


@router.post("/satisfaction/alerts/{alert_id}/acknowledge")
def acknowledge_alert(alert_id: str, p: Principal = Depends(require("satisfaction:write"))) -> JSON:
    """An admin has seen the department's drop (409 `satisfaction.alert_acknowledged` the second time)."""
    with write_tx() as session:
        return JSON(dashboard.acknowledge(session, alert_id, p.actor(), utc_now()))
