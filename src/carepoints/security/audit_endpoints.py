"""Audit API: a patient's access report and the auditor's search of the log."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Query

from carepoints.kit.db import read_tx
from carepoints.kit.errors import ValidationFailedError
from carepoints.kit.time import as_utc, utc_now
from carepoints.kit.web import JSON
from carepoints.security import audit_report
from carepoints.security.deps import require
from carepoints.security.service import Principal

router = APIRouter(tags=["audit"])


@router.get("/patients/{patient_id}/access-report")
def get_access_report(patient_id: str, days: int = Query(default=90, ge=1, le=366),
                      _p: Principal = Depends(require("access_report:read"))) -> JSON:
    """Who looked at or changed this patient's record (查询谁访问了我的数据): entries of the
    last `days` days grouped by actor — kind, role, staff username — with when, what and
    from where. The patient's own actions are not listed."""
    with read_tx() as session:
        return JSON(audit_report.access_report(session, patient_id, utc_now(), days))


@router.get("/audit")
def get_audit(actor_id: str | None = Query(default=None, max_length=36),
              patient_id: str | None = Query(default=None, max_length=36),
              action: str | None = Query(default=None, max_length=160),
              since: datetime | None = None,
              before: str | None = Query(default=None, max_length=36),
              limit: int = Query(default=100, ge=1, le=1000),
              _p: Principal = Depends(require("audit:read"))) -> JSON:
    """The audit log for auditors, newest first: filter by actor, patient, action (a trailing
    `*` matches a prefix, e.g. `http:GET:*`) and time; page on with `before` = the `next` of
    the previous page."""
    try:
        since_utc = as_utc(since) if since is not None else None
    except (OverflowError, ValueError):  # an instant at the edge of the calendar
        raise ValidationFailedError(fields=[{"loc": ["query", "since"], "msg": "out of range"}]) from None
    with read_tx() as session:
        return JSON(audit_report.search(session, actor_id=actor_id, patient_id=patient_id, action=action,
                                        since=since_utc, before=before, limit=limit))
