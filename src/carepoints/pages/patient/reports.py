"""检查检验报告 for the patient: the list (/me/reports: category, name, issued date, 新 for unread,
有异常 for an abnormal result) and one report (/me/reports/{report_id}: each result with its value,
unit, reference range and flag in words, colour and arrow; the hospital's careful note; the
conclusion). The same services and permission as the API (diagnostic_reports:read, a proxy with
view): a report held back for a critical result, a preliminary or withdrawn one is not listed and
opens as 404, as is a report of anyone else. Opening a report marks it read (the API's use case).
Values and conclusions are health data: shown to the patient only, never logged."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from carepoints.kit.time import utc_now
from carepoints.pages.web import Page, patient_page, reading, writing
from carepoints.security import scope
from carepoints.services.reports import service
from carepoints.services.reports.errors import ConsentRequiredError

router = APIRouter(include_in_schema=False)

Reports = Annotated[Page, Depends(patient_page("diagnostic_reports:read"))]

# a report named by its id (carepoints.ownership's table, kept with its page): its owner must be
# within the token's reach, else 404 before the page runs
scope.register_owner("/me/reports/", "report_id", service.owners)

CATEGORIES = {"lab": ("检验", "Lab test"), "imaging": ("检查", "Imaging"), "other": ("其他", "Other")}
# flag → (css class, arrow, words zh, words en): never colour alone
FLAGS: dict[str, tuple[str, str, str, str]] = {
    "N": ("ok", "", "正常", "Normal"),
    "H": ("high", "↑", "偏高", "High"),
    "L": ("low", "↓", "偏低", "Low"),
    "A": ("abnormal", "!", "异常", "Abnormal"),
    "HH": ("critical", "↑↑", "危急 偏高", "Critical, high"),
    "LL": ("critical", "↓↓", "危急 偏低", "Critical, low"),
    "critical": ("critical", "!!", "危急", "Critical"),
}


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def range_text(r: dict[str, Any]) -> str:
    """The reference range as the sheet prints it: "3.5–9.5", "≤5.3", "≥3.5" or the sender's text."""
    low, high = r.get("range_low"), r.get("range_high")
    unit = f" {r['unit']}" if r.get("unit") else ""
    if low is not None and high is not None:
        return f"{_number(low)}–{_number(high)}{unit}"
    if high is not None:
        return f"≤{_number(high)}{unit}"
    if low is not None:
        return f"≥{_number(low)}{unit}"
    return str(r.get("range_text") or "")


def flag_view(page: Page, flag: str | None) -> dict[str, str] | None:
    if flag is None or flag not in FLAGS:
        return None
    css, arrow, zh, en = FLAGS[flag]
    return {"css": css, "arrow": arrow, "words": page.tr(zh, en), "code": flag}


def result_rows(page: Page, results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**r, "shown_value": _number(r["value"]) if isinstance(r["value"], int | float) else (r["value"] or "—"),
             "range": range_text(r), "flag_view": flag_view(page, r["flag"])} for r in results]


def category_name(page: Page, category: str) -> str:
    return page.tr(*CATEGORIES.get(category, CATEGORIES["other"]))


@router.get("/me/reports")
def report_list(page: Reports) -> Response:
    """The patient's released reports, newest first; without `health_data` consent a notice (409)."""
    try:
        with reading() as session:
            doc = service.patient_reports(session, page.patient_id, utc_now())
    except ConsentRequiredError as err:
        return page.render("patient/reports/index.html", status=err.status_code, tab="me", back="/me", items=[],
                           unread=0, error=err.to_dict(), category_name=lambda c: category_name(page, c))
    return page.render("patient/reports/index.html", tab="me", back="/me", items=doc["items"], unread=doc["unread"],
                       error=None, category_name=lambda c: category_name(page, c))


@router.get("/me/reports/{report_id}")
def report_detail(page: Reports, report_id: str) -> Response:
    """One released report: its results, the careful note and the conclusion; marks it read."""
    assert page.principal is not None  # noqa: S101 - signed in (patient_page)
    try:
        with writing() as session:
            doc = service.open_report(session, page.patient_id, report_id, page.principal.actor(), utc_now())
    except ConsentRequiredError as err:
        return page.render("patient/reports/index.html", status=err.status_code, tab="me", back="/me/reports",
                           items=[], unread=0, error=err.to_dict(), category_name=lambda c: category_name(page, c))
    return page.render("patient/reports/detail.html", tab="me", back="/me/reports", r=doc,
                       results=result_rows(page, doc["results"]), category=category_name(page, doc["category"]))
