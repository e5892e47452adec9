"""Reports API (检查检验报告): the HIS / LIS pushes reports (diagnostic_reports:write); a patient
(or their proxy with view) lists and opens their released reports; staff read every report of a
patient (audited) and release one held back for a critical result (care:write)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.time import utc_now
from carepoints.kit.web import JSON
from carepoints.security.deps import require
from carepoints.security.permissions import PATIENT_ROLES, Role
from carepoints.security.service import Principal
from carepoints.services.reports import service
from carepoints.services.reports.schemas import ReportIn

router = APIRouter(tags=["reports"])
_read = require("diagnostic_reports:read")
_PATIENT_SIDE = (*PATIENT_ROLES, Role.proxy)


def _patient_side(p: Principal) -> bool:
    return p.role in _PATIENT_SIDE


@router.post("/reports", status_code=201, responses={200: {"description": "the same report again, or a new version"}})
def push_report(body: ReportIn, p: Principal = Depends(require("diagnostic_reports:write"))) -> JSON:
    """Store a report pushed by the HIS / LIS, idempotent on (source, source_id): the same content
    answers the stored report (200), a later status (final, amended, corrected, cancelled) a new
    version (200), other changed content 409 `reports.conflict`. A critical result holds the report
    back from the patient and opens a critical care alert."""
    with write_tx() as session:
        doc, status = service.ingest(session, body, p.actor(), utc_now())
    return JSON(doc, status_code=status)


@router.get("/patients/{patient_id}/reports")
def list_reports(patient_id: str, limit: int = Query(100, ge=1, le=200), p: Principal = Depends(_read)) -> JSON:
    """The patient's reports, newest first: category, name, issued, abnormal and new (unread). A
    patient sees released final reports only; staff see every report with its hold state."""
    with read_tx() as session:
        pid = service.patient_id(session, patient_id)
        if _patient_side(p):
            return JSON(service.patient_reports(session, pid, utc_now(), limit=limit))
        return JSON(service.staff_reports(session, pid, limit=limit))


@router.get("/patients/{patient_id}/reports/{report_id}")
def get_report(patient_id: str, report_id: str, p: Principal = Depends(_read)) -> JSON:
    """One report with its results, units, reference ranges and flags. The patient opening it marks
    it read; a staff read is audited (the patient's access report lists it)."""
    with write_tx() as session:
        pid = service.patient_id(session, patient_id)
        if _patient_side(p):
            return JSON(service.open_report(session, pid, report_id, p.actor(), utc_now()))
        return JSON(service.view_report(session, pid, report_id, p.actor(), utc_now()))


@router.post("/patients/{patient_id}/reports/{report_id}/release")
def release_report(patient_id: str, report_id: str, p: Principal = Depends(require("care:write"))) -> JSON:
    """A clinician releases a report held back for a critical result: its care alert is
    acknowledged and the patient is told there is a new report (409 `reports.not_held`)."""
    with write_tx() as session:
        pid = service.patient_id(session, patient_id)
        return JSON(service.release(session, pid, report_id, p.actor(), utc_now()))
