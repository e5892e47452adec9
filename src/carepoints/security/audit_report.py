"""Reading the audit log for people: the patient's access report ("who looked at
my data") and the auditor's search. Actors are shown by kind and role, staff
by username and API keys by their system name — never any other personal data."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import column, select
from sqlalchemy import table as table_clause
from sqlalchemy.orm import Session

from carepoints.audit import service as audit
from carepoints.audit.errors import AuditPatientNotFoundError, BadAuditCursorError
from carepoints.kit.ids import is_id
from carepoints.kit.time import iso_z
from carepoints.security.models import ApiKey, StaffUser

# the patients table by name only: security sits below patients and may not import it
_patients = table_clause("patients", column("id"))


def _names(session: Session, rows: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """(kind, id) -> username (staff) or key name (API keys)."""
    conn = session.connection()
    staff = sorted({r["actor_id"] for r in rows if r["actor_kind"] == "staff"})
    keys = sorted({r["actor_id"] for r in rows if r["actor_kind"] == "api_key"})
    out: dict[tuple[str, str], str] = {}
    if staff:
        out.update((("staff", r[0]), r[1]) for r in conn.execute(
            select(StaffUser.id, StaffUser.username).where(StaffUser.id.in_(staff))))
    if keys:
        out.update((("api_key", r[0]), r[1]) for r in conn.execute(
            select(ApiKey.id, ApiKey.name).where(ApiKey.id.in_(keys))))
    return out


def _actor(row: dict[str, Any], names: dict[tuple[str, str], str]) -> dict[str, Any]:
    actor: dict[str, Any] = {"kind": row["actor_kind"], "id": row["actor_id"], "role": row["actor_role"]}
    name = names.get((row["actor_kind"], row["actor_id"]))
    if name is not None:
        actor["username" if row["actor_kind"] == "staff" else "name"] = name
    return actor


def _where(row: dict[str, Any]) -> dict[str, Any]:
    details = row["details"] or {}
    return {k: details[k] for k in ("ip", "status", "request_id") if k in details}


def access_report(session: Session, patient_id: str, now: datetime, days: int, *,
                  limit: int = 1000) -> dict[str, Any]:
    """Who read or changed the patient's record in the last `days` days, grouped by
    actor (most recent first): when, what (action) and from where. The patient's own
    actions and the jobs' are left out."""
    if not is_id(patient_id) or session.connection().execute(
            select(_patients.c.id).where(_patients.c.id == patient_id)).first() is None:
        raise AuditPatientNotFoundError()
    since = now - timedelta(days=days)
    rows = audit.access_entries(session, patient_id, since, limit=limit,
                                exclude_actors=[("patient", patient_id)])
    names = _names(session, rows)
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        g = groups.get((r["actor_kind"], r["actor_id"]))
        if g is None:
            g = groups[(r["actor_kind"], r["actor_id"])] = {
                "actor": _actor(r, names), "count": 0, "last_at": iso_z(r["at"]), "entries": []}
        g["count"] += 1
        g["first_at"] = iso_z(r["at"])
        g["entries"].append({"at": iso_z(r["at"]), "action": r["action"], **_where(r)})
    return {"patient_id": patient_id, "since": iso_z(since), "until": iso_z(now), "total": len(rows),
            "truncated": len(rows) == limit, "groups": list(groups.values())}


def search(session: Session, *, actor_id: str | None, patient_id: str | None, action: str | None,
           since: datetime | None, before: str | None, limit: int) -> dict[str, Any]:
    """The auditor's page of audit rows, newest first, with `next` for the following page."""
    if before is not None and not is_id(before):
        raise BadAuditCursorError()
    rows = audit.search(session, actor_id=actor_id, patient_id=patient_id, action=action, since=since,
                        before=before, limit=limit)
    names = _names(session, rows)
    items = [{"id": r["id"], "at": iso_z(r["at"]), "actor": _actor(r, names), "action": r["action"],
              "patient_id": r["patient_id"], "subject_id": r["subject_id"], "on_behalf_of": r["on_behalf_of"],
              "details": r["details"]} for r in rows]
    return {"items": items, "next": rows[-1]["id"] if len(rows) == limit else None}
