"""Reports use cases: ingest a report pushed by the HIS / LIS (JSON or mapped from FHIR), list and
open a patient's reports, release a report held back for a critical result.

Idempotency: a report is named by (source, source_id) under a unique constraint. The same content
again answers the stored report; new content with a later status (preliminary → final, final →
amended / corrected, anything → cancelled / entered-in-error) is a new version that replaces the
results (`version` + 1, audited with ids only); other new content is a 409.

Critical results (HH, LL, critical) never reach the patient first: the version is held and a
critical care alert opens for clinicians (engagement care, kind critical_value). The patient sees it
once a clinician acknowledges the alert (or releases the report), or — only when the hospital sets
`reports_release_delay_hours` — that long after it was issued. A released version sends the patient
"reports.new" through the outbox: plain words, no value, no test name.

Consent: storing and showing reports needs the patient's `health_data` consent (409
`reports.consent_required`). Staff reads are audited (`reports:report:view`), so the patient's
"who looked at my data" lists them."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from carepoints.audit import service as audit
from carepoints.audit.service import Actor
from carepoints.config import get_settings
from carepoints.engagement.care import service as care
from carepoints.engagement.care.schemas import AlertKind
from carepoints.enrolment.privacy import has_consent
from carepoints.kit.ids import new_id
from carepoints.kit.outbox import enqueue_many
from carepoints.kit.time import iso_z
from carepoints.patients import service as patients
from carepoints.patients.errors import PatientNotFoundError
from carepoints.scheduling.models import Institution
from carepoints.services.reports import flags, repository
from carepoints.services.reports.errors import (
    ConsentRequiredError,
    InstitutionNotFoundError,
    NotHeldError,
    ReportConflictError,
    ReportNotFoundError,
)
from carepoints.services.reports.schemas import VERSIONS, VISIBLE, WITHDRAWN, ReportIn, ReportStatus

_RANK = {ReportStatus.registered: 0, ReportStatus.preliminary: 1, ReportStatus.final: 2, ReportStatus.amended: 3,
         ReportStatus.corrected: 3, ReportStatus.cancelled: 4, ReportStatus.entered_in_error: 4}
_VISIBLE = tuple(str(s) for s in VISIBLE)


def content_hash(data: ReportIn) -> str:
    doc = data.model_dump(mode="json", exclude={"patient"})
    return hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()


def patient_id(session: Session, patient_id: str | None, ref: Any = None) -> str:
    """The patient a request names (by id or external reference), who must exist."""
    pid = patients.named(session, patient_id, ref)
    if not patients.exists(session, pid):
        raise PatientNotFoundError()
    return pid


def owners(session: Session, report_id: str) -> list[str]:
    """Whose report this is (the ownership lookup of the pages naming a report by its id)."""
    return repository.owners(session, report_id)


def _new_version_allowed(old: str, new: ReportStatus) -> bool:
    if old in WITHDRAWN:
        return False
    if new in WITHDRAWN:
        return True
    if new in VERSIONS:
        return old in _VISIBLE
    return _RANK[new] > _RANK[ReportStatus(old)]


def _result_rows(report_id: str, data: ReportIn) -> tuple[list[dict[str, Any]], bool, bool]:
    rows: list[dict[str, Any]] = []
    for i, r in enumerate(data.results):
        number = float(r.value) if isinstance(r.value, int | float) else None
        flag = flags.interpret(number, r.range_low, r.range_high, r.flag)
        rows.append({"id": new_id(), "report_id": report_id, "position": i, "code": r.code, "display": r.display,
                     "value_number": number, "value_text": r.value if isinstance(r.value, str) else None,
                     "unit": r.unit, "range_low": r.range_low, "range_high": r.range_high,
                     "range_text": r.range_text, "flag": str(flag) if flag is not None else None})
    return rows, any(flags.is_abnormal(r["flag"]) for r in rows), any(flags.is_critical(r["flag"]) for r in rows)


def ingest(session: Session, data: ReportIn, actor: Actor, now: datetime, *,
           pid: str | None = None) -> tuple[dict[str, Any], int]:
    """Store a report or a new version of it; answers (the staff view of the report, 201 created /
    200 the same again or a new version). Raises 409 on changed content without a later status,
    and when the patient has no `health_data` consent."""
    pid = pid or patient_id(session, None, data.patient)
    if data.institution_id is not None and session.connection().execute(
            select(Institution.id).where(Institution.id == data.institution_id)).first() is None:
        raise InstitutionNotFoundError()
    digest = content_hash(data)
    row = repository.by_source(session, data.source, data.source_id)
    if row is not None and row["content_hash"] == digest and row["patient_id"] == pid:
        return staff_report(session, pid, row["id"]), 200
    if row is not None and (row["patient_id"] != pid or not _new_version_allowed(row["status"], data.status)):
        raise ReportConflictError()
    if not has_consent(session, pid, "health_data"):
        raise ConsentRequiredError()
    rid = row["id"] if row is not None else new_id()
    version = int(row["version"]) + 1 if row is not None else 1
    results, abnormal, critical = _result_rows(rid, data)
    visible = data.status in VISIBLE
    held = visible and critical
    values: dict[str, Any] = {
        "institution_id": data.institution_id, "category": str(data.category), "code": data.code,
        "code_system": data.code_system, "display": data.display, "status": str(data.status),
        "issued_at": data.issued_at, "conclusion": data.conclusion, "performer": data.performer, "version": version,
        "content_hash": digest, "abnormal": abnormal, "critical": critical, "held": held, "alert_id": None,
        "released_at": row["released_at"] if row is not None else None, "read_at": None, "updated_at": now}
    if row is None:
        repository.insert_report(session, {"id": rid, "patient_id": pid, "source": data.source,
                                           "source_id": data.source_id, "created_at": now, **values})
    else:
        repository.update_report(session, rid, **values)
    repository.replace_results(session, rid, results)
    audit.record(session, actor, "reports:report:ingest" if row is None else "reports:report:version", now,
                 subject_id=rid, patient_id=pid, version=version, status=str(data.status), held=held)
    if held:
        alert_id = care.raise_alert(session, patient_id=pid, kind=AlertKind.critical_value,
                                    source_ref=f"report:{rid}:{version}", now=now, severity="critical",
                                    details={"report_id": rid, "version": version})
        repository.update_report(session, rid, alert_id=alert_id)
        if alert_id is not None:
            enqueue_many(session.connection(), [("lab.critical_value", pid,
                                                 {"alert_id": alert_id, "patient_id": pid})], now)
    elif visible:
        _release(session, rid, pid, now)
    return staff_report(session, pid, rid), 201 if row is None else 200


def _release(session: Session, report_id: str, pid: str, now: datetime, *, held: bool = False) -> None:
    """The patient may see the report from now and is told once: a held one only by whoever clears
    its hold (the release job, a clinician and the patient opening it may race)."""
    if held:
        if not repository.release_held(session, report_id, now):
            return
    else:
        repository.update_report(session, report_id, held=False, released_at=now)
    enqueue_many(session.connection(), [("reports.new", pid, {"patient_id": pid, "report_id": report_id})], now)


def _delay_cutoff(now: datetime) -> datetime | None:
    hours = get_settings().reports_release_delay_hours
    return now - timedelta(hours=hours) if hours > 0 else None


def _released(row: Any, now: datetime) -> bool:
    """Whether the patient may see this version now."""
    if row["status"] not in _VISIBLE:
        return False
    if not row["held"]:
        return row["released_at"] is not None
    cutoff = _delay_cutoff(now)
    return row["alert_status"] in ("acknowledged", "resolved") or (cutoff is not None and row["issued_at"] <= cutoff)


def _summary(row: Any, *, staff: bool) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": row["id"], "category": row["category"], "code": row["code"],
                           "display": row["display"], "issued_at": iso_z(row["issued_at"]), "status": row["status"],
                           "version": row["version"], "abnormal": row["abnormal"], "new": row["read_at"] is None}
    if staff:
        doc.update(critical=row["critical"], held=row["held"], alert_id=row["alert_id"],
                   released_at=iso_z(row["released_at"]) if row["released_at"] else None,
                   source=row["source"], source_id=row["source_id"])
    return doc


def _detail(session: Session, row: Any, *, staff: bool) -> dict[str, Any]:
    doc = _summary(row, staff=staff)
    doc.update(conclusion=row["conclusion"], performer=row["performer"], institution_id=row["institution_id"],
               note=get_settings().reports_patient_note)
    doc["results"] = [{"code": r["code"], "display": r["display"],
                       "value": r["value_number"] if r["value_number"] is not None else r["value_text"],
                       "unit": r["unit"], "range_low": r["range_low"], "range_high": r["range_high"],
                       "range_text": r["range_text"], "flag": r["flag"],
                       "abnormal": flags.is_abnormal(r["flag"])} for r in repository.results(session, row["id"])]
    return doc


def _consented(session: Session, pid: str) -> None:
    if not has_consent(session, pid, "health_data"):
        raise ConsentRequiredError()


def patient_reports(session: Session, pid: str, now: datetime, *, limit: int = 100) -> dict[str, Any]:
    """What the patient sees: released final / amended / corrected reports, newest first."""
    _consented(session, pid)
    rows = [r for r in repository.of_patient(session, pid, _VISIBLE, limit) if _released(r, now)]
    return {"patient_id": pid, "items": [_summary(r, staff=False) for r in rows],
            "unread": sum(1 for r in rows if r["read_at"] is None)}


def open_report(session: Session, pid: str, report_id: str, actor: Actor, now: datetime) -> dict[str, Any]:
    """The patient (or their proxy) opens a released report: marks this version read. A held
    report whose alert was acknowledged is released here, if the release job has not yet."""
    _consented(session, pid)
    row = repository.get(session, pid, report_id)
    if row is None or not _released(row, now):
        raise ReportNotFoundError()
    if row["held"]:
        _release(session, report_id, pid, now, held=True)
    if row["read_at"] is None and actor.kind == "patient" and actor.id == pid:
        repository.update_report(session, report_id, read_at=now)
    return _detail(session, row, staff=False)


def staff_reports(session: Session, pid: str, *, limit: int = 100) -> dict[str, Any]:
    """Every report of the patient (held, preliminary and withdrawn ones too), newest first."""
    rows = repository.of_patient(session, pid, None, limit)
    return {"patient_id": pid, "items": [_summary(r, staff=True) for r in rows]}


def staff_report(session: Session, pid: str, report_id: str) -> dict[str, Any]:
    row = repository.get(session, pid, report_id)
    if row is None:
        raise ReportNotFoundError()
    return _detail(session, row, staff=True)


def view_report(session: Session, pid: str, report_id: str, actor: Actor, now: datetime) -> dict[str, Any]:
    """A staff member (or the hospital's system) reads a report: audited `reports:report:view`."""
    doc = staff_report(session, pid, report_id)
    audit.record(session, actor, "reports:report:view", now, subject_id=report_id, patient_id=pid)
    return doc


def release(session: Session, pid: str, report_id: str, actor: Actor, now: datetime) -> dict[str, Any]:
    """A clinician has reviewed the critical result: acknowledges its care alert (audited by the
    care queue) and releases the report to the patient; audited `reports:report:release`."""
    row = repository.get(session, pid, report_id)
    if row is None:
        raise ReportNotFoundError()
    if not row["held"]:
        raise NotHeldError()
    if row["alert_id"] is not None and row["alert_status"] == "open":
        care.acknowledge(session, row["alert_id"], actor, now)
    _release(session, report_id, pid, now, held=True)
    audit.record(session, actor, "reports:report:release", now, subject_id=report_id, patient_id=pid,
                 version=row["version"])
    return staff_report(session, pid, report_id)


def release_due(session: Session, now: datetime, *, limit: int = 500) -> dict[str, int]:
    """Job step: release held reports whose alert was acknowledged in the care queue, or whose
    release delay has passed; each tells the patient once."""
    rows = repository.held_due(session, _delay_cutoff(now), limit)
    for r in rows:
        _release(session, r["id"], r["patient_id"], now, held=True)
    return {"released": len(rows)}
