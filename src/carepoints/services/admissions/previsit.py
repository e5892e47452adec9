"""Pre-visit exams (预就诊): a clinician orders an exam with the hours its result takes; carepoints
books the exam in the first session of the exam resource with a free slot (from `not_before`,
else now) and the follow-up with the clinician in the first of their sessions that starts at or
after the exam slot's end + the result hours and has a free slot (rules.followup_candidates).
Both are ordinary scheduling appointments booked by the clinician (`scheduling.service.book`,
`booked_by: clinician`: ahead of release, no booking-ahead points; each claims its slot with the
scheduling guards). Without an exam slot or a follow-up session within `previsit_search_days`
the order is refused with its 409 and nothing is stored (the exam booking rolls back with it)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import RowMapping
from sqlalchemy.orm import Session

from carepoints.audit.service import Actor, record
from carepoints.config import get_settings
from carepoints.kit.bulk import savepoint
from carepoints.kit.ids import is_id, new_id
from carepoints.kit.outbox import enqueue_many
from carepoints.kit.time import as_utc, local_date
from carepoints.scheduling import repository as sched
from carepoints.scheduling import service as scheduling
from carepoints.scheduling.errors import SessionFullError, SlotTakenError
from carepoints.scheduling.schemas import AppointmentCreate, CancelIn
from carepoints.security.permissions import Role
from carepoints.services.admissions import repository as repo
from carepoints.services.admissions import rules
from carepoints.services.admissions.errors import (
    ClinicianNotFoundError,
    IdempotencyConflictError,
    NoExamSessionError,
    NoFollowupSessionError,
    NotYourClinicianError,
    PrevisitNotFoundError,
    ResourceNotFoundError,
)
from carepoints.services.admissions.schemas import PrevisitCreate
from carepoints.services.admissions.service import active_patient, conn_of, local_iso


def _appointment_doc(session: Session, appointment_id: str) -> dict[str, Any]:
    a = repo.appointment(conn_of(session), appointment_id)
    assert a is not None  # noqa: S101 - a foreign key
    return {"id": a["id"], "session_id": a["session_id"], "seq": a["seq"], "start": local_iso(a["slot_start"]),
            "end": local_iso(a["slot_end"]), "status": a["status"]}


def previsit_doc(session: Session, row: RowMapping | dict[str, Any]) -> dict[str, Any]:
    conn = conn_of(session)
    clinician = repo.catalogue(conn, sched.clinicians, row["clinician_id"])
    resource = repo.catalogue(conn, sched.resources, row["resource_id"])
    assert clinician is not None  # noqa: S101 - a foreign key
    assert resource is not None  # noqa: S101 - a foreign key
    return {"id": row["id"], "patient_id": row["patient_id"], "status": row["status"], "exam": row["exam"],
            "result_hours": row["result_hours"], "results_expected_at": local_iso(row["results_expected_at"]),
            "clinician": {"id": clinician["id"], "name": clinician["name"], "title": clinician["title"]},
            "resource": {"id": resource["id"], "name": resource["name"], "modality": resource["modality"]},
            "exam_appointment": _appointment_doc(session, row["exam_appointment_id"]),
            "followup_appointment": _appointment_doc(session, row["followup_appointment_id"]),
            "ordered_at": local_iso(row["ordered_at"]), "cancelled_at": local_iso(row["cancelled_at"])}


def _shown(local: str) -> str:
    """A local ISO time as a message shows it: 2026-06-16 09:00."""
    return datetime.fromisoformat(local).strftime("%Y-%m-%d %H:%M")


def _clinician(session: Session, clinician_id: str | None, actor: Actor) -> RowMapping:
    """The follow-up's clinician: the one named, else the signed-in clinician's own; a clinician
    orders only for their own follow-up (403 `admissions.not_your_clinician`)."""
    conn = conn_of(session)
    if clinician_id is None:
        own = repo.clinicians_of_staff(conn, actor.id) if actor.kind == "staff" else []
        if not own:
            raise ClinicianNotFoundError()
        return own[0]
    row = repo.catalogue(conn, sched.clinicians, clinician_id) if is_id(clinician_id) else None
    if row is None:
        raise ClinicianNotFoundError()
    if actor.role == Role.clinician and row["staff_user_id"] != actor.id:
        raise NotYourClinicianError()
    return row


def _book_first(session: Session, pid: str, sessions: list[RowMapping], key: str, actor: Actor,
                now: datetime) -> dict[str, Any] | None:
    """Book the first of `sessions` (in order) with a free slot; None when every one is full."""
    for sess in sessions:
        body = AppointmentCreate(patient_id=pid, session_id=sess["id"], channel="online", idempotency_key=key)
        try:
            with savepoint(conn_of(session), "cp_previsit_book"):
                doc, _created = scheduling.book(session, body, now, booked_by="clinician", actor=actor)
        except (SessionFullError, SlotTakenError):
            continue
        return doc
    return None


def order(session: Session, data: PrevisitCreate, actor: Actor, now: datetime) -> tuple[dict[str, Any], bool]:
    """Book the exam and the follow-up after its result (idempotent on the key). 409
    `admissions.no_exam_session` / `admissions.no_followup_session` when either has no place."""
    conn = conn_of(session)
    pid = active_patient(session, data.patient_id, data.patient)
    prior = repo.by_key(conn, repo.previsits, data.idempotency_key)
    if prior is not None:
        if (prior["patient_id"], prior["resource_id"], prior["result_hours"]) != (pid, data.resource_id,
                                                                                  data.result_hours):
            raise IdempotencyConflictError()
        return previsit_doc(session, prior), False
    clinician = _clinician(session, data.clinician_id, actor)
    resource = repo.catalogue(conn, sched.resources, data.resource_id) if is_id(data.resource_id) else None
    if resource is None:
        raise ResourceNotFoundError()
    days = get_settings().previsit_search_days
    start = max(now, as_utc(data.not_before)) if data.not_before is not None else now
    oid = new_id()
    exam_sessions = repo.sessions_from(conn, resource_id=resource["id"],
                                       starts_from=start if data.not_before is not None else None, ends_after=now,
                                       until=local_date(start, get_settings().tz) + timedelta(days=days))
    exam = _book_first(session, pid, exam_sessions, f"previsit:{oid}:exam", actor, now)
    if exam is None:
        raise NoExamSessionError(days=days)
    ready = rules.results_ready_at(datetime.fromisoformat(exam["end"]), data.result_hours)
    found = repo.sessions_from(conn, clinician_id=clinician["id"], starts_from=ready, ends_after=now,
                               until=local_date(ready, get_settings().tz) + timedelta(days=days))
    candidates = rules.followup_candidates(((as_utc(s["starts_at"]), s) for s in found), as_utc(ready))
    followup = _book_first(session, pid, candidates, f"previsit:{oid}:followup", actor, now)
    if followup is None:
        raise NoFollowupSessionError(ready=ready.astimezone(get_settings().tz).strftime("%Y-%m-%d %H:%M"), days=days)
    row = {"id": oid, "patient_id": pid, "clinician_id": clinician["id"], "resource_id": resource["id"],
           "exam": data.exam, "result_hours": data.result_hours, "status": "booked",
           "exam_appointment_id": exam["id"], "followup_appointment_id": followup["id"],
           "results_expected_at": as_utc(ready), "ordered_by": actor.id, "idempotency_key": data.idempotency_key,
           "ordered_at": now, "cancelled_at": None}
    repo.add(conn, repo.previsits, row)
    record(session, actor, "admissions:previsit:order", now, subject_id=oid, patient_id=pid,
           clinician_id=clinician["id"], resource_id=resource["id"], exam_appointment_id=exam["id"],
           followup_appointment_id=followup["id"])
    enqueue_many(conn, [("previsit.booked", pid, {"patient_id": pid, "previsit_id": oid,
                                                  "exam_time": _shown(exam["start"]),
                                                  "followup_time": _shown(followup["start"])})], now)
    return previsit_doc(session, row), True


def _previsit(session: Session, previsit_id: str, lock: bool = False) -> RowMapping:
    row = repo.get(conn_of(session), repo.previsits, previsit_id, lock=lock) if is_id(previsit_id) else None
    if row is None:
        raise PrevisitNotFoundError()
    return row


def read(session: Session, previsit_id: str) -> dict[str, Any]:
    return previsit_doc(session, _previsit(session, previsit_id))


def owners(session: Session, previsit_id: str) -> list[str]:
    return repo.owners(conn_of(session), repo.previsits, previsit_id) if is_id(previsit_id) else []


def cancel(session: Session, previsit_id: str, actor: Actor, now: datetime) -> dict[str, Any]:
    """Cancel the order: its exam and follow-up appointments still booked are cancelled by the
    hospital (never a penalty; scheduling tells the patient and frees the slots)."""
    row = _previsit(session, previsit_id, lock=True)
    if row["status"] == "cancelled":
        return previsit_doc(session, row)
    for appointment_id in (row["exam_appointment_id"], row["followup_appointment_id"]):
        a = repo.appointment(conn_of(session), appointment_id)
        if a is not None and a["status"] == "booked":
            scheduling.cancel(session, appointment_id, CancelIn(by="hospital", reason="previsit cancelled"), now)
    repo.set_row(conn_of(session), repo.previsits, row["id"], {"status": "booked"}, status="cancelled",
                 cancelled_at=now)
    record(session, actor, "admissions:previsit:cancel", now, subject_id=row["id"], patient_id=row["patient_id"])
    return previsit_doc(session, _previsit(session, row["id"]))


def of_patient(session: Session, patient_id: str) -> list[dict[str, Any]]:
    return [previsit_doc(session, r) for r in repo.of_patient(conn_of(session), repo.previsits, patient_id,
                                                              "ordered_at")]



def choices(session: Session) -> dict[str, list[dict[str, Any]]]:
    """The clinicians and exam resources a pre-visit order may name (the staff form)."""
    conn = conn_of(session)
    return {"clinicians": [{"id": r["id"], "name": r["name"], "title": r["title"], "department_zh": r["department_zh"],
                            "department_en": r["department_en"], "staff_user_id": r["staff_user_id"]}
                           for r in repo.catalogue_list(conn, sched.clinicians)],
            "resources": [{"id": r["id"], "name": r["name"], "modality": r["modality"],
                           "department_zh": r["department_zh"], "department_en": r["department_en"]}
                          for r in repo.catalogue_list(conn, sched.resources)]}
