"""Health-profile items (完善健康档案): allergies, past history, family history,
current medicines, emergency contact.

The first time an item has a non-empty value it emits `profile.item_completed`
{item} (source key `profile:{patient}:{item}`), once per item forever: later edits,
clearing and filling again change the value without points. Values are health data
and PII: they stay in `profile_items`; audit rows and events carry the item code only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from carepoints.audit import service as audit
from carepoints.audit.service import Actor
from carepoints.engagement import spine
from carepoints.engagement.learning.errors import ProfileValueInvalidError
from carepoints.engagement.learning.models import ProfileItem
from carepoints.engagement.learning.schemas import EmergencyContact, ProfileItemKind, ProfileValue
from carepoints.kit.bulk import insert_new
from carepoints.kit.db import table
from carepoints.patients import service as patients
from carepoints.patients.errors import PatientNotFoundError

_items = table(ProfileItem)


def _stored(item: ProfileItemKind, data: ProfileValue) -> Any:
    """The value to store (None when empty), checked against the item's shape."""
    value = data.value
    if item == ProfileItemKind.emergency_contact:
        if isinstance(value, str):
            raise ProfileValueInvalidError(expected="{name, phone, relation}")
        return value.model_dump() if isinstance(value, EmergencyContact) else None
    if isinstance(value, EmergencyContact):
        raise ProfileValueInvalidError(expected="text")
    return value if value is not None and value.strip() else None


def put(session: Session, patient_id: str, item: ProfileItemKind, data: ProfileValue, actor: Actor,
        now: datetime) -> dict[str, Any]:
    """Set an item's value. Answers the item and the spine's outcome when this was its
    first value (`outcome` null otherwise)."""
    value = _stored(item, data)
    pid = spine.patient_of(session, patient_id, None).patient_id
    conn = session.connection()
    insert_new(conn, _items, {"patient_id": pid, "item": item.value, "value": None, "completed_at": None,
                              "updated_at": now}, ("patient_id", "item"))
    current = conn.execute(select(_items.c.completed_at).where(_items.c.patient_id == pid,
                                                               _items.c.item == item.value)).scalar()
    values: dict[str, Any] = {"value": value, "updated_at": now}
    outcome = None
    if value is not None and current is None:
        values["completed_at"] = now
        outcome = spine.emit(session, "profile.item_completed", pid, now, now, f"profile:{pid}:{item.value}",
                             {"item": item.value})
    conn.execute(update(_items).where(_items.c.patient_id == pid, _items.c.item == item.value).values(**values))
    audit.record(session, actor, "engagement:profile:update", now, subject_id=pid, patient_id=pid, item=item.value,
                 cleared=value is None)
    return {**_item_doc(item.value, value, values.get("completed_at", current), now), "outcome": outcome}


def _item_doc(item: str, value: Any, completed_at: datetime | None, updated_at: datetime | None) -> dict[str, Any]:
    return {"item": item, "value": value, "completed": completed_at is not None,
            "completed_at": completed_at.isoformat() if completed_at else None,
            "updated_at": updated_at.isoformat() if updated_at else None}


def read(session: Session, patient_id: str) -> dict[str, Any]:
    """Every item of the patient's profile (unfilled ones with a null value)."""
    if not patients.exists(session, patient_id):
        raise PatientNotFoundError()
    rows = {r["item"]: r for r in session.connection().execute(
        select(_items).where(_items.c.patient_id == patient_id)).mappings()}
    items = []
    for kind in ProfileItemKind:
        r = rows.get(kind.value)
        items.append(_item_doc(kind.value, r["value"] if r else None, r["completed_at"] if r else None,
                               r["updated_at"] if r else None))
    return {"patient_id": patient_id, "items": items,
            "completed": sum(1 for i in items if i["completed"]), "total": len(items)}
