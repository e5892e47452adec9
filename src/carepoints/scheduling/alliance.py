"""The medical alliance (医联体, ops.alliance): alliances, the institutions in them, the
external-id systems each institution issues, and explicit patient ↔ institution links.
Services flush, never commit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from carepoints.kit.bulk import insert_new, savepoint
from carepoints.kit.db import table
from carepoints.kit.ids import is_id, new_id
from carepoints.patients import institutions as links
from carepoints.patients.errors import PatientNotFoundError
from carepoints.patients.models import InstitutionSystem
from carepoints.patients.service import exists as patient_exists
from carepoints.scheduling.errors import AllianceCodeTakenError, InstitutionNotFoundError, SystemTakenError
from carepoints.scheduling.models import Alliance, Institution

_alliances = table(Alliance)
_institutions = table(Institution)
_systems = table(InstitutionSystem)


def create_alliance(session: Session, code: str, name_zh: str, name_en: str, institution_codes: Sequence[str],
                    now: datetime) -> dict[str, Any]:
    """A new alliance; the named institutions (codes) join it (404 for an unknown code)."""
    conn = session.connection()
    ids = links.ids_by_code(session, institution_codes)
    if set(institution_codes) - set(ids):
        raise InstitutionNotFoundError()
    aid = new_id()
    try:
        with savepoint(conn):
            conn.execute(_alliances.insert(), [{"id": aid, "code": code, "name_zh": name_zh, "name_en": name_en,
                                                "created_at": now}])
    except IntegrityError as exc:
        raise AllianceCodeTakenError() from exc
    if ids:
        conn.execute(update(_institutions).where(_institutions.c.id.in_(sorted(ids.values())))
                     .values(alliance_id=aid))
    return alliance(session, aid)


def alliance(session: Session, alliance_id: str) -> dict[str, Any]:
    conn = session.connection()
    row = conn.execute(select(_alliances).where(_alliances.c.id == alliance_id)).mappings().one()
    members = conn.execute(select(_institutions.c.id, _institutions.c.code).where(
        _institutions.c.alliance_id == alliance_id).order_by(_institutions.c.code)).all()
    return {"id": row["id"], "code": row["code"], "name_zh": row["name_zh"], "name_en": row["name_en"],
            "institutions": [{"id": i, "code": c} for i, c in members]}


def alliances(session: Session) -> list[dict[str, Any]]:
    ids = session.connection().execute(select(_alliances.c.id).order_by(_alliances.c.code)).scalars().all()
    return [alliance(session, a) for a in ids]


def _institution(session: Session, institution_id: str) -> None:
    if not is_id(institution_id) or session.connection().execute(
            select(_institutions.c.id).where(_institutions.c.id == institution_id)).first() is None:
        raise InstitutionNotFoundError()


def add_system(session: Session, institution_id: str, system: str, now: datetime) -> dict[str, Any]:
    """The institution issues ids of `system` (its HIS MRN system URI): patients holding ids of it
    are linked to it. Again → the same answer, another institution's system → 409 (the primary key decides)."""
    _institution(session, institution_id)
    conn = session.connection()
    created = insert_new(conn, _systems, {"system": system, "institution_id": institution_id}, ["system"])
    owner = conn.execute(select(_systems.c.institution_id).where(_systems.c.system == system)).scalar()
    if owner != institution_id:
        raise SystemTakenError()
    linked = links.link_holders(session, system, institution_id, now) if created else 0
    return {"institution_id": institution_id, "system": system, "created": created, "linked_patients": linked}


def systems(session: Session, institution_id: str) -> list[str]:
    _institution(session, institution_id)
    return sorted(links.systems_of(session, [institution_id]))


def link_patient(session: Session, patient_id: str, institution_id: str, now: datetime) -> dict[str, Any]:
    """Link a patient to an institution explicitly; again → the same answer (`linked` False)."""
    if not patient_exists(session, patient_id):
        raise PatientNotFoundError()
    _institution(session, institution_id)
    new = links.link(session, patient_id, [institution_id], now)
    return {"patient_id": patient_id, "institution_id": institution_id, "linked": bool(new),
            "institutions": links.institutions_of(session, patient_id)}


def patient_institutions(session: Session, patient_id: str) -> list[dict[str, Any]]:
    if not patient_exists(session, patient_id):
        raise PatientNotFoundError()
    return links.institutions_of(session, patient_id)
