"""People: identity, external ids and consent. Enrolment (which also opens a
wallet and awards the welcome) sits above, in `enrolment`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from carepoints.kit.bulk import as_date, fetch, marks
from carepoints.kit.ids import is_id, new_id
from carepoints.patients.errors import ExternalIdTakenError, PatientNotFoundError
from carepoints.patients.models import Consent, ExternalId, Patient
from carepoints.patients.pii import mask_id_number, mask_name, mask_phone
from carepoints.patients.schemas import DEFAULT_PURPOSES, PatientCreate

PROGRAMME = "points_programme"


@dataclass(slots=True)
class Resolved:
    patient_id: str
    tier: str
    birth_date: date | None
    status: str
    programme_consent: bool


def find_existing(session: Session, data: PatientCreate) -> str | None:
    conn = session.connection()
    if data.idempotency_key:
        found = conn.execute(select(Patient.id).where(Patient.idempotency_key == data.idempotency_key)).scalar()
        if found:
            return found
    for ext in data.external_ids:
        found = conn.execute(select(ExternalId.patient_id).where(
            ExternalId.system == ext.system, ExternalId.value == ext.value)).scalar()
        if found:
            return found
    return None


def create(session: Session, data: PatientCreate, now: datetime) -> str:
    """Store a new person with external ids and consent; flushes, never commits."""
    conn = session.connection()
    pid = new_id()
    conn.execute(insert(Patient), [{
        "id": pid, "name": data.name, "phone": data.phone, "id_number": data.id_number,
        "birth_date": data.birth_date, "sex": data.sex, "status": "active", "tier": "standard",
        "elderly_mode": False, "idempotency_key": data.idempotency_key, "created_at": now}])
    if data.external_ids:
        taken = [e for e in data.external_ids if conn.execute(select(ExternalId.patient_id).where(
            ExternalId.system == e.system, ExternalId.value == e.value)).scalar()]
        if taken:
            raise ExternalIdTakenError()
        conn.execute(insert(ExternalId), [{"system": e.system, "value": e.value, "patient_id": pid}
                                          for e in {(e.system, e.value): e for e in data.external_ids}.values()])
    purposes = data.consent.purposes if data.consent.purposes is not None else list(DEFAULT_PURPOSES)
    if purposes:
        conn.execute(insert(Consent), [{
            "id": new_id(), "patient_id": pid, "purpose": p, "version": data.consent.version,
            "accepted_at": data.consent.accepted_at, "source": data.consent.source} for p in dict.fromkeys(purposes)])
    return pid


def read(session: Session, patient_id: str, *, reveal_pii: bool) -> dict[str, object]:
    if not is_id(patient_id):
        raise PatientNotFoundError()
    conn = session.connection()
    p = conn.execute(select(Patient).where(Patient.id == patient_id)).mappings().first()
    if p is None:
        raise PatientNotFoundError()
    exts = conn.execute(select(ExternalId.system, ExternalId.value).where(ExternalId.patient_id == patient_id)
                        .order_by(ExternalId.system, ExternalId.value)).all()
    consents = conn.execute(select(Consent).where(Consent.patient_id == patient_id)
                            .order_by(Consent.accepted_at)).mappings().all()
    name, phone, idn = p["name"], p["phone"], p["id_number"]
    if not reveal_pii:
        name, phone, idn = mask_name(name), mask_phone(phone), mask_id_number(idn) if idn else None
    return {
        "id": p["id"], "name": name, "phone": phone, "id_number": idn, "birth_date": p["birth_date"],
        "sex": p["sex"], "status": p["status"], "tier": p["tier"],
        "external_ids": [{"system": s, "value": v} for s, v in exts],
        "consents": [{"purpose": c["purpose"], "version": c["version"], "accepted_at": c["accepted_at"],
                      "source": c["source"], "withdrawn_at": c["withdrawn_at"]} for c in consents],
        "created_at": p["created_at"],
    }


def resolve(session: Session, ids: Iterable[str], refs: Iterable[tuple[str, str]]
            ) -> tuple[dict[str, Resolved], dict[tuple[str, str], str]]:
    """Batch lookup for ingest: patients by id (with whether they hold the
    points-programme consent now), and external (system, value) → patient id."""
    conn = session.connection()
    by_ref: dict[tuple[str, str], str] = {}
    refs = list(set(refs))
    if refs:
        systems = {s for s, _ in refs}
        values = {v for _, v in refs}
        for s, v, pid in conn.execute(select(ExternalId.system, ExternalId.value, ExternalId.patient_id)
                                      .where(ExternalId.system.in_(systems), ExternalId.value.in_(values))):
            if (s, v) in refs:
                by_ref[(s, v)] = pid
    wanted = sorted({i for i in ids if is_id(i)} | set(by_ref.values()))
    found: dict[str, Resolved] = {}
    if wanted:
        sql = ("SELECT p.id, p.tier, p.birth_date, p.status, EXISTS (SELECT 1 FROM consents c "  # noqa: S608
               f"WHERE c.patient_id = p.id AND c.purpose = {marks(conn, 1)} AND c.withdrawn_at IS NULL) "
               f"FROM patients p WHERE p.id IN ({marks(conn, len(wanted))})")
        for pid, tier, birth, status, consent in fetch(conn, sql, (PROGRAMME, *wanted)):
            found[pid] = Resolved(pid, tier, as_date(birth) if birth else None, status, bool(consent))
    return found, by_ref


def id_for(session: Session, patient_id: str | None, ref_id: str | None = None, system: str | None = None,
           value: str | None = None) -> str:
    """The patient a request names: by id, or by an external (system, value) reference."""
    if patient_id is not None:
        return patient_id
    if ref_id is not None:
        return ref_id
    _found, by_ref = resolve(session, [], [(system or "", value or "")])
    pid = by_ref.get((system or "", value or ""))
    if pid is None:
        raise PatientNotFoundError()
    return pid


class Reference(Protocol):
    """An external patient reference as requests carry it: {id} or {system, value}."""

    id: str | None
    system: str | None
    value: str | None


def named(session: Session, patient_id: str | None, ref: Reference | None) -> str:
    """The patient a request names by `patient_id` or by a reference object."""
    return id_for(session, patient_id, ref.id if ref else None, ref.system if ref else None,
                  ref.value if ref else None)


def locked(session: Session, patient_id: str | None, ref: Reference | None = None) -> Resolved:
    """The patient a request names, locked for the rest of the transaction (see `lock`)."""
    found = lock(session, named(session, patient_id, ref))
    if found is None:
        raise PatientNotFoundError()
    return found


def exists(session: Session, patient_id: str) -> bool:
    if not is_id(patient_id):
        return False
    return session.connection().execute(select(Patient.id).where(Patient.id == patient_id)).first() is not None


def tier_of(session: Session, patient_id: str) -> str:
    return str(session.connection().execute(select(Patient.tier).where(Patient.id == patient_id)).scalar())


def lock(session: Session, patient_id: str) -> Resolved | None:
    """The patient, with their row locked for the rest of the transaction (PostgreSQL;
    SQLite's BEGIN IMMEDIATE already serialises writers): use cases that check and then
    change a patient's own limits (bookings per day) take it first, so that two
    requests of one patient never both pass the check. None when there is no such patient."""
    if not is_id(patient_id):
        return None
    stmt = select(Patient.id).where(Patient.id == patient_id)
    if session.connection().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    if session.connection().execute(stmt).first() is None:
        return None
    found, _refs = resolve(session, [patient_id], [])
    return found.get(patient_id)
