"""The chronic-disease registry (慢病管理): conditions per patient from staff or the HIS,
used to offer the right tasks and follow-ups. Every change is audited (codes only:
the note is health data and stays out of the audit row)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from carepoints.audit import service as audit
from carepoints.audit.service import Actor
from carepoints.config import get_settings
from carepoints.engagement.health.errors import ConditionNotFoundError, DiagnosedInFutureError
from carepoints.engagement.health.models import PatientCondition
from carepoints.engagement.health.schemas import CONDITION_NAMES, ConditionCode, ConditionSet
from carepoints.kit.bulk import insert_new
from carepoints.kit.db import table
from carepoints.kit.ids import new_id
from carepoints.kit.time import local_date

_conditions = table(PatientCondition)


def _doc(row: Any) -> dict[str, Any]:
    zh, en = CONDITION_NAMES[ConditionCode(row["code"])]
    return {"code": row["code"], "names": {"zh": zh, "en": en}, "source": row["source"],
            "diagnosed_on": row["diagnosed_on"].isoformat() if row["diagnosed_on"] else None, "note": row["note"],
            "active": bool(row["active"]), "since": row["updated_at"].isoformat() if row["active"] else None,
            "ended_at": row["ended_at"].isoformat() if row["ended_at"] else None}


def _row(session: Session, patient_id: str, code: str, *, lock: bool = False) -> Any:
    stmt = select(_conditions).where(_conditions.c.patient_id == patient_id, _conditions.c.code == code)
    return session.connection().execute(stmt.with_for_update() if lock else stmt).mappings().first()


def set_condition(session: Session, patient_id: str, code: ConditionCode, data: ConditionSet, actor: Actor,
                  now: datetime) -> tuple[dict[str, Any], bool]:
    """Record (or update, or start again) a condition; True when it was not active before."""
    if data.diagnosed_on is not None and data.diagnosed_on > local_date(now, get_settings().tz):
        raise DiagnosedInFutureError()
    values = {"source": data.source, "diagnosed_on": data.diagnosed_on, "note": data.note, "active": True,
              "updated_at": now, "ended_at": None}
    conn = session.connection()
    created = insert_new(conn, _conditions, {"id": new_id(), "patient_id": patient_id, "code": code.value,
                                             "created_at": now, **values}, ("patient_id", "code"))
    started = created
    if not created:
        current = _row(session, patient_id, code.value, lock=True)
        started = not current["active"]
        if not started:
            values["updated_at"] = current["updated_at"]  # still active since then
        conn.execute(update(_conditions).where(_conditions.c.id == current["id"]).values(**values))
    row = _row(session, patient_id, code.value)
    audit.record(session, actor, "health:condition:set", now, subject_id=row["id"], patient_id=patient_id,
                 code=code.value, source=data.source)
    return _doc(row), started


def end_condition(session: Session, patient_id: str, code: ConditionCode, actor: Actor,
                  now: datetime) -> dict[str, Any]:
    """End an active condition (kept in the registry as ended); 404 when none is active."""
    conn = session.connection()
    ended = conn.execute(update(_conditions).where(
        _conditions.c.patient_id == patient_id, _conditions.c.code == code.value, _conditions.c.active.is_(True),
    ).values(active=False, ended_at=now, updated_at=now).returning(_conditions.c.id)).scalar()
    if ended is None:
        raise ConditionNotFoundError()
    audit.record(session, actor, "health:condition:end", now, subject_id=ended, patient_id=patient_id,
                 code=code.value)
    return _doc(_row(session, patient_id, code.value))


def conditions_of(session: Session, patient_id: str, *, include_ended: bool = False) -> list[dict[str, Any]]:
    stmt = select(_conditions).where(_conditions.c.patient_id == patient_id).order_by(_conditions.c.code)
    if not include_ended:
        stmt = stmt.where(_conditions.c.active.is_(True))
    return [_doc(r) for r in session.connection().execute(stmt).mappings()]


def active_codes(session: Session, patient_id: str) -> set[str]:
    return {c["code"] for c in conditions_of(session, patient_id)}
