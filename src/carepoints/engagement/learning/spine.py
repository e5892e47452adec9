"""What every learning use case shares: the patient a request names (locked for the
transaction), handing one event to the spine, and an outcome-shaped answer when
nothing is emitted."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from carepoints.events import service as events
from carepoints.kit.errors import AppError
from carepoints.ledger import service as ledger
from carepoints.patients import service as patients
from carepoints.patients.errors import PatientNotFoundError
from carepoints.scheduling.schemas import PatientRef

SOURCE = "carepoints.learning"


def patient_of(session: Session, patient_id: str | None, ref: PatientRef | None) -> str:
    """The patient a request names, with their row locked for the rest of the transaction
    (PostgreSQL; SQLite's write transactions are serialised already): the check-then-act
    steps of one patient (first pass, first value of an item) never interleave."""
    pid = patients.id_for(session, patient_id, ref.id if ref else None, ref.system if ref else None,
                          ref.value if ref else None)
    if patients.lock(session, pid) is None:
        raise PatientNotFoundError()
    return pid


def emit(session: Session, type_: str, patient_id: str, at: datetime, now: datetime, key: str,
         attrs: dict[str, Any]) -> dict[str, Any]:
    """Ingest one event of ours (source key `key`) in this transaction; its outcome."""
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
