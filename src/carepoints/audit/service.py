"""Writing and reading the audit log. A use case records its audit row in its
own transaction, so the row exists exactly when the change does."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from carepoints.audit.models import AuditEntry
from carepoints.kit.bulk import insert_rows
from carepoints.kit.db import table
from carepoints.kit.ids import new_id

_log = table(AuditEntry)


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
    """Append one row; `details` must hold ids and codes only."""
    aid = new_id()
    insert_rows(session.connection(), _log, [{
        "id": aid, "at": now, "actor_kind": actor.kind, "actor_id": actor.id, "action": action,
        "subject_id": subject_id, "patient_id": patient_id, "on_behalf_of": on_behalf_of, "details": details}])
    return aid


def entries(session: Session, *, subject_id: str | None = None, patient_id: str | None = None,
            action: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    stmt = select(_log).order_by(_log.c.at.desc(), _log.c.id.desc()).limit(limit)
    if subject_id is not None:
        stmt = stmt.where(_log.c.subject_id == subject_id)
    if patient_id is not None:
        stmt = stmt.where(_log.c.patient_id == patient_id)
    if action is not None:
        stmt = stmt.where(_log.c.action == action)
    return [dict(r) for r in session.connection().execute(stmt).mappings()]
