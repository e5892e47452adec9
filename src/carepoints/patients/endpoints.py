"""Proxy authorisations (代办) over the API: who may act for a patient, in which scopes."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, model_validator

from carepoints.audit import service as audit
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.time import utc_now
from carepoints.kit.web import JSON
from carepoints.patients import proxies
from carepoints.security.deps import require
from carepoints.security.service import Principal

router = APIRouter(tags=["patients"])
Scope = Literal["view", "book", "redeem"]


class ProxyIn(BaseModel):
    """Another patient (`{patient_id}`) or the service window (`{kind: service_window}`)."""

    model_config = ConfigDict(extra="forbid")
    patient_id: str | None = Field(default=None, max_length=64)
    kind: Literal["patient", "service_window"] | None = None

    @model_validator(mode="after")
    def _one_form(self) -> ProxyIn:
        if (self.patient_id is None) != (self.kind == "service_window"):
            raise ValueError("a proxy is {patient_id} or {kind: service_window}")
        return self

    def ref(self) -> proxies.Proxy:
        return proxies.Proxy(self.patient_id)


class ProxyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    proxy: ProxyIn
    scopes: list[Scope] = Field(default_factory=list, max_length=3)
    relationship: Literal["guardian"] | None = None

    @model_validator(mode="after")
    def _scoped(self) -> ProxyCreate:
        if not self.scopes and self.relationship != "guardian":
            raise ValueError("scopes are required (a guardian of a child under 14 may have none)")
        return self


class ProxyCheck(BaseModel):
    model_config = ConfigDict(extra="forbid")
    proxy: ProxyIn
    scope: Scope



@router.post("/patients/{patient_id}/proxies", status_code=201)
def authorise(patient_id: str, body: ProxyCreate, principal: Principal = Depends(require("proxies:write"))) -> JSON:
    """Authorise a caregiver, a guardian or the service window to act for the patient (代办)."""
    now = utc_now()
    with write_tx() as session:
        doc = proxies.authorise(session, patient_id, body.proxy.ref(), list(body.scopes), now,
                                guardian=body.relationship == "guardian")
        audit.record(session, principal.actor(), "patients:proxy:authorise", now, subject_id=doc["id"],
                     patient_id=patient_id, kind=doc["kind"], scopes=doc["scopes"])
    return JSON(doc, status_code=201)


@router.post("/patients/{patient_id}/proxies/{authorisation_id}/revoke")
def revoke(patient_id: str, authorisation_id: str, principal: Principal = Depends(require("proxies:write"))) -> JSON:
    """Revoke an authorisation; revoking again answers the same result."""
    now = utc_now()
    with write_tx() as session:
        doc = proxies.revoke(session, patient_id, authorisation_id, now)
        if doc["revoked_at"] == now:  # revoked by this request, not before it
            audit.record(session, principal.actor(), "patients:proxy:revoke", now, subject_id=authorisation_id,
                         patient_id=patient_id)
    return JSON(doc)


@router.get("/patients/{patient_id}/proxies")
def list_proxies(patient_id: str, _p: Principal = Depends(require("patients:read"))) -> JSON:
    """The patient's proxy authorisations, newest first, revoked ones included."""
    with read_tx() as session:
        return JSON({"items": proxies.authorisations(session, patient_id)})


@router.post("/patients/{patient_id}/proxies/check")
def check(patient_id: str, body: ProxyCheck, _p: Principal = Depends(require("patients:read"))) -> JSON:
    """May this proxy act for the patient in `scope` now? 200 with the authorisation, else 403
    `patients.proxy_not_authorised` (for an "acting for" switch; the action itself is recorded where it happens)."""
    with read_tx() as session:
        aid = proxies.check(session, patient_id, body.proxy.ref(), body.scope, utc_now())
    return JSON({"authorisation_id": aid, "scope": body.scope})
