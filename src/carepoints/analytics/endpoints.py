"""Analytics API: `GET /api/v1/analytics` lists the views, `GET /api/v1/analytics/{name}`
answers one as JSON, CSV or Excel (`format=`). Every parameter has a default: the last 30
days, no breakdown."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from carepoints.analytics import export, views
from carepoints.analytics.errors import BadFormatError
from carepoints.kit.db import read_tx
from carepoints.kit.errors import PermissionDeniedError
from carepoints.kit.time import utc_now
from carepoints.kit.web import JSON
from carepoints.security.deps import require_any
from carepoints.security.service import Principal

router = APIRouter(tags=["analytics"])

# a caller holding any view's permission reaches the routes; each view then checks its own
READERS = require_any("analytics:read", "care:read", "experiments:read")

_OWN = {"start", "end", "by", "format", "lang"}
MEDIA = {"csv": "text/csv; charset=utf-8",
         "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def _allowed(principal: Principal, permission: str) -> None:
    if not principal.can(permission):
        raise PermissionDeniedError(permission=permission)


@router.get("/analytics")
def list_views(principal: Principal = Depends(READERS)) -> JSON:
    """The views this caller may read, with the breakdowns and parameters each accepts."""
    return JSON({"views": [
        {"name": v.name, "title": {"zh": v.title_zh, "en": v.title_en}, "breakdowns": list(v.breakdowns),
         "filters": list(views.FILTERS), "params": list(v.params)}
        for v in views.all_views() if principal.can(v.permission)]})


@router.get("/analytics/{name}")
def get_view(name: str, request: Request, start: date | None = None, end: date | None = None,
             by: str | None = None, format: str = Query("json", alias="format"),
             lang: str = Query("zh", pattern="^(zh|en)$"),
             principal: Principal = Depends(READERS)) -> Response:
    """One view for a period (default: the last 30 days up to today, live for today) with the
    previous period where it compares; `by` breaks it down, the shared filters
    (`institution_id`, `department_id`, `clinician_id`, `age_band`, `condition`, `channel`) and
    the view's own parameters narrow it. `format=csv|xlsx` downloads the same table."""
    v = views.get(name)
    _allowed(principal, v.permission)
    if format not in ("json", "csv", "xlsx"):
        raise BadFormatError()
    extra = {k: val for k, val in request.query_params.items() if k not in _OWN}
    filters = {k: val for k, val in extra.items() if k in views.FILTERS}
    params = {k: val for k, val in extra.items() if k not in views.FILTERS}
    now = utc_now()
    q = views.query(v, now, start=start, end=end, by=by, filters=filters, params=params,
                    institutions=principal.institutions)
    with read_tx() as session:
        report = v.fn(session, q, now)
    if format == "json":
        return JSON(report.to_json())
    body = export.to_csv(report, lang) if format == "csv" else export.to_xlsx(report, lang)
    filename = f"{name}_{q.period.start.isoformat()}_{q.period.end.isoformat()}.{format}"
    return Response(body, media_type=MEDIA[format],
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
