"""What the community use cases share: the patient a request names (locked), and
handing one event of ours to the spine in this transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from carepoints.events import service as events
from carepoints.kit.errors import AppError
from carepoints.patients import service as patients
from carepoints.patients.errors import PatientNotFoundError
from carepoints.patients.service import Resolved
from carepoints.scheduling.schemas import PatientRef

SOURCE = "carepoints.community"


def patient_of(session: Session, patient_id: str | None, ref: PatientRef | None = None) -> Resolved:
    """The patient a request names, row-locked for the transaction (PostgreSQL)."""
    pid = patients.id_for(session, patient_id, ref.id if ref else None, ref.system if ref else None,
                          ref.value if ref else None)
    found = patients.lock(session, pid)
    if found is None:
        raise PatientNotFoundError()
    return found


def emit(session: Session, type_: str, patient_id: str, at: datetime, now: datetime, key: str,
         attrs: dict[str, Any]) -> dict[str, Any]:
    """Ingest one event (source key `key`); its outcome, or the spine's error raised."""
    result = events.ingest(session, [{
        "type": type_, "patient": {"id": patient_id}, "occurred_at": at.isoformat(), "source": SOURCE,
        "source_event_id": key, "attributes": attrs}], now)[0]
    if isinstance(result, AppError):
        raise result
    return result
