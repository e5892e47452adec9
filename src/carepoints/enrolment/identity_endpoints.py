"""Real-name verification, the duplicate-records review list, and deceased / closed accounts."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Body, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from carepoints.enrolment import closure, identity
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.errors import AppError
from carepoints.kit.time import utc_now
from carepoints.kit.web import JSON
from carepoints.security.deps import require
from carepoints.security.permissions import Role
from carepoints.security.service import Principal

router = APIRouter(tags=["identity"])
_ID = Query(None, max_length=36)
_CODE = r"^[a-z][a-z0-9_.-]{0,63}$"


class VerificationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: Literal["desk_document", "external"]
    document_kind: Literal["resident_id", "passport", "hk_macao_permit", "taiwan_permit", "other"] | None = None


class DismissIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(default=None, max_length=500)


class StatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["deceased", "closed", "active"]
    reason_code: str = Field(pattern=_CODE, description="a reason code (e.g. patient_request, recorded_in_error)")
    note: str | None = Field(default=None, max_length=500)


@router.post("/patients/{patient_id}/verification", status_code=201)
def verify(patient_id: str, body: VerificationIn, principal: Principal = Depends(require("identity:verify"))
           ) -> JSON:
    """Record a real-name verification (实名认证): staff saw an ID document at the desk (its
    kind, never its number), or the external check answers verified or mismatch (409
    `identity.checker_unavailable` when none is configured). Answers the patient's status
    and every step."""
    if body.method == identity.EXTERNAL:
        with read_tx() as session:
            person = identity.subject(session, patient_id)
        checker = identity.configured_checker()
        try:
            outcome = identity.run_check(checker, person)  # outside any transaction: no lock waits on it
        except AppError as exc:
            with write_tx() as session:
                identity.record_failure(session, patient_id, checker.name, exc.code, principal.actor(), utc_now())
            raise
        with write_tx() as session:
            doc = identity.record(session, patient_id, identity.EXTERNAL, principal.actor(), utc_now(),
                                  outcome=outcome, checker=checker.name)
        return JSON(doc, status_code=201)
    with write_tx() as session:
        doc = identity.record(session, patient_id, identity.DESK, principal.actor(), utc_now(),
                              document_kind=body.document_kind)
    return JSON(doc, status_code=201)


@router.get("/patients/{patient_id}/verification")
def verification(patient_id: str, _p: Principal = Depends(require("identity:read"))) -> JSON:
    """The patient's real-name status (verified, mismatch or unverified) and every step, newest first."""
    with read_tx() as session:
        return JSON(identity.verification(session, patient_id))


@router.get("/duplicates")
def duplicates(status: Literal["open", "dismissed", "merged"] = "open", limit: int = Query(50, ge=1, le=100),
               before: str | None = _ID, _p: Principal = Depends(require("identity:review"))) -> JSON:
    """Possible duplicate records (same national id, or same name, birth date and phone), newest
    first, each with both records masked and their verification status; `before` = `next`."""
    with read_tx() as session:
        return JSON(identity.duplicates(session, status=status, limit=limit, before=before))


@router.post("/duplicates/{candidate_id}/dismiss")
def dismiss(candidate_id: str, body: DismissIn | None = Body(default=None),
            principal: Principal = Depends(require("identity:review"))) -> JSON:
    """Staff judged the two records two people: the candidate is dismissed (409
    `identity.candidate_closed` when it was already dismissed or merged)."""
    with write_tx() as session:
        return JSON(identity.dismiss(session, candidate_id, principal.actor(), utc_now(),
                                     note=body.note if body else None))


@router.post("/patients/{patient_id}/status")
def change_status(patient_id: str, body: StatusIn, principal: Principal = Depends(require("patients:close"))
                  ) -> JSON:
    """Mark a patient deceased or close the account (已故 / 销户), or reopen a closed one: earning,
    reminders and care alerts stop, open holds are voided, the points left expire or go to the
    household (`closure_points_policy`), future appointments are cancelled by the hospital.
    Deceased is final, except an admin's correction with reason `recorded_in_error`. The same
    status again answers the last change with `changed: false`."""
    with write_tx() as session:
        return JSON(closure.change_status(session, patient_id, body.status, body.reason_code, principal.actor(),
                                          utc_now(), note=body.note, may_correct=principal.role == Role.admin))
