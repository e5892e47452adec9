"""What every engagement use case shares with the spine: the patient a request
names (row-locked for the transaction), handing one event of ours to
`events.service.ingest` in this transaction, and an outcome-shaped answer when
nothing is emitted. Every engagement event has the one source below; its
source keys are prefixed by what they are (`education:…`, `followup:…`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from carepoints.events import service as events
from carepoints.kit.errors import AppError
from carepoints.ledger import service as ledger
from carepoints.patients import service as patients
from carepoints.patients.service import Resolved
from carepoints.scheduling.schemas import PatientRef

SOURCE = "carepoints.engagement"


def patient_of(session: Session, patient_id: str | None, ref: PatientRef | None = None) -> Resolved:
    """The patient a request names, with their row locked for the rest of the transaction
    (PostgreSQL; SQLite's write transactions are serialised already): one patient's
    check-then-act steps (first pass, first value of an item) never interleave."""
    return patients.locked(session, patient_id, ref)


def emit(session: Session, type_: str, patient_id: str, at: datetime, now: datetime, key: str,
         attrs: dict[str, Any]) -> dict[str, Any]:
    """Ingest one event of ours (source key `key`) in this transaction; its outcome, or
    the spine's error raised."""
    result = events.ingest(session, [{
        "type": type_, "patient": {"id": patient_id}, "occurred_at": at.isoformat(), "source": SOURCE,
        "source_event_id": key, "attributes": attrs}], now)[0]
    if isinstance(result, AppError):
        raise result
    return result


def quiet(session: Session, patient_id: str, now: datetime, code: str, message: str, *,
          event_id: str | None = None, duplicate: bool = False) -> dict[str, Any]:
    """An outcome for a step that emits nothing: no awards, one notice saying why."""
    balance = ledger.summary(session, patient_id, now, 0)["balance"]
    return {"event_id": event_id, "duplicate": duplicate, "awards": [],
            "notices": [{"code": code, "message": message}], "balance": balance}
