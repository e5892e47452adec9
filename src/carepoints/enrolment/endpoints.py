from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from carepoints.enrolment import service
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.errors import ValidationFailedError
from carepoints.kit.time import utc_now
from carepoints.kit.web import JSON
from carepoints.patients import institutions
from carepoints.patients import service as patients
from carepoints.patients.schemas import PatientCreate
from carepoints.security import scope
from carepoints.security.deps import require
from carepoints.security.service import Principal

router = APIRouter(tags=["patients"])


@router.post("/patients", status_code=201, responses={200: {"description": "existing patient (replay)"}})
def enrol(body: PatientCreate, principal: Principal = Depends(require("patients:write"))) -> JSON:
    """Enrol a patient: the person, their wallet and the welcome award in one transaction.
    The same external id or idempotency key again answers the existing patient (200)."""
    with write_tx() as session:
        if principal.institutions is not None:  # (ops.alliance) a bound key or staff user
            at = institutions.enrolling_institution(session, principal.institutions, body.institution)
            for ext in body.external_ids:
                scope.ensure_system(ext.system, session)
        pid, created = service.enrol(session, body, utc_now())
        if principal.institutions is not None:
            if not created:
                scope.ensure(pid, session)
            institutions.link(session, pid, [at], utc_now())
            scope.note_linked(pid)
        doc = service.patient(session, pid, reveal_pii=principal.can("pii:read"))
    return JSON(doc, status_code=201 if created else 200)


@router.get("/patients")
def find_patients(phone: str | None = Query(None, pattern=r"^\+?[0-9][0-9 -]{4,23}$"),
                  id_number: str | None = Query(None, pattern=r"^[0-9]{17}[0-9Xx]$|^[A-Za-z0-9]{6,20}$"),
                  principal: Principal = Depends(require("patients:read"))) -> JSON:
    """Look patients up by phone and/or national id (blind index; several patients may share a
    phone): `{items: [patient]}`, PII masked unless the caller may read it. One of the two is required."""
    if phone is None and id_number is None:
        raise ValidationFailedError(fields=[{"loc": ["query", "phone"], "msg": "phone or id_number is required"}])
    with read_tx() as session:
        reveal = principal.can("pii:read")
        found = patients.find(session, phone=phone, id_number=id_number)
        if principal.institutions is not None:  # (ops.alliance) only the caller's institutions' patients
            mine = institutions.linked_patients(session, found, principal.institutions)
            found = [pid for pid in found if pid in mine]
        return JSON({"items": [service.patient(session, pid, reveal_pii=reveal) for pid in found]})


@router.get("/patients/{patient_id}")
def get_patient(patient_id: str, principal: Principal = Depends(require("patients:read"))) -> JSON:
    """A patient with their health advisor; PII masked unless the caller may read it."""
    with read_tx() as session:
        return JSON(service.patient(session, patient_id, reveal_pii=principal.can("pii:read")))


@router.get("/patients/{patient_id}/points")
def get_points(patient_id: str, _p: Principal = Depends(require("points:read"))) -> JSON:
    """Balance, available and held points, debt, tier, points earned this year, suspension, expiring
    lots and the health advisor (专属健康顾问) of a tier that includes one."""
    with read_tx() as session:
        return JSON(service.points(session, patient_id, utc_now()))


@router.get("/patients/{patient_id}/points/entries")
def get_entries(patient_id: str, limit: int = Query(50, ge=1, le=500),
                cursor: str | None = Query(None, pattern=r"^\d{1,12}$"),
                _p: Principal = Depends(require("points:read"))) -> JSON:
    """Ledger entries, newest first; pass `next` back as `cursor` for the following page."""
    with read_tx() as session:
        return JSON(service.entries(session, patient_id, limit=limit, cursor=cursor))
