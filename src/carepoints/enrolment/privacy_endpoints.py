"""Consent per purpose, the data download and erasure over the API (PIPL rights)."""

from __future__ import annotations

from fastapi import APIRouter, Body, Depends
from pydantic import BaseModel, ConfigDict, Field

from carepoints.enrolment import privacy
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.time import utc_now
from carepoints.kit.web import JSON
from carepoints.patients.schemas import ConsentSource, GuardianIn, Purpose
from carepoints.security.deps import require
from carepoints.security.service import Principal

router = APIRouter(tags=["privacy"])


class ConsentGrant(BaseModel):
    model_config = ConfigDict(extra="forbid")
    purpose: Purpose
    version: str = Field(min_length=1, max_length=32)
    source: ConsentSource | None = None  # default: guardian when `guardian` is given, else patient
    guardian: GuardianIn | None = None


class ErasureRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_.-]{0,63}$",
                               description="a reason code (e.g. patient_request), never free text")


def _reveals(principal: Principal, patient_id: str) -> bool:
    """The patient themself (not a proxy acting for them), or staff who may read PII, see the
    profile unmasked."""
    return (principal.kind == "patient" and principal.id == patient_id) or principal.can("pii:read")


@router.get("/patients/{patient_id}/consents")
def list_consents(patient_id: str, _p: Principal = Depends(require("consents:read"))) -> JSON:
    """Consent per purpose now (granted or not) and the full history, newest first."""
    with read_tx() as session:
        return JSON(privacy.consents(session, patient_id))


@router.post("/patients/{patient_id}/consents", status_code=201,
             responses={200: {"description": "the same purpose and version is already active"}})
def grant_consent(patient_id: str, body: ConsentGrant,
                  principal: Principal = Depends(require("consents:write"))) -> JSON:
    """Grant consent for one purpose (version, source, a guardian for a child under 14). The
    same purpose and version while active answers the active grant (200); another version
    supersedes it."""
    now = utc_now()
    with write_tx() as session:
        doc, created = privacy.grant(session, patient_id, body.purpose, body.version, principal.actor(), now,
                                     source=body.source, guardian=body.guardian)
    return JSON(doc, status_code=201 if created else 200)


@router.delete("/patients/{patient_id}/consents/{purpose}")
def withdraw_consent(patient_id: str, purpose: str, principal: Principal = Depends(require("consents:write"))
                     ) -> JSON:
    """Withdraw the active consent for a purpose; processing for it stops from now
    (404 `consent.not_found` when none is active)."""
    now = utc_now()
    with write_tx() as session:
        return JSON(privacy.withdraw(session, patient_id, purpose, principal.actor(), now))


@router.get("/patients/{patient_id}/export")
def export(patient_id: str, principal: Principal = Depends(require("privacy:export"))) -> JSON:
    """Everything about the patient as JSON (数据下载): profile, consents, external ids, events,
    points and ledger entries, appointments, measurements, messages, follow-ups, care alerts,
    household and proxies. The profile is unmasked for the patient and for staff with `pii:read`."""
    now = utc_now()
    with write_tx() as session:  # the download is audited in the same transaction
        doc = privacy.export(session, patient_id, principal.actor(), now, reveal_pii=_reveals(principal, patient_id))
    return JSON(doc, headers={"Content-Disposition": f'attachment; filename="carepoints-{patient_id}.json"'})


@router.post("/patients/{patient_id}/erasure")
def erase(patient_id: str, body: ErasureRequest | None = Body(default=None),
          principal: Principal = Depends(require("privacy:erase"))) -> JSON:
    """Erase the patient's personal data (删除权): PII crypto-shredded, consents withdrawn,
    future appointments cancelled, holds released, external ids dropped; ledger amounts kept.
    Again answers the first outcome with `duplicate: true`."""
    now = utc_now()
    with write_tx() as session:
        result = privacy.erase(session, patient_id, principal.actor(), now, reason=body.reason if body else None)
    return JSON({**result.doc, "duplicate": not result.created})
