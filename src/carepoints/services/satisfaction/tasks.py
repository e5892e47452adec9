"""The satisfaction loop's jobs.

`detect-improvements` (every 10 minutes) reads visit reviews and monthly survey responses after its
stored cursors (ids are UUIDv7, so reception order), only ids older than
`satisfaction_scan_margin_seconds` (so a writer that took an id before the horizon has committed
when the scan passes it), one bounded batch per source and transaction. Each source gets its
score (`satisfaction_scores`) and, when low, its improvement item; both are INSERT … ON CONFLICT
DO NOTHING on the unique (kind, source id), so re-runs, overlapping batches and concurrent runs
create each exactly once, and the cursor only moves forward. A survey response is attributed to
the department of the patient's latest attended visit up to `satisfaction_survey_attribution_days`
before it (else to none: the item waits, unattributed, on the queue).

`satisfaction-alerts` (daily) compares each department's average of the last
`satisfaction_alert_window_days` whole days with the days before (`detect.dropped`) and raises one
alert per department and window (unique department + window end; a window overlapping the
department's last alerted one raises none), audited and sent to the admins' inbox."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.orm import Session

from carepoints.audit import service as audit
from carepoints.audit.sealing import id_horizon
from carepoints.audit.service import Actor
from carepoints.config import Settings, get_settings
from carepoints.kit.db import write_tx
from carepoints.kit.ids import new_id
from carepoints.kit.outbox import enqueue_many
from carepoints.kit.time import as_utc, local_date, utc_now
from carepoints.services.satisfaction import detect
from carepoints.services.satisfaction import repository as repo

DETECTOR = Actor.system("detect-improvements")
ALERTER = Actor.system("satisfaction-alerts")


def _horizon(now: datetime, s: Settings) -> str:
    return id_horizon(min(now, utc_now()) - timedelta(seconds=s.satisfaction_scan_margin_seconds))


def _item(kind: str, source_id: str, pid: str, department_id: str | None, appointment_id: str | None,
          verdict: detect.Verdict, now: datetime) -> dict[str, Any]:
    return {"id": new_id(), "kind": kind, "source_id": source_id, "patient_id": pid, "department_id": department_id,
            "appointment_id": appointment_id, "score": verdict.score, "reasons": list(verdict.reasons),
            "status": "open", "assignee_id": None, "assigned_at": None, "resolution": None, "closed_by": None,
            "closed_at": None, "created_at": now, "updated_at": now}


def _store(session: Session, kind: str, found: list[tuple[RowMapping, str | None, str | None, detect.Verdict]],
           now: datetime) -> int:
    """Scores for every source with one, items for the low ones; the count of items created."""
    conn = session.connection()
    tz = get_settings().tz
    repo.add_scores(conn, [
        {"id": new_id(), "source_kind": kind, "source_id": r["id"], "patient_id": r["patient_id"],
         "department_id": dept, "score": v.score, "low": v.low, "at": r["created_at"],
         "day": local_date(r["created_at"], tz)} for r, dept, _appt, v in found if v.score is not None])
    created = 0
    for r, dept, appt, v in found:
        if not v.low:
            continue
        row = _item(kind, r["id"], r["patient_id"], dept, appt, v, now)
        if repo.add_item(conn, row):
            created += 1
            audit.record(session, DETECTOR, "satisfaction:item:create", now, subject_id=row["id"],
                         patient_id=r["patient_id"], kind=kind, source_id=r["id"], department_id=dept,
                         reasons=list(v.reasons))
    return created


def scan_reviews(session: Session, now: datetime, s: Settings | None = None) -> dict[str, int]:
    """One batch of reviews after the cursor: scores and items for the negative ones."""
    s = s or get_settings()
    conn = session.connection()
    rows = repo.reviews_after(conn, repo.cursor(conn, "reviews"), _horizon(now, s), s.satisfaction_batch_size)
    if not rows:
        return {"read": 0, "items": 0}
    found = [(r, r["department_id"], r["appointment_id"],
              detect.review_verdict(int(r["rating"]), s.satisfaction_review_low_rating)) for r in rows]
    created = _store(session, "review", found, now)
    repo.move_cursor(conn, "reviews", rows[-1]["id"], now)
    return {"read": len(rows), "items": created}


def _attribution(conn: Connection, rows: list[RowMapping], days: int) -> dict[str, tuple[str, str]]:
    """Response id → (department, appointment) of the patient's latest attended visit at most
    `days` before the response."""
    ats = [as_utc(r["created_at"]) for r in rows]
    visits = repo.attended_visits(conn, [r["patient_id"] for r in rows], min(ats) - timedelta(days=days), max(ats))
    out: dict[str, tuple[str, str]] = {}
    for r, at in zip(rows, ats, strict=True):
        for v in visits:  # latest first
            start = as_utc(v["slot_start"])
            if v["patient_id"] == r["patient_id"] and at - timedelta(days=days) <= start <= at:
                out[r["id"]] = (str(v["department_id"]), str(v["id"]))
                break
    return out


def scan_surveys(session: Session, now: datetime, s: Settings | None = None) -> dict[str, int]:
    """One batch of monthly survey responses after the cursor: scores and items for the low ones."""
    s = s or get_settings()
    conn = session.connection()
    rows = repo.surveys_after(conn, repo.cursor(conn, "surveys"), _horizon(now, s), s.satisfaction_batch_size)
    if not rows:
        return {"read": 0, "items": 0}
    where = _attribution(conn, rows, s.satisfaction_survey_attribution_days)
    found = []
    for r in rows:
        dept, appt = where.get(r["id"], (None, None))
        verdict = detect.survey_verdict(dict(r["answers"] or {}), s.satisfaction_survey_low_level,
                                        s.satisfaction_survey_low_recommend)
        found.append((r, dept, appt, verdict))
    created = _store(session, "survey", found, now)
    repo.move_cursor(conn, "surveys", rows[-1]["id"], now)
    return {"read": len(rows), "items": created}


def detect_improvements(now: datetime) -> dict[str, Any]:
    """`detect-improvements`: every new review, then every new survey response, in batches."""
    out: dict[str, int] = {"reviews": 0, "surveys": 0, "items": 0}
    for name, step in (("reviews", scan_reviews), ("surveys", scan_surveys)):
        while True:
            with write_tx() as session:
                done = step(session, now)
            out[name] += done["read"]
            out["items"] += done["items"]
            if done["read"] == 0:
                break
    return out


# --- department alerts ------------------------------------------------------------------------

def raise_alerts(session: Session, now: datetime, s: Settings | None = None) -> int:
    """The departments whose satisfaction dropped (module docstring); the count raised."""
    s = s or get_settings()
    conn = session.connection()
    today = local_date(now, s.tz)
    current, previous = detect.windows(today, s.satisfaction_alert_window_days)
    cur, prev = repo.window_sums(conn, current.start, current.end), repo.window_sums(conn, previous.start, previous.end)
    last = repo.last_alert_ends(conn)
    raised = 0
    for dept in sorted(set(cur) & set(prev)):
        drop = detect.dropped(cur[dept], prev[dept], min_samples=s.satisfaction_alert_min_samples,
                              amount=s.satisfaction_alert_drop)
        if drop is None or not detect.may_raise(last.get(dept), current):
            continue
        aid = new_id()
        if not repo.add_alert(conn, {
                "id": aid, "department_id": dept, "window_days": s.satisfaction_alert_window_days,
                "window_start": current.start, "window_end": current.end, "current_avg": drop.current_avg,
                "previous_avg": drop.previous_avg, "current_n": drop.current_n, "previous_n": drop.previous_n,
                "drop": drop.drop, "status": "open", "raised_at": now, "acknowledged_by": None,
                "acknowledged_at": None}):
            continue  # a concurrent run raised it
        raised += 1
        audit.record(session, ALERTER, "satisfaction:alert:raise", now, subject_id=aid, department_id=dept,
                     window_end=current.end.isoformat(), drop=drop.drop)
        row = repo.department(conn, dept)
        enqueue_many(conn, [("satisfaction.dropped", f"satisfaction:{dept}:{current.end.isoformat()}", {
            "alert_id": aid, "department_id": dept, "days": s.satisfaction_alert_window_days,
            "department": f"{row['name_zh']} / {row['name_en']}" if row else dept,
            "drop": f"{drop.drop:.2f}", "current": f"{drop.current_avg:.2f}", "previous": f"{drop.previous_avg:.2f}"})],
            now)
    return raised


def satisfaction_alerts(now: datetime) -> dict[str, Any]:
    """`satisfaction-alerts`: one pass over the departments (a second the same day raises none)."""
    with write_tx() as session:
        return {"alerts": raise_alerts(session, now)}
