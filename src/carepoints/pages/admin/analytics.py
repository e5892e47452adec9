"""The analytics dashboard of the programme admin and the auditor (analytics:read).

- `/admin/analytics`: the overview for a period (picker with presets): the headline KPI cards of
  every analytics module that has a `headline` (points, visits) with the previous period and an
  arrow, then the panels (trend lines, bars by department, the age-band breakdown, the budget
  gauge) and a link to every view the caller may read.
- `/admin/analytics/{name}`: any registered view as a typed table with its charts, a breakdown
  picker (the view's `breakdowns`), filters (fixed domains as selects; institutions, departments
  and clinicians by drilling into a breakdown's row), the view's own parameters and the export
  buttons; `/admin/analytics/{name}/export.xlsx|csv` answers the same table through
  `analytics.export`, with the page session's principal and reach.

Everything is generic over the registry (`analytics.views`): a view answers a `Report` whose
`extra["charts"]` hints (`bar` / `line` with `x` and `series` column keys, `gauge` with `value`
and `max`, or with a pct `series` column read from the total row) become ECharts options here,
rendered by carepoints.js (`data-chart`). Each chart has the table under it as its text
alternative (its aria-label says so). A report that used today's live figures (`live_at`) says
on the period line when they were computed, in the hospital's local time. `table_of`,
`chart_options`, `run` and `Asked` are shared with the experiments page and the nurses' care list."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from carepoints.analytics import care, catalogue, dims, export, live, periods, views
from carepoints.analytics.endpoints import MEDIA
from carepoints.analytics.experiments import OUTCOME_NAMES
from carepoints.analytics.report import Column, Report
from carepoints.config import get_settings
from carepoints.engagement.care.schemas import AlertKind, AlertStatus
from carepoints.engagement.health.schemas import CONDITION_NAMES
from carepoints.experiments import service as experiments
from carepoints.experiments.schemas import OUTCOMES
from carepoints.kit.errors import PermissionDeniedError
from carepoints.kit.time import local_date, utc_now
from carepoints.pages.staff.queues_common import label
from carepoints.pages.web import Page, invalid, reading, staff_page

router = APIRouter(include_in_schema=False)

_READ = staff_page("analytics:read")
Read = Annotated[Page, Depends(_READ)]

BREAKDOWN_NAMES: dict[str, tuple[str, str]] = {
    "institution": ("机构", "Institution"), "department": ("科室", "Department"),
    "clinician": ("医生", "Clinician"), "rule": ("积分规则", "Rule"), "reward": ("奖品", "Reward"),
    "age_band": ("年龄段", "Age band"), "condition": ("慢病", "Chronic condition"), "channel": ("渠道", "Channel")}
FILTER_NAMES: dict[str, tuple[str, str]] = {
    "institution_id": ("机构", "Institution"), "department_id": ("科室", "Department"),
    "clinician_id": ("医生", "Clinician"), "age_band": ("年龄段", "Age band"),
    "condition": ("慢病", "Chronic condition"), "channel": ("渠道", "Channel")}
PARAM_NAMES: dict[str, tuple[str, str]] = {
    "experiment_id": ("试验", "Experiment"), "outcome": ("结果指标", "Outcome"),
    "baseline": ("基线爽约率(0–1)", "Baseline no-show rate (0–1)"),
    "kind": ("提醒类型", "Alert kind"), "status": ("提醒状态", "Alert status"),
    "limit": ("每页条数", "Rows per page"), "cursor": ("从此提醒编号之后", "After alert (id)"),
    "offset": ("跳过条数", "Rows to skip")}
# a breakdown's row narrows the view to that group: by → the filter it sets
DRILL = {"institution": "institution_id", "department": "department_id", "clinician": "clinician_id",
         "age_band": "age_band", "condition": "condition", "channel": "channel"}
PRESETS: dict[str, tuple[str, str]] = {
    "7": ("近7天", "Last 7 days"), "30": ("近30天", "Last 30 days"), "90": ("近90天", "Last 90 days"),
    "this_month": ("本月", "This month"), "last_month": ("上月", "Last month")}
# the analytics modules with dashboard cards (`headline(session, q, now)`) and the view they belong to
HEADLINES = (("points", "points"), ("visits", "visits"))
# a row that sums the others (the first row of a breakdown, equity's last): left out of charts
TOTAL_KEYS = (None, "total", "all")
PALETTE = ["#0b5cad", "#c2410c", "#047857", "#7c3aed", "#b91c1c", "#0e7490", "#a16207", "#374151"]
NUMERIC = ("int", "pct", "cny", "num")


@dataclass(frozen=True, slots=True)
class Panel:
    """An overview panel: the charts of `types` (at most `limit`) of view `view` broken down by `by`."""

    view: str
    by: str | None
    types: tuple[str, ...]
    limit: int = 1


PANELS = (
    Panel("trend", None, ("line",), 2),
    Panel("points", "department", ("bar",)),
    Panel("visits", "department", ("bar",)),
    Panel("equity", None, ("bar",)),
    Panel("points", "department", ("gauge",)),
)


# --- what the page is asked ------------------------------------------------------------

@dataclass(slots=True)
class Asked:
    """The period, breakdown, filters and view parameters of a request (blank values left out)."""

    start: date | None = None
    end: date | None = None
    preset: str | None = None
    by: str | None = None
    filters: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)

    def query_string(self, **changes: Any) -> str:
        """This request's parameters as a query string, with `changes` (None drops a key)."""
        values: dict[str, Any] = {"start": self.start.isoformat() if self.start else None,
                                  "end": self.end.isoformat() if self.end else None,
                                  "by": self.by, **self.filters, **self.params}
        values.update(changes)
        return urlencode({k: v for k, v in values.items() if v not in (None, "")})


def _day(raw: str | None, name: str) -> date | None:
    if raw is None or not raw.strip():
        return None
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise invalid(name, "日期格式应为 YYYY-MM-DD / A date is written YYYY-MM-DD") from None


def preset_period(preset: str, today: date) -> tuple[date, date]:
    """(start, end) of a preset: the last 7 / 30 / 90 days up to today, this month, last month."""
    if preset == "this_month":
        return today.replace(day=1), today
    if preset == "last_month":
        last = today.replace(day=1) - timedelta(days=1)
        return last.replace(day=1), last
    return today - timedelta(days=int(preset) - 1), today


def asked(request: Request, v: views.View | None, today: date) -> Asked:
    """The request's parameters for view `v` (None: only the period). A preset sets the period;
    unknown parameters (the language, a flash code) are not the view's and are left alone."""
    qp = request.query_params
    out = Asked(start=_day(qp.get("start"), "start"), end=_day(qp.get("end"), "end"))
    preset = qp.get("preset") or None
    if preset is not None:
        if preset not in PRESETS:
            raise invalid("preset", "没有这个时间范围 / No such preset range")
        out.preset = preset
        out.start, out.end = preset_period(preset, today)
    if v is None:
        return out
    out.by = qp.get("by") or None
    out.filters = {k: qp[k].strip() for k in views.FILTERS if qp.get(k, "").strip()}
    out.params = {k: qp[k].strip() for k in v.params if qp.get(k, "").strip()}
    return out


def today_of(now: datetime) -> date:
    return local_date(now, get_settings().tz)


def readable(page: Page, v: views.View) -> None:
    assert page.principal is not None  # noqa: S101 - a staff page has a principal
    if not page.principal.can(v.permission):
        raise PermissionDeniedError(permission=v.permission)


def run(page: Page, v: views.View, a: Asked, now: datetime) -> tuple[views.Query, Report]:
    """View `v` for what was asked, within the caller's reach (403 without the view's permission;
    bad parameters are the view's 4xx)."""
    readable(page, v)
    assert page.principal is not None  # noqa: S101
    asks: dict[str, Any] = {"start": a.start, "end": a.end, "by": a.by, "filters": a.filters,
                            "params": a.params, "institutions": page.principal.institutions}
    q = views.query(v, now, **asks)
    with reading() as session:  # views.run: the report says when today's live figures were computed
        return q, views.run(session, v.name, now, **asks)


def live_at(*instants: str | datetime | None) -> dict[str, str] | None:
    """When the oldest of today's live figures on the page was computed: {iso, text (HH:MM in
    the hospital's local time)}; None when the page used no live figure."""
    found = [datetime.fromisoformat(t) if isinstance(t, str) else t for t in instants if t]
    if not found:
        return None
    oldest = min(found)
    return {"iso": oldest.isoformat(), "text": oldest.astimezone(get_settings().tz).strftime("%H:%M")}


# --- formatting ------------------------------------------------------------------------

def fmt(value: Any, kind: str) -> str:
    """A cell as on screen: pct as a percentage with one decimal, cny with ¥ and two decimals,
    int with thousands separators (an average with one decimal), num with two decimals."""
    if value is None or value == "":
        return "—"
    if kind not in NUMERIC:
        return str(value)
    n = Decimal(str(value))
    if kind == "pct":
        return f"{_round(n * 100, '0.1')}%"
    if kind == "cny":
        return f"{'-' if n < 0 else ''}¥{_round(abs(n), '0.01'):,}"
    if kind == "int" and n == n.to_integral_value():
        return f"{n:,.0f}"
    return f"{_round(n, '0.1' if kind == 'int' else '0.01'):,}"


def _round(n: Decimal, step: str) -> Decimal:
    """Half away from zero, as Excel shows a number (Python's format rounds half to even)."""
    return n.quantize(Decimal(step), rounding=ROUND_HALF_UP)


def _label(page: Page, c: Column) -> str:
    return page.tr(c.zh, c.en)


def _text(page: Page, row: dict[str, Any], c: Column) -> str:
    """A text cell in the page's language: `name_zh` / `name_en` where the row has both, else the
    page's half of a bilingual "中文 / English" label."""
    own = row.get(f"{c.key}_{page.lang}")
    if isinstance(own, str) and own:
        return own
    text = fmt(row.get(c.key), c.kind)
    return page.say(text) if c.kind == "text" else text


def _is_total(row: dict[str, Any]) -> bool:
    return bool(row.get("total")) or ("key" in row and row["key"] in TOTAL_KEYS)


def table_of(page: Page, report: Report, a: Asked | None = None, base: str = "") -> dict[str, Any]:
    """The report as the template's table: typed, formatted cells (`raw` kept for data-value) and,
    for a breakdown that has a filter, each group's drill-down link (`base` + query)."""
    drill = DRILL.get(a.by or "") if a is not None else None
    rows = []
    for row in report.rows:
        cells = [{"key": c.key, "kind": c.kind, "num": c.kind in NUMERIC, "text": _text(page, row, c),
                  "raw": "" if row.get(c.key) is None else str(row.get(c.key))} for c in report.columns]
        link = None
        if drill and a is not None and not _is_total(row) and row.get("key") not in (None, dims.UNKNOWN):
            link = f"{base}?{a.query_string(by=None, **{drill: row['key']})}"
        rows.append({"cells": cells, "total": _is_total(row), "link": link})
    return {"name": report.name, "caption": page.tr(report.title_zh, report.title_en),
            "columns": [{"key": c.key, "label": _label(page, c), "num": c.kind in NUMERIC}
                        for c in report.columns], "rows": rows}


# --- charts ----------------------------------------------------------------------------

def _value(value: Any, kind: str) -> float | None:
    if value is None or value == "":
        return None
    n = float(value)
    return round(n * 100, 2) if kind == "pct" else n


def _title(page: Page, hint: dict[str, Any], report: Report) -> str:
    t = hint.get("title")
    if isinstance(t, dict):
        return page.tr(str(t.get("zh", "")), str(t.get("en", "")))
    return page.tr(report.title_zh, report.title_en)


def _described(page: Page, title: str) -> dict[str, Any]:
    """ECharts' aria setting: the container keeps our label (the title and where its numbers
    are) instead of ECharts' own generated description (5.6: `aria.label.description`)."""
    return {"enabled": True, "label": {"description": chart_label(page, title)}}


def chart_label(page: Page, title: str) -> str:
    return title + page.tr(",数值见下表", " (the numbers are in the table below)")


def _px(text: str, size: int = 12) -> int:
    """About how wide ECharts draws `text` at `size` px (a CJK character is square, others ~0.6)."""
    return math.ceil(sum(size if ord(ch) >= 0x2E80 else size * 0.6 for ch in text))


def _axis_chart(page: Page, hint: dict[str, Any], report: Report, title: str) -> dict[str, Any] | None:
    cols = {c.key: c for c in report.columns}
    x = cols.get(str(hint.get("x")))
    series = [cols[s] for s in hint.get("series") or () if s in cols]
    rows = [r for r in report.rows if not _is_total(r)]
    if x is None or not series or not rows:
        return None
    kind = "line" if hint["type"] == "line" else "bar"
    pct = all(s.kind == "pct" for s in series)
    many = len(rows) > 31
    labels = [_text(page, r, x) for r in rows]
    slanted = kind == "bar" and len(rows) > 4
    # containLabel makes room for the x labels below the plot only, not at its sides: a line's
    # first and last labels are centred on the plot's edges (half of each sticks out; the y labels
    # cover some on the left), a slanted first label reaches left of its bar by its width less
    # the y labels and half a band (about 40 px)
    left, right = 8, 16
    if kind == "line":
        left, right = max(left, _px(labels[0]) // 2 - 8), max(right, _px(labels[-1]) // 2 + 4)
    elif slanted:
        left = max(left, math.ceil(_px(labels[0]) * math.cos(math.radians(30))) - 40)
    return {
        "animation": False, "color": PALETTE, "aria": _described(page, title),
        "title": {"text": title, "left": 0, "textStyle": {"fontSize": 15, "color": "#111827"}},
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 26, "left": 0, "type": "scroll", "textStyle": {"color": "#111827"}},
        # the y axis's name ("%") sits above the plot: under the legend, not on it
        "grid": {"left": left, "right": right, "top": 84 if pct else 64, "bottom": 8, "containLabel": True},
        "xAxis": {"type": "category", "data": labels,
                  "axisLabel": {"color": "#374151", "hideOverlap": True,
                                **({"interval": 0, "rotate": 30} if slanted else {})}},
        "yAxis": {"type": "value", "name": "%" if pct else "", "nameGap": 12,
                  "nameTextStyle": {"color": "#374151", "align": "right"}, "axisLabel": {"color": "#374151"}},
        "series": [{"type": kind, "name": _label(page, s) + ("" if pct or s.kind != "pct" else " (%)"),
                    "data": [_value(r.get(s.key), s.kind) for r in rows],
                    **({"showSymbol": not many, "connectNulls": False} if kind == "line" else {})}
                   for s in series],
    }


def _total_row(report: Report) -> dict[str, Any] | None:
    """The row that sums the others (a view without a breakdown has only that one)."""
    return next((r for r in report.rows if _is_total(r)), report.rows[0] if len(report.rows) == 1 else None)


def _gauged(page: Page, hint: dict[str, Any], report: Report) -> tuple[float, str, str] | None:
    """A gauge's (percentage, caption under it, colour): `value` of `max` (the budget: amber from
    80%, red from 100%), or the total row's share of the hint's first `series` column (a pct
    column of the view; x/series hints as the bar charts have)."""
    used, most = hint.get("value"), hint.get("max")
    if used is not None and most:
        share = round(float(used) / float(most) * 100, 1)
        colour = "#b91c1c" if share >= 100 else ("#c2410c" if share >= 80 else "#047857")
        return share, f"{fmt(used, 'cny')} / {fmt(most, 'cny')}", colour
    cols = {c.key: c for c in report.columns}
    column = next((cols[s] for s in hint.get("series") or () if s in cols), None)
    total = _total_row(report)
    if column is None or column.kind != "pct" or total is None or total.get(column.key) in (None, ""):
        return None
    return round(float(total[column.key]) * 100, 1), _label(page, column), PALETTE[0]


def _gauge(page: Page, hint: dict[str, Any], report: Report, title: str) -> dict[str, Any] | None:
    gauged = _gauged(page, hint, report)
    if gauged is None:
        return None
    share, caption, colour = gauged
    # the figure and its caption sit below the dial, between the ends of the arc, clear of the
    # "0" / "100" labels and of the needle (at most 60% of the radius long)
    return {
        "animation": False, "aria": _described(page, title),
        "title": {"text": title, "left": 0, "textStyle": {"fontSize": 15, "color": "#111827"}},
        "series": [{
            "type": "gauge", "min": 0, "max": max(100, int(share // 10 + 1) * 10) if share > 100 else 100,
            "center": ["50%", "52%"], "radius": "70%", "splitNumber": 5,
            "progress": {"show": True, "width": 12}, "axisLine": {"lineStyle": {"width": 12}},
            "axisTick": {"distance": 2, "length": 4}, "splitLine": {"distance": 2, "length": 8},
            "axisLabel": {"distance": 16, "color": "#374151", "fontSize": 12},
            "pointer": {"length": "58%", "width": 5}, "anchor": {"show": True, "size": 10},
            "itemStyle": {"color": colour},
            "detail": {"valueAnimation": False, "formatter": "{value}%", "fontSize": 20, "fontWeight": "bold",
                       "color": "#111827", "offsetCenter": [0, "80%"]},
            "title": {"offsetCenter": [0, "106%"], "color": "#374151", "fontSize": 14},
            "data": [{"value": share, "name": caption}]}],
    }


def chart_options(page: Page, report: Report, types: tuple[str, ...] | None = None,
                  limit: int | None = None) -> list[dict[str, Any]]:
    """The report's chart hints (those of `types`) as {title, type, option (JSON text), label,
    hint} for `data-chart`; a hint this page cannot draw is left out (the table still shows it)."""
    out: list[dict[str, Any]] = []
    for hint in report.extra.get("charts") or ():
        if not isinstance(hint, dict) or (types is not None and hint.get("type") not in types):
            continue
        title = _title(page, hint, report)
        if hint.get("type") in ("bar", "line"):
            option = _axis_chart(page, hint, report, title)
        elif hint.get("type") == "gauge":
            option = _gauge(page, hint, report, title)
        else:
            option = None
        if option is None:
            continue
        out.append({"title": title, "type": hint["type"], "option": json.dumps(option, ensure_ascii=False),
                    "label": chart_label(page, title), "hint": hint})
        if limit is not None and len(out) >= limit:
            break
    return out


def hint_table(page: Page, hint: dict[str, Any], report: Report) -> dict[str, Any] | None:
    """The numbers of one chart as a small table (its text alternative on the overview)."""
    cols = {c.key: c for c in report.columns}
    if hint.get("type") == "gauge" and hint.get("max"):
        return {"columns": [page.tr("已使用", "Used"), page.tr("预算", "Budget")],
                "rows": [[fmt(hint.get("value"), "cny"), fmt(hint.get("max"), "cny")]]}
    x = cols.get(str(hint.get("x")))
    series = [cols[s] for s in hint.get("series") or () if s in cols]
    if x is None:
        return None
    if hint.get("type") == "gauge":  # the total row's figure
        total = _total_row(report)
        shown = [total] if total is not None else []
    else:
        shown = [r for r in report.rows if not _is_total(r)]
    return {"columns": [_label(page, c) for c in (x, *series)],
            "rows": [[_text(page, r, x), *(fmt(r.get(s.key), s.kind) for s in series)] for r in shown]}


# --- the overview ----------------------------------------------------------------------

def _period_links(page: Page, base: str, a: Asked, extra: dict[str, str] | None = None) -> list[dict[str, Any]]:
    keep = {**(extra or {})}
    return [{"href": f"{base}?{urlencode({**keep, 'preset': key})}", "text": page.tr(*words),
             "current": a.preset == key} for key, words in PRESETS.items()]


def _card(page: Page, item: dict[str, Any]) -> dict[str, Any]:
    value, before, kind = item.get("value"), item.get("previous"), str(item.get("kind") or "int")
    direction, change = None, None
    if isinstance(value, int | float | Decimal) and isinstance(before, int | float | Decimal):
        v, b = Decimal(str(value)), Decimal(str(before))
        direction = "up" if v > b else ("down" if v < b else "same")
        if kind == "pct":
            change = f"{(v - b) * 100:+.1f} " + page.tr("个百分点", "points")
        elif b != 0:
            change = f"{(v - b) / abs(b) * 100:+.1f}%"
    return {"key": item.get("key"), "label": page.tr(str(item.get("zh", "")), str(item.get("en", ""))),
            "value": fmt(value, kind), "previous": fmt(before, kind), "direction": direction, "change": change}


def _headlines(page: Page, a: Asked, now: datetime) -> tuple[list[dict[str, Any]], list[datetime | None]]:
    """The KPI cards, and when the live figures each module read were computed."""
    assert page.principal is not None  # noqa: S101
    registered = {v.name: v for v in views.all_views()}
    cards: list[dict[str, Any]] = []
    computed: list[datetime | None] = []
    for module_name, view_name in HEADLINES:
        headline = getattr(getattr(catalogue, module_name, None), "headline", None)
        v = registered.get(view_name)
        if headline is None or v is None or not page.principal.can(v.permission):
            continue
        q = views.query(v, now, start=a.start, end=a.end, institutions=page.principal.institutions)
        with reading() as session:
            cards += [{**_card(page, item), "group": view_name} for item in headline(session, q, now)]
            computed.append(live.computed_at(session))
    return cards, computed


def _panels(page: Page, a: Asked, now: datetime) -> tuple[list[dict[str, Any]], list[str | None]]:
    """The charts of `PANELS`, and their reports' `live_at`."""
    assert page.principal is not None  # noqa: S101
    registered = {v.name: v for v in views.all_views()}
    reports: dict[tuple[str, str | None], Report] = {}
    out = []
    for panel in PANELS:
        v = registered.get(panel.view)
        if v is None or not page.principal.can(v.permission):
            continue
        by = panel.by if panel.by in v.breakdowns else None
        if (panel.view, by) not in reports:
            reports[(panel.view, by)] = run(page, v, Asked(a.start, a.end, by=by), now)[1]
        report = reports[(panel.view, by)]
        href = f"/admin/analytics/{v.name}?{Asked(a.start, a.end, by=by).query_string()}"
        charts = chart_options(page, report, panel.types, panel.limit)
        out += [{**chart, "view": v.name, "table": hint_table(page, chart["hint"], report), "href": href}
                for chart in charts]
        if not charts and "gauge" in panel.types:  # the view draws it only for a budget set, whole alliance
            out.append({"type": "note", "view": v.name, "title": page.tr("预算使用", "Budget used"),
                        "text": page.tr("未设定年度预算,或当前范围不是整个医联体。",
                                        "No annual budget is set, or the reach is not the whole alliance."),
                        "href": "/admin/budget"})
    return out, [r.extra.get("live_at") for r in reports.values()]


@router.get("/admin/analytics")
def overview(page: Read, request: Request) -> Response:
    """The dashboard for a period (default: the last 30 days up to today, live for today)."""
    now = utc_now()
    today = today_of(now)
    a = asked(request, None, today)
    period = periods.resolve(a.start, a.end, today, get_settings().analytics_max_range_days)
    a.start, a.end = period.start, period.end
    assert page.principal is not None  # noqa: S101
    links = [{"name": v.name, "title": page.tr(v.title_zh, v.title_en),
              "href": f"/admin/analytics/{v.name}?{a.query_string()}"}
             for v in views.all_views() if page.principal.can(v.permission)]
    cards, computed = _headlines(page, a, now)
    panels, panels_live = _panels(page, a, now)
    return page.render("admin/analytics/index.html", period=period, previous=period.previous(), asked=a,
                       presets=_period_links(page, "/admin/analytics", a), cards=cards, panels=panels,
                       links=links, live_at=live_at(*computed, *panels_live))


# --- one view ----------------------------------------------------------------------------

def _filter_controls(page: Page, a: Asked) -> list[dict[str, Any]]:
    """Fixed-domain filters as selects; id filters (set by drilling down) as removable chips."""
    choices: dict[str, list[tuple[str, str]]] = {
        "age_band": [(b, page.tr(*dims.band_names(b))) for b in dims.age_bands()],
        "channel": [(c, page.tr(*dims.CHANNEL_NAMES[c])) for c in dims.CHANNELS],
        "condition": [(str(c.value), page.tr(*names)) for c, names in CONDITION_NAMES.items()],
    }
    out: list[dict[str, Any]] = []
    for key in views.FILTERS:
        label = page.tr(*FILTER_NAMES[key])
        if key in choices:
            out.append({"key": key, "label": label, "options": choices[key], "value": a.filters.get(key, "")})
        elif key in a.filters:
            out.append({"key": key, "label": label, "options": None, "value": a.filters[key],
                        "clear": a.query_string(**{key: None})})
    return out


def param_choices(page: Page, name: str) -> list[tuple[str, str]] | None:
    """The choices of a view parameter the page knows (experiment, outcome, the care list's alert
    kind in the words of its kind column and status as the nurses' care list says it), else None."""
    if name == "kind":
        return [(k.value, page.tr(*care.KIND_NAMES.get(k.value, (k.value, k.value)))) for k in AlertKind]
    if name == "status":
        return [(s.value, label(page, "alert_status", s.value)) for s in AlertStatus]
    if name == "outcome":
        return [(o, page.tr(*OUTCOME_NAMES[o])) for o in OUTCOMES]
    if name == "experiment_id":
        with reading() as session:
            found = experiments.listing(session)
        return [(e["id"], f"{page.tr(e['names']['zh'], e['names']['en'])} ({e['code']})")
                for e in found if e["started_at"] is not None]
    return None


def _param_controls(page: Page, v: views.View, a: Asked) -> list[dict[str, Any]]:
    """The view's own parameters: a select where the page knows the choices, else a text box."""
    return [{"key": p, "label": page.tr(*PARAM_NAMES.get(p, (p, p))), "value": a.params.get(p, ""),
             "options": param_choices(page, p)} for p in v.params]


def controls(page: Page, v: views.View, a: Asked) -> dict[str, Any]:
    """The breakdown picker, filters and view parameters of a view's form."""
    return {"breakdowns": [(b, page.tr(*BREAKDOWN_NAMES[b])) for b in v.breakdowns],
            "filters": _filter_controls(page, a), "params": _param_controls(page, v, a)}


@router.get("/admin/analytics/{name}")
def one_view(page: Read, request: Request, name: str) -> Response:
    """One view as a table with its charts, breakdown, filters and the Excel / CSV export."""
    v = views.get(name)
    readable(page, v)
    now = utc_now()
    a = asked(request, v, today_of(now))
    q, report = run(page, v, a, now)
    base = f"/admin/analytics/{v.name}"
    keep = {**({"by": a.by} if a.by else {}), **a.filters, **a.params}
    return page.render(
        "admin/analytics/view.html", view=v, title=page.tr(report.title_zh, report.title_en), report=report,
        period=q.period, previous=report.previous,
        report_period=report.period if report.period is not None and report.period != q.period else None,
        asked=a, base=base,
        presets=_period_links(page, base, a, keep), charts=chart_options(page, report),
        table=table_of(page, report, a, base), **controls(page, v, a),
        export=a.query_string(start=q.period.start.isoformat(), end=q.period.end.isoformat()),
        keep=keep, rolled_through=report.extra.get("rolled_through"),
        live_at=live_at(report.extra.get("live_at")),
        overview=f"/admin/analytics?{urlencode(q.period.as_dict())}")


def _export(page: Page, request: Request, name: str, fmt_: str) -> Response:
    v = views.get(name)
    readable(page, v)
    now = utc_now()
    q, report = run(page, v, asked(request, v, today_of(now)), now)
    body = export.to_xlsx(report, page.lang) if fmt_ == "xlsx" else export.to_csv(report, page.lang)
    period = report.period or q.period
    filename = f"{v.name}_{period.start.isoformat()}_{period.end.isoformat()}.{fmt_}"
    return page.finish(Response(body, media_type=MEDIA[fmt_],
                                headers={"Content-Disposition": f'attachment; filename="{filename}"'}))


@router.get("/admin/analytics/{name}/export.xlsx")
def export_xlsx(page: Read, request: Request, name: str) -> Response:
    """The view's table as an Excel workbook (the numbers on screen, typed cells)."""
    return _export(page, request, name, "xlsx")


@router.get("/admin/analytics/{name}/export.csv")
def export_csv(page: Read, request: Request, name: str) -> Response:
    """The view's table as CSV (UTF-8 with BOM, so Excel reads the Chinese headers)."""
    return _export(page, request, name, "csv")
