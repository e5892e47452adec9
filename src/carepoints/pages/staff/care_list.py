"""The nurses' care list (/staff/care-list, care:read: nurse, clinician, admin): the `care_list`
analytics view (care alerts: abnormal readings and answers, overdue follow-ups, critical values
and the inactivity rule's flags, newest first) with its filters (kind, status, age band,
condition; a department by choosing it in a row) and its pages (`cursor`).

The view answers ids and codes only; the page shows them as a nurse reads them: the patient's
masked name (as every staff queue does) linking to their record for whoever may read it
(patients:read), codes in words, the department's name. Acknowledging and resolving stay on the
care-alerts queue (/staff/care-alerts), which this list links to."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from carepoints.analytics import dims, views
from carepoints.engagement.care.schemas import AlertKind, AlertStatus
from carepoints.engagement.health.schemas import CONDITION_NAMES
from carepoints.kit.templating import local
from carepoints.kit.time import utc_now
from carepoints.pages.admin.analytics import Asked, asked, run, today_of
from carepoints.pages.staff.queues_common import label, names
from carepoints.pages.web import Page, reading, staff_page
from carepoints.scheduling import service as scheduling

router = APIRouter(include_in_schema=False)

VIEW = "care_list"
BASE = "/staff/care-list"
CONDITIONS = {str(c.value): words for c, words in CONDITION_NAMES.items()}


def _department_names(page: Page, ids: set[str]) -> dict[str, str]:
    out = {}
    with reading() as session:
        for dept_id in ids:
            row = scheduling.catalogue_entry(session, "department", dept_id)
            out[dept_id] = page.tr(row["name_zh"], row["name_en"]) if row else dept_id[:8]
    return out


def _rows(page: Page, report_rows: list[dict[str, Any]], a: Asked) -> list[dict[str, Any]]:
    assert page.principal is not None  # noqa: S101 - a staff page has a principal
    with reading() as session:
        who = names(session, [r.get("patient_id") for r in report_rows])
    depts = _department_names(page, {r["department_id"] for r in report_rows if r.get("department_id")})
    record = page.principal.can("patients:read")
    out = []
    for r in report_rows:
        pid, dept = r.get("patient_id"), r.get("department_id")
        conditions = [page.tr(*CONDITIONS[c]) if c in CONDITIONS else c
                      for c in str(r.get("conditions") or "").split(",") if c]
        assigned = r.get("assigned_to")
        out.append({
            "alert_id": r.get("alert_id"), "patient": who.get(pid or "", "?"),
            "href": f"/staff/patients/{pid}" if pid and record else None,
            "kind": r.get("kind"), "kind_name": label(page, "alert_kind", r.get("kind")),
            "severity": r.get("severity"), "severity_name": label(page, "severity", r.get("severity")),
            "status": r.get("status"), "status_name": label(page, "alert_status", r.get("status")),
            "since": local(r.get("since")), "age_band": page.tr(*dims.band_names(str(r.get("age_band") or "unknown"))),
            "conditions": "、".join(conditions) if page.lang == "zh" else ", ".join(conditions),
            "department": depts.get(dept) if dept else None,
            "department_href": f"{BASE}?{a.query_string(department_id=dept, cursor=None)}" if dept else None,
            "last_reading_day": r.get("last_reading_day"),
            "assigned": (page.tr("我", "Me") if assigned == page.principal.id
                         else page.tr("已有人负责", "Taken")) if assigned else None,
        })
    return out


@router.get("/staff/care-list")
def care_list(page: Annotated[Page, Depends(staff_page("care:read"))], request: Request) -> Response:
    """Care alerts and inactive patients to contact, with filters and pages."""
    v = views.get(VIEW)
    now = utc_now()
    a = asked(request, v, today_of(now))
    _q, report = run(page, v, a, now)
    extra = report.extra
    department = a.filters.get("department_id")
    choices = {
        "kind": [(k.value, label(page, "alert_kind", k.value)) for k in AlertKind],
        "status": [(s.value, label(page, "alert_status", s.value)) for s in AlertStatus],
        "age_band": [(b, page.tr(*dims.band_names(b))) for b in dims.age_bands()],
        "condition": [(c, page.tr(*words)) for c, words in CONDITIONS.items()],
    }
    return page.render(
        "staff/care_list.html", view=v, rows=_rows(page, report.rows, a), total=extra.get("total"),
        next_href=f"{BASE}?{a.query_string(cursor=extra['next_cursor'], offset=None)}"
        if extra.get("next_cursor") else None,
        first_href=f"{BASE}?{a.query_string(cursor=None, offset=None)}" if "cursor" in a.params else None,
        choices=choices, asked=a,
        department=_department_names(page, {department}).get(department) if department else None,
        clear_department=f"{BASE}?{a.query_string(department_id=None, cursor=None)}",
        ignored=extra.get("ignored_filters") or [])
