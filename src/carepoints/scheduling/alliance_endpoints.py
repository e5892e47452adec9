"""The medical alliance over the API (ops.alliance): alliances, institution systems, and
explicit patient ↔ institution links."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from carepoints.audit import service as audit
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.time import utc_now
from carepoints.kit.web import JSON
from carepoints.scheduling import alliance
from carepoints.security.deps import require
from carepoints.security.errors import InstitutionOutOfScopeError
from carepoints.security.service import Principal

router = APIRouter(tags=["alliance"])


class AllianceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")
    name_zh: str = Field(min_length=1, max_length=100)
    name_en: str = Field(min_length=1, max_length=100)
    institutions: list[str] = Field(default_factory=list, max_length=200)  # codes that join it


class SystemCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    system: str = Field(min_length=1, max_length=200)


class PatientLink(BaseModel):
    model_config = ConfigDict(extra="forbid")
    institution_id: str = Field(min_length=1, max_length=36)


@router.get("/alliances")
def list_alliances(_p: Principal = Depends(require("schedule:read"))) -> JSON:
    """The alliances (医联体) with their institutions."""
    with read_tx() as session:
        return JSON({"items": alliance.alliances(session)})


@router.post("/alliances", status_code=201)
def create_alliance(body: AllianceCreate, principal: Principal = Depends(require("alliance:write"))) -> JSON:
    """Create an alliance; the institutions named by code join it."""
    now = utc_now()
    with write_tx() as session:
        doc = alliance.create_alliance(session, body.code, body.name_zh, body.name_en, body.institutions, now)
        audit.record(session, principal.actor(), "alliance:alliance:create", now, subject_id=doc["id"],
                     institutions=[i["id"] for i in doc["institutions"]])
    return JSON(doc, status_code=201)


@router.get("/institutions/{institution_id}/systems")
def list_systems(institution_id: str, _p: Principal = Depends(require("schedule:read"))) -> JSON:
    """The external-id systems (HIS MRN system URIs) the institution issues."""
    with read_tx() as session:
        return JSON({"items": alliance.systems(session, institution_id)})


@router.post("/institutions/{institution_id}/systems", status_code=201)
def add_system(institution_id: str, body: SystemCreate,
               principal: Principal = Depends(require("alliance:write"))) -> JSON:
    """Record that the institution issues ids of this system; again → 200, another's → 409."""
    now = utc_now()
    with write_tx() as session:
        doc = alliance.add_system(session, institution_id, body.system, now)
        if doc["created"]:
            audit.record(session, principal.actor(), "alliance:system:add", now, subject_id=institution_id)
    return JSON(doc, status_code=201 if doc["created"] else 200)


@router.get("/patients/{patient_id}/institutions")
def patient_institutions(patient_id: str, _p: Principal = Depends(require("patients:read"))) -> JSON:
    """The institutions of the alliance the patient belongs to."""
    with read_tx() as session:
        return JSON({"items": alliance.patient_institutions(session, patient_id)})


@router.post("/patients/{patient_id}/institutions")
def link_patient(patient_id: str, body: PatientLink,
                 principal: Principal = Depends(require("alliance:link"))) -> JSON:
    """Link the patient to an institution of the alliance; again → the same answer."""
    if principal.institutions is not None and body.institution_id not in principal.institutions:
        raise InstitutionOutOfScopeError()  # a bound caller links to its own institutions only
    now = utc_now()
    with write_tx() as session:
        doc = alliance.link_patient(session, patient_id, body.institution_id, now)
        if doc["linked"]:
            audit.record(session, principal.actor(), "alliance:patient:link", now, subject_id=body.institution_id,
                         patient_id=patient_id)
    return JSON(doc)
