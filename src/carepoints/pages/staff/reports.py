"""检查报告 in the staff console: the section of the patient summary (/staff/patients/{patient_id},
pages.staff.desk, diagnostic_reports:read) lists every report of the patient with its abnormal /
critical flags and hold state; /staff/patients/{patient_id}/reports/{report_id} shows one report
(each read audited `reports:report:view`, as the API's) and clinicians (care:write) release a report
held back for a critical result from there (`service.release`: the care alert acknowledged, audited
`reports:report:release`, the patient told). A staff user bound to institutions reaches only their
institutions' patients (the page rule checks the path's patient)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from sqlalchemy.orm import Session

from carepoints.kit.errors import AppError
from carepoints.kit.time import utc_now
from carepoints.pages.patient.reports import category_name, result_rows
from carepoints.pages.web import Page, staff_page, writing
from carepoints.services.reports import service

router = APIRouter(include_in_schema=False)

Read = Annotated[Page, Depends(staff_page("diagnostic_reports:read"))]
Release = Annotated[Page, Depends(staff_page("care:write"))]

STATUS = {"registered": ("已登记", "Registered"), "preliminary": ("初步报告", "Preliminary"),
          "final": ("正式报告", "Final"), "amended": ("已修订", "Amended"), "corrected": ("已更正", "Corrected"),
          "cancelled": ("已取消", "Cancelled"), "entered-in-error": ("已作废", "Entered in error")}


def section(session: Session, page: Page, pid: str, limit: int = 20) -> list[dict[str, Any]] | None:
    """The summary's 检查报告 rows (None without diagnostic_reports:read); a list is not a read
    of any report's results, so only opening one is audited (as the API)."""
    assert page.principal is not None  # noqa: S101 - signed in (staff_page)
    if not page.principal.can("diagnostic_reports:read"):
        return None
    items = service.staff_reports(session, pid, limit=limit)["items"]
    return [{**r, "category_name": category_name(page, r["category"]),
             "status_name": page.tr(*STATUS.get(r["status"], (r["status"], r["status"])))} for r in items]


def _render(page: Page, pid: str, doc: dict[str, Any], status: int = 200, **values: Any) -> Response:
    return page.render("staff/reports/detail.html", status=status, pid=pid, r=doc,
                       results=result_rows(page, doc["results"]), category=category_name(page, doc["category"]),
                       status_name=page.tr(*STATUS.get(doc["status"], (doc["status"], doc["status"]))), **values)


@router.get("/staff/patients/{patient_id}/reports/{report_id}")
def staff_report(page: Read, patient_id: str, report_id: str) -> Response:
    """One report with its results, flags and hold state; the read is audited."""
    assert page.principal is not None  # noqa: S101 - signed in (staff_page)
    with writing() as session:
        pid = service.patient_id(session, patient_id)
        doc = service.view_report(session, pid, report_id, page.principal.actor(), utc_now())
    return _render(page, pid, doc)


@router.post("/staff/patients/{patient_id}/reports/{report_id}/release")
def release_report(page: Release, patient_id: str, report_id: str) -> Response:
    """A clinician has reviewed the critical result: release the report to the patient."""
    assert page.principal is not None  # noqa: S101 - signed in (staff_page)
    try:
        with writing() as session:
            pid = service.patient_id(session, patient_id)
            doc = service.release(session, pid, report_id, page.principal.actor(), utc_now())
    except AppError as err:
        if err.status_code != 409:
            raise
        with writing() as session:
            doc = service.view_report(session, pid, report_id, page.principal.actor(), utc_now())
        return _render(page, pid, doc, err.status_code, error=err.to_dict())
    return _render(page, pid, doc, flash=True, kind="ok",
                   message=page.tr("已审核并发布给患者", "Reviewed and released to the patient"))
