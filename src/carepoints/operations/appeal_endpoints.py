"""Appeals of penalties and suspensions over the API: filed by the patient, the service
window or the hospital app; decided by staff."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from carepoints.events.schemas import PatientRef
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.time import utc_now
from carepoints.kit.web import JSON
from carepoints.operations import appeals
from carepoints.security.deps import require, require_any
from carepoints.security.service import Principal

router = APIRouter(tags=["appeals"])

ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
Reason = Literal["hospitalised", "session_cancelled_unrecorded", "wrong_patient", "other"]
Status = Literal["open", "upheld", "reversed"]


class AppealIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    patient: PatientRef
    event_id: str | None = Field(default=None, max_length=64, description="the penalty event (or suspension_id)")
    suspension_id: str | None = Field(default=None, max_length=64, description="the suspension (or event_id)")
    reason: Reason
    note: str | None = Field(default=None, max_length=500, description="required when the reason is other")


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: Literal["upheld", "reversed"]
    note: str = Field(min_length=1, max_length=500)


@router.post("/appeals", status_code=201)
def file_appeal(body: AppealIn, principal: Principal = Depends(require("appeals:write"))) -> JSON:
    """Appeal one penalty (`event_id`: an event of the patient that deducted points) or one
    suspension (`suspension_id`) with a reason, within the appeal window (409 `appeals.too_late`).
    At most one open appeal per subject (409 `appeals.already_open`); a subject already
    decided answers 409 `appeals.already_decided`; someone else's record 404."""
    now = utc_now()
    with write_tx() as session:
        doc = appeals.file(session, principal.actor(), now, patient_id=None, ref=body.patient, reason=body.reason,
                           event_id=body.event_id, suspension_id=body.suspension_id, note=body.note)
    return JSON(doc, status_code=201)


@router.get("/appeals")
def list_appeals(status: Status | None = "open", limit: int = Query(default=50, ge=1, le=200),
                 before: str | None = Query(default=None, pattern=ID_PATTERN),
                 _p: Principal = Depends(require("appeals:read"))) -> JSON:
    """The staff queue of appeals, newest first (default: open ones); `before` = the previous page's `next`."""
    with read_tx() as session:
        return JSON(appeals.queue(session, status=status, limit=limit, before=before))


@router.get("/patients/{patient_id}/appeals")
def patient_appeals(patient_id: str, status: Status | None = None, limit: int = Query(default=50, ge=1, le=200),
                    before: str | None = Query(default=None, pattern=ID_PATTERN),
                    _p: Principal = Depends(require_any("appeals:read", "appeals:view"))) -> JSON:
    """The patient's appeals, newest first, with their outcomes."""
    with read_tx() as session:
        return JSON(appeals.queue(session, status=status, patient_id=patient_id, limit=limit, before=before))


@router.get("/appeals/{appeal_id}")
def get_appeal(appeal_id: str, _p: Principal = Depends(require_any("appeals:read", "appeals:view"))) -> JSON:
    """One appeal: its subject, reason, status, deadline and decision (a patient: only their own)."""
    with read_tx() as session:
        return JSON(appeals.appeal(session, appeal_id))


@router.post("/appeals/{appeal_id}/decide")
def decide_appeal(appeal_id: str, body: DecisionIn, principal: Principal = Depends(require("appeals:decide"))
                  ) -> JSON:
    """Uphold (nothing changes) or reverse an open appeal: reversing revokes the penalty's event
    (or the suspension's trigger no-show), giving the points back and lifting the suspension it
    caused. Whoever filed it cannot decide it (403 `appeals.decider_not_allowed`); a decided
    appeal answers 409 `appeals.already_decided`. The patient is told the outcome."""
    now = utc_now()
    with write_tx() as session:
        return JSON(appeals.decide(session, appeal_id, body.outcome, principal.actor(), now, note=body.note))


@router.get("/patients/{patient_id}/suspensions")
def patient_suspensions(patient_id: str, _p: Principal = Depends(require_any("appeals:read", "appeals:view"))
                        ) -> JSON:
    """The patient's suspensions of earning (newest first) with their trigger no-show and appeal:
    the `suspension_id` an appeal names."""
    with read_tx() as session:
        return JSON(appeals.suspensions(session, patient_id))
