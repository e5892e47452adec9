"""Which institutions of the alliance (医联体) a patient belongs to (ops.alliance).

A patient is linked to an institution when enrolled there (by a bound key or staff user),
when an external id of one of its systems is attached, when booked at one of its sessions,
or explicitly. Links are only ever added (`first_seen_at` is the first time); the primary key
(patient, institution) makes a second link a no-op, decided by the database.

security.scope reads the links through the directory installed here (bound callers only)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import String, column, literal, select
from sqlalchemy import table as sa_table
from sqlalchemy.orm import Session

from carepoints.kit.bulk import insert_new, upsert
from carepoints.kit.db import table
from carepoints.kit.errors import ValidationFailedError
from carepoints.kit.ids import is_id
from carepoints.kit.types import UTCDateTime
from carepoints.patients.models import ExternalId, InstitutionSystem, PatientInstitution
from carepoints.security import scope
from carepoints.security.errors import InstitutionOutOfScopeError

_links = table(PatientInstitution)
_systems = table(InstitutionSystem)


def link(session: Session, patient_id: str, institution_ids: Iterable[str], now: datetime) -> list[str]:
    """Link the patient to these institutions; answers the ones newly linked (flushes, never commits).
    One statement per institution; a concurrent link of the same pair is a no-op (the primary key decides)."""
    conn = session.connection()
    return [i for i in sorted(set(institution_ids)) if insert_new(
        conn, _links, {"patient_id": patient_id, "institution_id": i, "first_seen_at": now},
        ["patient_id", "institution_id"])]


def link_holders(session: Session, system: str, institution_id: str, now: datetime) -> int:
    """Link every patient holding an external id of `system` to the institution that issues it
    (one INSERT ... SELECT; links already there stay as they are). Answers how many were linked."""
    conn = session.connection()
    ext = table(ExternalId)
    picked = select(ext.c.patient_id, literal(institution_id, String), literal(now, UTCDateTime())).where(
        ext.c.system == system).distinct()
    stmt = upsert(conn, _links).from_select(["patient_id", "institution_id", "first_seen_at"], picked)
    stmt = stmt.on_conflict_do_nothing(index_elements=["patient_id", "institution_id"])
    return len(conn.execute(stmt.returning(_links.c.patient_id)).all())


def link_by_systems(session: Session, patient_id: str, systems: Iterable[str], now: datetime) -> list[str]:
    """Link the patient to the institutions that issue these external-id systems."""
    wanted = sorted(set(systems))
    if not wanted:
        return []
    owners = session.connection().execute(
        select(_systems.c.institution_id).where(_systems.c.system.in_(wanted))).scalars()
    return link(session, patient_id, owners, now)


def institutions_of(session: Session, patient_id: str) -> list[dict[str, object]]:
    """The patient's links, oldest first: [{institution_id, first_seen_at}]."""
    rows = session.connection().execute(
        select(_links.c.institution_id, _links.c.first_seen_at).where(_links.c.patient_id == patient_id)
        .order_by(_links.c.first_seen_at, _links.c.institution_id)).all()
    return [{"institution_id": i, "first_seen_at": at} for i, at in rows]


def linked_any(session: Session, patient_id: str, institutions: Iterable[str]) -> bool:
    wanted = list(institutions)
    if not wanted or not is_id(patient_id):
        return False
    return session.connection().execute(select(_links.c.patient_id).where(
        _links.c.patient_id == patient_id, _links.c.institution_id.in_(wanted)).limit(1)).first() is not None


def linked_patients(session: Session, patient_ids: Iterable[str], institutions: Iterable[str]) -> set[str]:
    """Which of these patients are linked to one of `institutions` (one query)."""
    ids = sorted({p for p in patient_ids if is_id(p)})
    wanted = list(institutions)
    if not ids or not wanted:
        return set()
    return set(session.connection().execute(select(_links.c.patient_id).where(
        _links.c.patient_id.in_(ids), _links.c.institution_id.in_(wanted))).scalars())


def systems_of(session: Session, institutions: Iterable[str]) -> frozenset[str]:
    wanted = list(institutions)
    if not wanted:
        return frozenset()
    return frozenset(session.connection().execute(
        select(_systems.c.system).where(_systems.c.institution_id.in_(wanted))).scalars())


# The institutions table belongs to scheduling (above this layer): read by name, id and code only.
_institutions = sa_table("institutions", column("id", String), column("code", String))


def ids_by_code(session: Session, codes: Iterable[str]) -> dict[str, str]:
    """Institution code → id for the codes that exist."""
    wanted = sorted(set(codes))
    if not wanted:
        return {}
    return {str(c): str(i) for i, c in session.connection().execute(
        select(_institutions.c.id, _institutions.c.code).where(_institutions.c.code.in_(wanted)))}


def codes_of(session: Session, institution_ids: Iterable[str]) -> dict[str, str]:
    """Institution id → code."""
    wanted = sorted(set(institution_ids))
    if not wanted:
        return {}
    return {str(i): str(c) for i, c in session.connection().execute(
        select(_institutions.c.id, _institutions.c.code).where(_institutions.c.id.in_(wanted)))}


def enrolling_institution(session: Session, bound: frozenset[str], code: str | None) -> str:
    """The institution a bound caller enrols at: its only one, or the one the request names
    (422 when it names none of several; 403 when it names one it is not bound to)."""
    if code is None:
        if len(bound) == 1:
            return next(iter(bound))
        raise ValidationFailedError(fields=[{"loc": ["body", "institution"],
                                             "msg": "required: the caller is bound to several institutions"}])
    found = ids_by_code(session, [code]).get(code)
    if found is None or found not in bound:
        raise InstitutionOutOfScopeError()
    return found


def patient_codes(session: Session, patient_id: str) -> set[str]:
    """The codes of the institutions the patient is linked to (one query)."""
    if not is_id(patient_id):
        return set()
    return set(session.connection().execute(
        select(_institutions.c.code)
        .select_from(_links.join(_institutions, _institutions.c.id == _links.c.institution_id))
        .where(_links.c.patient_id == patient_id)).scalars())


class Directory:
    """security.scope.InstitutionDirectory over the links above."""

    def linked(self, session: Session, patient_id: str, institutions: frozenset[str]) -> bool:
        return linked_any(session, patient_id, institutions)

    def systems(self, session: Session, institutions: frozenset[str]) -> frozenset[str]:
        return systems_of(session, institutions)


scope.install_institutions(Directory())
