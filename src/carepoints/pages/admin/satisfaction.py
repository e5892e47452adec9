"""The satisfaction loop's dashboard (/admin/satisfaction, satisfaction:read: admins, auditors):
headline figures (open items, mean and median hours to close, this week's satisfaction), the open
department alerts (an admin acknowledges one: satisfaction:write), open items by department (bar
chart), the weekly trend of satisfaction (line) and of items created, complaints and closed (bars),
and each department's figures. Charts are ECharts from `data-chart` like the analytics pages; each
has its numbers in a table beside it. ?weeks=4|12|26 and ?department_id= narrow the figures."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from carepoints.kit.errors import AppError
from carepoints.kit.time import utc_now
from carepoints.pages.admin.analytics import PALETTE, chart_label
from carepoints.pages.web import Page, reading, staff_page, writing
from carepoints.services.satisfaction import dashboard, service

router = APIRouter(include_in_schema=False)

Read = Annotated[Page, Depends(staff_page("satisfaction:read"))]
Write = Annotated[Page, Depends(staff_page("satisfaction:write"))]
WEEKS = (4, 12, 26)


def _dept(page: Page, d: dict[str, Any] | None) -> str:
    return page.tr(d["name_zh"], d["name_en"]) if d else page.tr("未归属科室", "No department")


def _hours(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def _chart(page: Page, title: str, kind: str, labels: list[str], series: list[tuple[str, list[Any]]],
           ymax: float | None = None) -> dict[str, Any]:
    option = {
        "animation": False, "color": PALETTE,
        "aria": {"enabled": True, "label": {"description": chart_label(page, title)}},
        "title": {"text": title, "left": 0, "textStyle": {"fontSize": 15, "color": "#111827"}},
        "tooltip": {"trigger": "axis"}, "legend": {"top": 26, "left": 0, "textStyle": {"color": "#111827"}},
        "grid": {"left": 8, "right": 16, "top": 64, "bottom": 8, "containLabel": True},
        "xAxis": {"type": "category", "data": labels, "axisLabel": {"color": "#374151", "hideOverlap": True}},
        "yAxis": {"type": "value", "axisLabel": {"color": "#374151"}, **({"min": 1, "max": ymax} if ymax else {})},
        "series": [{"type": kind, "name": name, "data": data, **({"connectNulls": False} if kind == "line" else {})}
                   for name, data in series],
    }
    return {"title": title, "type": kind, "option": json.dumps(option, ensure_ascii=False),
            "label": chart_label(page, title)}


def _view(page: Page, doc: dict[str, Any]) -> dict[str, Any]:
    weeks = [t["week"][5:] for t in doc["trend"]]
    depts = [d for d in doc["departments"] if d["open"]]
    this_week = doc["trend"][-1]["avg_score"] if doc["trend"] else None
    cards = [("open", page.tr("未关闭事项", "Open items"), str(doc["open"])),
             ("median_hours", page.tr("关闭用时中位数(小时)", "Median hours to close"),
              _hours(doc["time_to_close"]["median_hours"])),
             ("avg_hours", page.tr("平均关闭用时(小时)", "Mean hours to close"),
              _hours(doc["time_to_close"]["avg_hours"])),
             ("closed", page.tr("期间关闭", "Closed in the period"), str(doc["time_to_close"]["closed"])),
             ("this_week", page.tr("本周满意度(1–5)", "This week's satisfaction (1–5)"),
              "—" if this_week is None else f"{this_week:.2f}")]
    charts = {
        "open": _chart(page, page.tr("各科室未关闭事项", "Open items by department"), "bar",
                       [_dept(page, d["department"]) for d in depts], [(page.tr("未关闭", "Open"),
                                                                        [d["open"] for d in depts])]),
        "satisfaction": _chart(page, page.tr("每周满意度", "Weekly satisfaction"), "line", weeks,
                               [(page.tr("平均分", "Average"), [t["avg_score"] for t in doc["trend"]])], ymax=5),
        "items": _chart(page, page.tr("每周改进事项", "Improvement items per week"), "bar", weeks,
                        [(page.tr("新增", "Created"), [t["created"] for t in doc["trend"]]),
                         (page.tr("其中投诉", "Of which complaints"), [t["complaints"] for t in doc["trend"]]),
                         (page.tr("关闭", "Closed"), [t["closed"] for t in doc["trend"]])]),
    }
    return {"cards": cards, "charts": charts, "open_departments": depts}


def _page(page: Page, status: int = 200, **values: Any) -> Response:
    q = page.request.query_params
    weeks = int(q["weeks"]) if q.get("weeks") in {str(w) for w in WEEKS} else 12
    department_id = (q.get("department_id") or "")[:36] or None
    with reading() as session:
        doc = dashboard.dashboard(session, utc_now(), weeks=weeks, department_id=department_id)
        departments = service.departments(session)
    assert page.principal is not None  # noqa: S101 - signed in (staff_page)
    return page.render("admin/satisfaction/index.html", status=status, d=doc, weeks=weeks, week_choices=WEEKS,
                       department_id=department_id, departments=departments, dept_name=lambda x: _dept(page, x),
                       hours=_hours, can_write=page.principal.can("satisfaction:write"), **_view(page, doc), **values)


@router.get("/admin/satisfaction")
def satisfaction(page: Read) -> Response:
    """The loop's dashboard."""
    done = page.request.query_params.get("done") == "ack"
    text = page.tr("提醒已确认", "Alert acknowledged") if done else None
    return _page(page, flash=text, message=text, kind="ok")


@router.post("/admin/satisfaction/alerts/{alert_id}/acknowledge")
def acknowledge(page: Write, alert_id: str) -> Response:
    """An admin has seen the department's drop."""
    assert page.principal is not None  # noqa: S101 - signed in (staff_page)
    try:
        with writing() as session:
            dashboard.acknowledge(session, alert_id, page.principal.actor(), utc_now())
    except AppError as err:
        if err.status_code != 409:
            raise
        return _page(page, err.status_code, error=err.to_dict())
    return page.redirect("/admin/satisfaction?done=ack")
