"""People: identity, external ids and consent. Enrolment (which also opens a
wallet and awards the welcome) sits above, in `enrolment`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from carepoints.kit.bulk import as_date, fetch, marks
from carepoints.kit.errors import ValidationFailedError
from carepoints.kit.ids import is_id, new_id
from carepoints.patients import crypto, institutions
from carepoints.patients.errors import ExternalIdTakenError, PatientNotFoundError
from carepoints.patients.models import Consent, ExternalId, Patient, PatientKey
from carepoints.patients.pii import mask_address, mask_id_number, mask_name, mask_phone
from carepoints.patients.schemas import DEFAULT_PURPOSES, PatientCreate
from carepoints.patients.sealing import ERASED_NAME as ERASED_NAME
from carepoints.patients.sealing import opened, sealed
from carepoints.security import scope, wechat

PROGRAMME = "points_programme"


@dataclass(slots=True)
class Resolved:
    patient_id: str
    tier: str
    birth_date: date | None
    status: str
    programme_consent: bool
    earning_frozen: bool = False
    merged_into: str | None = None


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
    ring = crypto.keyring()
    salt = crypto.new_salt()
    conn.execute(insert(Patient), [{
        "id": pid, **sealed(ring, pid, salt, name=data.name, phone=data.phone, id_number=data.id_number,
                            address=data.address),
        "birth_date": data.birth_date, "sex": data.sex, "status": "active", "tier": "standard",
        "elderly_mode": False, "idempotency_key": data.idempotency_key, "created_at": now}])
    conn.execute(insert(PatientKey), [{"patient_id": pid, "salt": salt, "created_at": now}])
    if data.external_ids:
        taken = [e for e in data.external_ids if conn.execute(select(ExternalId.patient_id).where(
            ExternalId.system == e.system, ExternalId.value == e.value)).scalar()]
        if taken:
            raise ExternalIdTakenError()
        conn.execute(insert(ExternalId), [{"system": e.system, "value": e.value, "patient_id": pid}
                                          for e in {(e.system, e.value): e for e in data.external_ids}.values()])
        institutions.link_by_systems(session, pid, [e.system for e in data.external_ids], now)  # (ops.alliance)
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
    p = conn.execute(select(Patient, PatientKey.salt).outerjoin(PatientKey, PatientKey.patient_id == Patient.id)
                     .where(Patient.id == patient_id)).mappings().first()
    if p is None:
        raise PatientNotFoundError()
    exts = conn.execute(select(ExternalId.system, ExternalId.value).where(ExternalId.patient_id == patient_id)
                        .order_by(ExternalId.system, ExternalId.value)).all()
    consents = conn.execute(select(Consent).where(Consent.patient_id == patient_id)
                            .order_by(Consent.accepted_at)).mappings().all()
    pii = opened(crypto.keyring(), p)
    name, phone, idn, address = pii.name, pii.phone, pii.id_number, pii.address
    if not reveal_pii and not pii.erased:
        name = mask_name(name)
        phone = mask_phone(phone) if phone else None
        idn = mask_id_number(idn) if idn else None
        address = mask_address(address) if address else None
    return {
        "id": p["id"], "name": name, "phone": phone, "id_number": idn, "address": address,
        "birth_date": p["birth_date"],
        "sex": p["sex"], "status": p["status"], "tier": p["tier"],
        "merged_into": p["merged_into"], "earning_frozen": p["earning_frozen_at"] is not None,
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
               f"WHERE c.patient_id = p.id AND c.purpose = {marks(conn, 1)} AND c.withdrawn_at IS NULL), "
               "p.earning_frozen_at, p.merged_into "
               f"FROM patients p WHERE p.id IN ({marks(conn, len(wanted))})")
        for pid, tier, birth, status, consent, frozen, merged in fetch(conn, sql, (PROGRAMME, *wanted)):
            found[pid] = Resolved(pid, tier, as_date(birth) if birth else None, status, bool(consent),
                                  frozen is not None, merged)
    return found, by_ref


def id_for(session: Session, patient_id: str | None, ref_id: str | None = None, system: str | None = None,
           value: str | None = None) -> str:
    """The patient a request names: by id, or by an external (system, value) reference. A patient
    token's request may name only patients in its reach (security.scope: 404 / 403)."""
    pid = patient_id if patient_id is not None else ref_id
    if pid is None:
        scope.ensure_system(system or "", session)  # (ops.alliance) a bound caller names its systems only
        _found, by_ref = resolve(session, [], [(system or "", value or "")])
        pid = by_ref.get((system or "", value or ""))
        if pid is None:
            raise PatientNotFoundError()
    scope.ensure(pid, session)  # (trust.auth; ops.alliance)
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


# --- PII: lookup by blind index, decrypted contact data, crypto-shredding -------------------

_PII_ROW = (Patient.id, Patient.name_enc, Patient.phone_enc, Patient.id_number_enc, Patient.address_enc,
            PatientKey.salt)


def _conn(session: Session | Connection) -> Connection:
    return session.connection() if isinstance(session, Session) else session


def find(session: Session | Connection, *, phone: str | None = None, id_number: str | None = None) -> list[str]:
    """Ids of the patients with this phone and/or national id (blind-index lookup, both must
    match when both are given; several patients may share a phone), oldest first. Erased
    patients are never found. No criterion → no patients."""
    if phone is None and id_number is None:
        return []
    ring = crypto.keyring()
    stmt = select(Patient.id).order_by(Patient.created_at, Patient.id)
    if phone is not None:
        stmt = stmt.where(Patient.phone_index.in_(ring.index_candidates("phone", phone)))
    if id_number is not None:
        stmt = stmt.where(Patient.id_number_index.in_(ring.index_candidates("id_number", id_number)))
    return list(_conn(session).execute(stmt).scalars())


def contact(session: Session | Connection, patient_ids: Iterable[str]) -> dict[str, str]:
    """Patient id → decrypted phone (for SMS and one-time codes), whatever the status: callers
    decide who may be contacted. Unknown, erased and unreadable patients are left out."""
    wanted = sorted({i for i in patient_ids if is_id(i)})
    if not wanted:
        return {}
    ring = crypto.keyring()
    out: dict[str, str] = {}
    conn = _conn(session)
    for chunk in (wanted[i:i + 500] for i in range(0, len(wanted), 500)):
        rows = conn.execute(select(*_PII_ROW).outerjoin(PatientKey, PatientKey.patient_id == Patient.id)
                            .where(Patient.id.in_(chunk))).mappings()
        for row in rows:
            phone = opened(ring, row).phone
            if phone:
                out[row["id"]] = phone
    return out


def display_name(session: Session | Connection, patient_id: str, *, masked: bool = False) -> str:
    """The patient's name for a greeting or a staff list ("已注销 / erased" once erased)."""
    if not is_id(patient_id):
        raise PatientNotFoundError()
    row = _conn(session).execute(select(*_PII_ROW).outerjoin(PatientKey, PatientKey.patient_id == Patient.id)
                                 .where(Patient.id == patient_id)).mappings().first()
    if row is None:
        raise PatientNotFoundError()
    pii = opened(crypto.keyring(), row)
    return mask_name(pii.name) if masked and not pii.erased and not pii.unreadable else pii.name


def shred(session: Session, patient_id: str, now: datetime) -> bool:
    """Crypto-shred a patient (PIPL deletion): delete their key material, clear every
    encrypted PII column and blind index, and set the status to `erased`. The row, its id
    and everything keyed on it (ledger amounts) stay. True when this call erased the
    patient, False when they were erased already (idempotent). Audit is the caller's."""
    if not is_id(patient_id):
        raise PatientNotFoundError()
    conn = session.connection()
    stmt = select(Patient.status, Patient.name_enc).where(Patient.id == patient_id)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).first()
    if row is None:
        raise PatientNotFoundError()
    deleted = conn.execute(delete(PatientKey).where(PatientKey.patient_id == patient_id)).rowcount
    if row.status == "erased" and row.name_enc is None and not deleted:
        return False
    conn.execute(update(Patient).where(Patient.id == patient_id).values(
        name_enc=None, phone_enc=None, id_number_enc=None, address_enc=None, phone_index=None,
        id_number_index=None, pii_kid=None, status="erased"))
    return True


def is_erased(session: Session | Connection, patient_id: str) -> bool:
    status = _conn(session).execute(select(Patient.status).where(Patient.id == patient_id)).scalar()
    return status == "erased"


def set_earning_frozen(session: Session, patient_id: str, frozen: bool, now: datetime) -> bool:
    """Freeze (or thaw) a patient's earning: while frozen, ingest awards nothing positive
    (notice `rules.earning_frozen`); penalties and spending go on. One guarded update, so
    concurrent reviewers change it once; True when this call changed it."""
    if not is_id(patient_id):
        raise PatientNotFoundError()
    conn = _conn(session)
    if conn.execute(select(Patient.id).where(Patient.id == patient_id)).scalar() is None:
        raise PatientNotFoundError()
    cond = Patient.earning_frozen_at.is_(None) if frozen else Patient.earning_frozen_at.is_not(None)
    done = conn.execute(update(Patient).where(Patient.id == patient_id, cond).values(
        earning_frozen_at=now if frozen else None))
    return bool(done.rowcount)


def preferences(session: Session | Connection, patient_id: str) -> tuple[bool, str | None]:
    """(elderly mode, page language) of a patient; (False, None) for an unknown id."""
    row = _conn(session).execute(select(Patient.elderly_mode, Patient.language).where(
        Patient.id == patient_id)).first() if is_id(patient_id) else None
    return (bool(row[0]), row[1]) if row is not None else (False, None)


def set_preferences(session: Session, patient_id: str, *, elderly_mode: bool | None = None,
                    language: str | None = None) -> None:
    """A patient's page settings (适老化 elderly mode, page language zh / en); they follow the
    patient to every device. Unknown patient: 404."""
    if not is_id(patient_id):
        raise PatientNotFoundError()
    values: dict[str, object] = {}
    if elderly_mode is not None:
        values["elderly_mode"] = elderly_mode
    if language is not None:
        if language not in ("zh", "en"):
            raise ValidationFailedError(fields=[{"loc": ["language"], "msg": "zh or en"}])
        values["language"] = language
    if not values:
        return
    done = _conn(session).execute(update(Patient).where(Patient.id == patient_id).values(**values))
    if not done.rowcount:
        raise PatientNotFoundError()


# (ops.merge)
def mark_merged(session: Session, patient_id: str, into: str) -> bool:
    """Set an active patient's status to `merged`, naming the record it was merged into
    (enrolment.merge, under its locks). One guarded update; False when the patient was no
    longer active and unmerged."""
    done = _conn(session).execute(update(Patient).where(
        Patient.id == patient_id, Patient.status == "active", Patient.merged_into.is_(None))
        .values(status="merged", merged_into=into))
    return bool(done.rowcount)


# (ops.identity)
STATUSES = ("active", "deceased", "closed", "merged", "erased")


def set_status(session: Session, patient_id: str, status_from: str, status_to: str) -> bool:
    """Change a patient's status from `status_from` to `status_to` (enrolment.closure: deceased,
    closed, reopened). One guarded update; False when the status was no longer `status_from`."""
    if status_to not in STATUSES or status_to in ("merged", "erased"):
        raise ValueError(status_to)  # merges and erasures have their own verbs
    done = _conn(session).execute(update(Patient).where(Patient.id == patient_id, Patient.status == status_from)
                                  .values(status=status_to))
    return bool(done.rowcount)


def pii_of(session: Session | Connection, patient_ids: Iterable[str]) -> dict[str, tuple[str, str | None]]:
    """Patient id → (decrypted name, decrypted national id) for identity checks and duplicate
    review; erased and unreadable patients are left out. Never log or return these as they are."""
    wanted = sorted({i for i in patient_ids if is_id(i)})
    out: dict[str, tuple[str, str | None]] = {}
    if not wanted:
        return out
    ring = crypto.keyring()
    conn = _conn(session)
    for chunk in (wanted[i:i + 500] for i in range(0, len(wanted), 500)):
        rows = conn.execute(select(*_PII_ROW).outerjoin(PatientKey, PatientKey.patient_id == Patient.id)
                            .where(Patient.id.in_(chunk))).mappings()
        for row in rows:
            pii = opened(ring, row)
            if not pii.erased and not pii.unreadable:
                out[row["id"]] = (pii.name, pii.id_number)
    return out


def _masked_names(session: Session, patient_ids: list[str]) -> dict[str, str]:
    return {pid: display_name(session, pid, masked=True) for pid in patient_ids}


wechat.install_names(_masked_names)  # (ops.wechat) who the candidates of a shared WeChat are
