"""Writing and reading the audit log. A use case records its audit row in its
own transaction, so the row exists exactly when the change does; request-level
rows (`http:<METHOD>:<route>`, security/audit_requests.py) are written after
the response. Rows are append-only and sealed in blocks (audit/sealing.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, not_, or_, select
from sqlalchemy.orm import Session

from carepoints.audit.models import AuditEntry
from carepoints.audit.sealing import Report, pending, purge_before, seal, verify
from carepoints.kit.bulk import insert_rows
from carepoints.kit.db import table
from carepoints.kit.ids import new_id

__all__ = ["REQUEST_PREFIX", "Actor", "Report", "access_entries", "entries", "pending", "purge_before", "record",
           "seal", "search", "verify"]

_log = table(AuditEntry)
REQUEST_PREFIX = "http:"  # actions of request-level rows


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: an API key, a staff user, a patient (or a proxy for one), or a job."""

    kind: str
    id: str
    role: str = ""

    @classmethod
    def system(cls, job: str) -> Actor:
        return cls("system", job)


def record(session: Session, actor: Actor, action: str, now: datetime, *, subject_id: str | None = None,
           patient_id: str | None = None, on_behalf_of: str | None = None, **details: Any) -> str:
    """Append one row; `details` must hold ids and codes only. Reads and locks nothing."""
    aid = new_id()
    insert_rows(session.connection(), _log, [{
        "id": aid, "at": now, "actor_kind": actor.kind, "actor_id": actor.id, "actor_role": actor.role or None,
        "action": action, "subject_id": subject_id, "patient_id": patient_id, "on_behalf_of": on_behalf_of,
        "details": details}])
    return aid


def entries(session: Session, *, subject_id: str | None = None, patient_id: str | None = None,
            action: str | None = None, limit: int = 100, requests: bool = False) -> list[dict[str, Any]]:
    """A record's trail, newest first: the use cases' rows, and with `requests` also the
    request-level rows (who merely looked)."""
    stmt = select(_log).order_by(_log.c.at.desc(), _log.c.id.desc()).limit(limit)
    if subject_id is not None:
        stmt = stmt.where(_log.c.subject_id == subject_id)
    if patient_id is not None:
        stmt = stmt.where(_log.c.patient_id == patient_id)
    if action is not None:
        stmt = stmt.where(_log.c.action == action)
    if not requests:
        stmt = stmt.where(not_(_log.c.action.startswith(REQUEST_PREFIX, autoescape=True)))
    return [dict(r) for r in session.connection().execute(stmt).mappings()]


def search(session: Session, *, actor_id: str | None = None, patient_id: str | None = None,
           action: str | None = None, since: datetime | None = None, before: str | None = None,
           limit: int = 100) -> list[dict[str, Any]]:
    """The auditor's view: every row (request-level ones included), newest (by id) first.
    `action` ending in `*` matches a prefix; `before` is the id the previous page ended at."""
    stmt = select(_log).order_by(_log.c.id.desc()).limit(limit)
    if actor_id is not None:
        stmt = stmt.where(_log.c.actor_id == actor_id)
    if patient_id is not None:
        stmt = stmt.where(_log.c.patient_id == patient_id)
    if action is not None:
        stmt = stmt.where(_log.c.action.startswith(action[:-1], autoescape=True) if action.endswith("*")
                          else _log.c.action == action)
    if since is not None:
        stmt = stmt.where(_log.c.at >= since)
    if before is not None:
        stmt = stmt.where(_log.c.id < before)
    return [dict(r) for r in session.connection().execute(stmt).mappings()]


def access_entries(session: Session, patient_id: str, since: datetime, *, limit: int = 1000,
                   exclude_actors: Sequence[tuple[str, str]] = ()) -> list[dict[str, Any]]:
    """Rows about one patient since `since`, newest first, by anyone but the jobs
    (and the `exclude_actors` (kind, id) pairs, e.g. the patient themself)."""
    stmt = (select(_log.c.id, _log.c.at, _log.c.actor_kind, _log.c.actor_id, _log.c.actor_role, _log.c.action,
                   _log.c.on_behalf_of, _log.c.details)
            .where(_log.c.patient_id == patient_id, _log.c.at >= since, _log.c.actor_kind != "system")
            .order_by(_log.c.at.desc(), _log.c.id.desc()).limit(limit))
    if exclude_actors:
        stmt = stmt.where(not_(or_(*(and_(_log.c.actor_kind == k, _log.c.actor_id == i) for k, i in exclude_actors))))
    return [dict(r) for r in session.connection().execute(stmt).mappings()]
