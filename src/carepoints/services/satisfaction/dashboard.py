"""The loop's dashboard: open items by department, time to close (mean and median hours), the
weekly trend of satisfaction and of items (created, complaints, closed), each department's
figures, and the department alerts (acknowledged by an admin). Weeks are ISO weeks of the
hospital's calendar; the range is the last `weeks` weeks, the current one included."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.orm import Session

from carepoints.audit import service as audit
from carepoints.audit.service import Actor
from carepoints.config import get_settings
from carepoints.kit.time import as_utc, day_start_utc, iso_z, local_date
from carepoints.services.satisfaction import detect
from carepoints.services.satisfaction import repository as repo
from carepoints.services.satisfaction.errors import AlertAcknowledgedError, AlertNotFoundError, DepartmentNotFoundError

UNATTRIBUTED = "none"


def _avg(total: float, n: int) -> float | None:
    return round(total / n, 2) if n else None


def _hours(row: RowMapping) -> float:
    return (as_utc(row["closed_at"]) - as_utc(row["created_at"])).total_seconds() / 3600


def alert_doc(row: RowMapping) -> dict[str, Any]:
    return {"id": row["id"], "department": {"id": row["department_id"], "name_zh": row["department_zh"],
                                            "name_en": row["department_en"]},
            "window_days": row["window_days"], "window_start": row["window_start"].isoformat(),
            "window_end": row["window_end"].isoformat(), "current_avg": row["current_avg"],
            "previous_avg": row["previous_avg"], "current_n": row["current_n"], "previous_n": row["previous_n"],
            "drop": row["drop"], "status": row["status"], "raised_at": iso_z(row["raised_at"]),
            "acknowledged_by": row["acknowledged_by"],
            "acknowledged_at": iso_z(row["acknowledged_at"]) if row["acknowledged_at"] else None}


def alerts(session: Session, *, status: str | None = None, limit: int = 50) -> dict[str, Any]:
    return {"items": [alert_doc(r) for r in repo.alert_list(session.connection(), status, limit)]}


def acknowledge(session: Session, alert_id: str, actor: Actor, now: datetime) -> dict[str, Any]:
    """An admin has seen the drop (once: 409 `satisfaction.alert_acknowledged`); audited."""
    conn = session.connection()
    row = repo.alert(conn, alert_id)
    if row is None:
        raise AlertNotFoundError()
    if not repo.acknowledge_alert(conn, row["id"], actor.id, now):
        raise AlertAcknowledgedError()
    audit.record(session, actor, "satisfaction:alert:acknowledge", now, subject_id=row["id"],
                 department_id=row["department_id"])
    fresh = repo.alert(conn, row["id"])
    assert fresh is not None  # noqa: S101 - just updated
    return alert_doc(fresh)


def dashboard(session: Session, now: datetime, *, weeks: int = 12, department_id: str | None = None
              ) -> dict[str, Any]:
    """The dashboard's figures (module docstring); `department_id` narrows every figure to one."""
    conn = session.connection()
    tz = get_settings().tz
    if department_id is not None and repo.department(conn, department_id) is None:
        raise DepartmentNotFoundError()
    today = local_date(now, tz)
    mondays = detect.weeks(today, weeks)
    since = day_start_utc(mondays[0], tz)
    names = {d["id"]: d for d in repo.departments(conn)}

    per: dict[str, dict[str, Any]] = defaultdict(lambda: {"open": 0, "open_by_kind": {}, "hours": [],
                                                          "score_sum": 0.0, "scores": 0})
    for dept, kind, n in repo.open_counts(conn, department_id):
        d = per[dept or UNATTRIBUTED]
        d["open"] += n
        d["open_by_kind"][kind] = d["open_by_kind"].get(kind, 0) + n
    closed = repo.closed_since(conn, since, department_id)
    for r in closed:
        per[r["department_id"] or UNATTRIBUTED]["hours"].append(_hours(r))
    if department_id is None:
        for dept, (total, n) in repo.department_scores(conn, mondays[0], today).items():
            per[dept or UNATTRIBUTED]["score_sum"] += total
            per[dept or UNATTRIBUTED]["scores"] += n

    trend: dict[str, dict[str, Any]] = {m.isoformat(): {"week": m.isoformat(), "score_sum": 0.0, "scores": 0,
                                                        "created": 0, "complaints": 0, "closed": 0} for m in mondays}
    for day, total, n in repo.daily_scores(conn, mondays[0], today, department_id):
        w = trend.get(detect.week_of(day).isoformat())
        if w is not None:
            w["score_sum"] += total
            w["scores"] += n
            if department_id is not None:
                per[department_id]["score_sum"] += total
                per[department_id]["scores"] += n
    for r in repo.created_since(conn, since, department_id):
        w = trend.get(detect.week_of(local_date(r["created_at"], tz)).isoformat())
        if w is not None:
            w["created"] += 1
            w["complaints"] += int(r["kind"] == "complaint")
    for r in closed:
        w = trend.get(detect.week_of(local_date(r["closed_at"], tz)).isoformat())
        if w is not None:
            w["closed"] += 1

    def dept_doc(key: str, d: dict[str, Any]) -> dict[str, Any]:
        row = names.get(key)
        return {"department": None if row is None else {"id": key, "name_zh": row["name_zh"],
                                                        "name_en": row["name_en"]},
                "open": d["open"], "open_by_kind": d["open_by_kind"], "avg_score": _avg(d["score_sum"], d["scores"]),
                "scores": d["scores"], **detect.close_stats(d["hours"])}

    departments = sorted((dept_doc(k, d) for k, d in per.items()), key=lambda x: (-x["open"], x["avg_score"] or 9))
    return {
        "start": mondays[0].isoformat(), "end": today.isoformat(), "weeks": weeks, "department_id": department_id,
        "open": sum(d["open"] for d in per.values()),
        "time_to_close": detect.close_stats(_hours(r) for r in closed),
        "departments": departments,
        "trend": [{"week": w["week"], "avg_score": _avg(w["score_sum"], w["scores"]), "scores": w["scores"],
                   "created": w["created"], "complaints": w["complaints"], "closed": w["closed"]}
                  for w in trend.values()],
        "alerts": [alert_doc(r) for r in repo.alert_list(conn, "open", 20)
                   if department_id is None or r["department_id"] == department_id],
    }
