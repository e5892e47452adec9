"""What a patient's login reaches (security.scope reads it through the app's
`PatientDirectory`): who may log in with a phone, and whom a logged-in patient
may act for — the patients who authorised them as proxy, with the scopes
that hold today (a guardian holds every scope until the child turns 14)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from carepoints.config import get_settings
from carepoints.kit.bulk import as_date
from carepoints.kit.db import table
from carepoints.kit.ids import is_id
from carepoints.kit.time import local_date
from carepoints.patients import service
from carepoints.patients.models import Patient, ProxyAuthorisation
from carepoints.patients.proxies import GUARDIAN_AGE, SCOPES, turns

_patients = table(Patient)
_auth = table(ProxyAuthorisation)
ACTIVE = "active"


def choices(session: Session, phone: str) -> list[dict[str, str]]:
    """Active patients using this phone, oldest first: [{id, name (masked)}]."""
    ids = service.find(session, phone=phone)
    if not ids:
        return []
    active = set(session.connection().execute(
        select(_patients.c.id).where(_patients.c.id.in_(ids), _patients.c.status == ACTIVE)).scalars())
    return [{"id": pid, "name": service.display_name(session, pid, masked=True)} for pid in ids if pid in active]


def reach(session: Session, patient_id: str, now: datetime) -> dict[str, frozenset[str]] | None:
    """Patients who authorised `patient_id` as proxy (active authorisations, active patients) →
    scopes; None when `patient_id` itself may not log in (unknown or not active)."""
    if not is_id(patient_id):
        return None
    conn = session.connection()
    status = conn.execute(select(_patients.c.status).where(_patients.c.id == patient_id)).scalar()
    if status != ACTIVE or service.is_erased(session, patient_id):
        return None
    rows = conn.execute(
        select(_auth.c.patient_id, _auth.c.proxy_kind, _auth.c.scopes, _patients.c.birth_date)
        .select_from(_auth.join(_patients, _patients.c.id == _auth.c.patient_id))
        .where(_auth.c.proxy_patient_id == patient_id, _auth.c.revoked_at.is_(None),
               _patients.c.status == ACTIVE)).all()
    today = local_date(now, get_settings().tz)
    out: dict[str, frozenset[str]] = {}
    for pid, kind, scopes, birth in rows:
        granted = set(scopes or [])
        if kind == "guardian" and birth is not None and today < turns(as_date(birth), GUARDIAN_AGE):
            granted |= set(SCOPES)
        out[str(pid)] = out.get(str(pid), frozenset()) | frozenset(granted)
    return out
