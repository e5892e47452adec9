"""智能号源 for the programme admin (/admin/forecast): the latest demand forecast per department —
the models compared on the held-back weeks (WAPE, MAE) with the one chosen, a line chart of the
daily history, the held-back forecast and the forecast of the coming weeks, the suggested capacity
of every coming session and weekly template with an apply button, and the off-peak windows — and
a form to run a new forecast.

Reads need forecast:read (admins, auditors); running and applying forecast:write (admins), through
services.forecast like the API (POST /api/v1/forecast/runs, …/suggestions/{id}/apply): applying
changes the capacity through the scheduling service and is audited there; a refusal (more
bookings than the new capacity, the session started, a newer forecast) is shown on the page."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form
from fastapi.responses import Response

from carepoints.kit.errors import AppError
from carepoints.kit.ids import is_id
from carepoints.kit.time import utc_now
from carepoints.pages.web import Page, invalid, reading, staff_page, writing
from carepoints.services.forecast import service
from carepoints.services.forecast.schemas import RunCreate

router = APIRouter(include_in_schema=False)

Read = Annotated[Page, Depends(staff_page("forecast:read"))]
Write = Annotated[Page, Depends(staff_page("forecast:write"))]
BASE = "/admin/forecast"
FORM_ERRORS = (404, 409, 422)
MODEL_NAMES: dict[str, tuple[str, str]] = {
    "weekday_hour_mean": ("星期×时段均值", "Weekday × hour mean"),
    "seasonal_naive": ("上周同期", "Same hour last week"),
    "holt_winters": ("Holt-Winters 季节模型", "Holt-Winters seasonal"),
    "flat_mean": ("时段均值(不分星期)", "Hourly mean (no weekday)"),
}
WEEKDAYS: dict[int, tuple[str, str]] = {1: ("周一", "Mon"), 2: ("周二", "Tue"), 3: ("周三", "Wed"),
                                        4: ("周四", "Thu"), 5: ("周五", "Fri"), 6: ("周六", "Sat"), 7: ("周日", "Sun")}
STATUS: dict[str, tuple[str, str]] = {"pending": ("待应用", "To apply"), "unchanged": ("无需调整", "No change"),
                                      "applied": ("已应用", "Applied"), "superseded": ("已过期", "Superseded")}
DONE: dict[str, tuple[str, str]] = {
    "run": ("预测已完成,号源建议已更新", "Forecast done: the capacity suggestions are up to date"),
    "applied": ("已按建议调整号源数量", "The capacity was changed as suggested"),
}
PALETTE = ["#1d4ed8", "#b45309", "#047857"]


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def chart(page: Page, dep: dict[str, Any]) -> dict[str, Any]:
    """The department's line chart (ECharts option as JSON text) and its aria label."""
    s = dep["series"]
    title = page.tr(f"{dep['name_zh']} · 每日需求", f"{dep['name_en']} · daily demand")
    names = [page.tr("实际", "Actual"), page.tr("回测", "Back-test"), page.tr("预测", "Forecast")]
    option = {
        "animation": False, "color": PALETTE,
        "aria": {"enabled": True, "label": {"description": title}},
        "title": {"text": title, "left": 0, "textStyle": {"fontSize": 15, "color": "#111827"}},
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 26, "left": 0, "type": "scroll", "textStyle": {"color": "#111827"}},
        "grid": {"left": 8, "right": 24, "top": 64, "bottom": 8, "containLabel": True},
        "xAxis": {"type": "category", "data": [d[5:] for d in s["days"]],
                  "axisLabel": {"color": "#374151", "hideOverlap": True}},
        "yAxis": {"type": "value", "axisLabel": {"color": "#374151"}},
        "series": [{"type": "line", "name": names[0], "data": s["actual"], "showSymbol": False},
                   {"type": "line", "name": names[1], "data": s["backtest"], "showSymbol": False,
                    "lineStyle": {"type": "dashed"}},
                   {"type": "line", "name": names[2], "data": s["forecast"], "showSymbol": False,
                    "lineStyle": {"width": 3}}],
    }
    label = page.tr(f"{dep['name_zh']}:每日需求的实际值、留出期回测和未来预测,数值见下表",
                    f"{dep['name_en']}: daily demand, actual, back-tested on the held-back days and forecast "
                    "(the numbers are in the table below)")
    return {"option": json.dumps(option, ensure_ascii=False), "label": label}


def _index(page: Page, status: int = 200, **values: Any) -> Response:
    with reading() as session:
        run = service.latest(session)
    departments = run["departments"] if run else []
    wanted = values.pop("department", None) or page.request.query_params.get("department") or ""
    dep = next((d for d in departments if d["department_id"] == wanted), departments[0] if departments else None)
    suggestions = [s for s in (run or {}).get("suggestions", []) if dep and s["department_id"] == dep["department_id"]]
    done = DONE.get(page.request.query_params.get("done") or "")
    if done:
        values.setdefault("flash", page.tr(*done))
        values.setdefault("message", page.tr(*done))
        values.setdefault("kind", "ok")
    can_write = page.principal is not None and page.principal.can("forecast:write")
    return page.render(
        "admin/forecast/index.html", status=status, run=run, departments=departments, dep=dep,
        chart=chart(page, dep) if dep else None, sessions=[s for s in suggestions if s["kind"] == "session"],
        templates=[s for s in suggestions if s["kind"] == "template"], can_write=can_write,
        model_name=lambda n: page.tr(*MODEL_NAMES.get(n, (n, n))), weekday=lambda w: page.tr(*WEEKDAYS[int(w)]),
        status_name=lambda s: page.tr(*STATUS.get(s, (s, s))), pct=_pct, **{"error": None, **values})


@router.get(BASE)
def forecast_page(page: Read) -> Response:
    """The latest forecast of a department (?department=), its suggestions and off-peak windows."""
    return _index(page)


def _weeks(raw: str) -> int:
    value = raw.strip()
    if not value.isdigit() or not 1 <= int(value) <= 8:
        raise invalid("weeks", "请选择 1 到 8 周 / Choose 1 to 8 weeks")
    return int(value)


@router.post(f"{BASE}/runs")
def run_forecast(page: Write, weeks: Annotated[str, Form(max_length=2)] = "2",
                 headroom: Annotated[str, Form(max_length=6)] = "") -> Response:
    """Forecast the coming weeks (services.forecast.prepare then save, as POST /api/v1/forecast/runs)."""
    assert page.principal is not None  # noqa: S101 - signed in (staff_page)
    now = utc_now()
    try:
        raw = headroom.strip()
        try:
            body = RunCreate.model_validate({"weeks": _weeks(weeks), "headroom": raw or None})
        except ValueError:
            raise invalid("headroom", "余量系数应在 1.00 到 2.00 之间 / Headroom must be 1.00 to 2.00") from None
        with reading() as session:
            plan = service.prepare(session, body, now)
        with writing() as session:
            service.save(session, plan, page.principal.actor(), now)
    except AppError as err:
        if err.status_code not in FORM_ERRORS:
            raise
        return _index(page, err.status_code, error=err.to_dict())
    return page.redirect(f"{BASE}?done=run")


@router.post(BASE + "/suggestions/{suggestion_id}/apply")
def apply_suggestion(page: Write, suggestion_id: str,
                     department: Annotated[str, Form(max_length=36)] = "") -> Response:
    """Apply one suggestion (services.forecast.apply, as POST /api/v1/forecast/suggestions/{id}/apply)."""
    assert page.principal is not None  # noqa: S101 - signed in (staff_page)
    try:
        with writing() as session:
            service.apply(session, suggestion_id, page.principal.actor(), utc_now())
    except AppError as err:
        if err.status_code not in FORM_ERRORS:
            raise
        return _index(page, err.status_code, error=err.to_dict(), department=department)
    back = f"&department={department}" if is_id(department) else ""
    return page.redirect(f"{BASE}?done=applied{back}#s-{suggestion_id}")
