"""Manual adjustments of patients' points by staff over the API (maker-checker)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator

from carepoints.events.schemas import PatientRef
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.time import utc_now
from carepoints.kit.web import JSON
from carepoints.operations import adjustments
from carepoints.security.deps import require
from carepoints.security.service import Principal

router = APIRouter(tags=["adjustments"])

ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
Status = Literal["pending", "posted", "rejected", "expired"]


class AdjustmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    patient: PatientRef
    points: int = Field(ge=-adjustments.MAX_POINTS, le=adjustments.MAX_POINTS,
                        description="non-zero: a credit (> 0) or a debit (< 0)")
    reason_code: str = Field(min_length=1, max_length=64)
    note: str = Field(min_length=1, max_length=500)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)

    @field_validator("points")
    @classmethod
    def _non_zero(cls, v: int) -> int:
        if v == 0:
            raise ValueError("points must not be zero")
        return v

    @field_validator("note")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("note must not be blank")
        return v


class ApproveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(default=None, max_length=500)


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(min_length=1, max_length=500)


@router.post("/adjustments", status_code=201)
def create_adjustment(body: AdjustmentIn, principal: Principal = Depends(require("adjustments:write"))) -> JSON:
    """A manual credit or debit by staff with a reason code from the programme's list and a note.
    Within the programme's approval threshold it posts at once (`status: posted`, with the
    `balance`); above it, it waits for a second person (`status: pending`). Each operator may
    adjust at most the programme's daily Σ|points| (409 `adjustments.daily_cap_reached`). The same
    `idempotency_key` and body answer the first adjustment again (200); a different body 409."""
    now = utc_now()
    with write_tx() as session:
        doc, created = adjustments.create(session, principal.actor(), now, ref=body.patient, points=body.points,
                                          reason_code=body.reason_code, note=body.note,
                                          idempotency_key=body.idempotency_key)
    return JSON(doc, status_code=201 if created else 200)


@router.get("/adjustments")
def list_adjustments(status: Status | None = None, patient_id: str | None = Query(default=None, pattern=ID_PATTERN),
                     limit: int = Query(default=50, ge=1, le=200),
                     before: str | None = Query(default=None, pattern=ID_PATTERN),
                     _p: Principal = Depends(require("adjustments:read"))) -> JSON:
    """Adjustments newest first, e.g. `status=pending` for the approval queue; `before` = the previous
    page's `next`."""
    with read_tx() as session:
        return JSON(adjustments.queue(session, status=status, patient_id=patient_id, limit=limit, before=before))


@router.get("/adjustments/{adjustment_id}")
def get_adjustment(adjustment_id: str, _p: Principal = Depends(require("adjustments:read"))) -> JSON:
    """One adjustment: its points, reason, note, status, maker and decision."""
    with read_tx() as session:
        return JSON(adjustments.adjustment(session, adjustment_id))


@router.post("/adjustments/{adjustment_id}/approve")
def approve_adjustment(adjustment_id: str, body: ApproveIn | None = None,
                       principal: Principal = Depends(require("adjustments:approve"))) -> JSON:
    """Approve a pending adjustment and post it. The maker cannot approve their own (409
    `adjustments.approver_is_maker`); a decided one answers 409 `adjustments.not_pending`, one past
    its deadline 409 `adjustments.expired`."""
    now = utc_now()
    with write_tx() as session:
        return JSON(adjustments.approve(session, adjustment_id, principal.actor(), now,
                                        note=body.note if body else None))


@router.post("/adjustments/{adjustment_id}/reject")
def reject_adjustment(adjustment_id: str, body: RejectIn,
                      principal: Principal = Depends(require("adjustments:approve"))) -> JSON:
    """Reject a pending adjustment with a note: nothing is posted. As for approval, never the maker."""
    now = utc_now()
    with write_tx() as session:
        return JSON(adjustments.reject(session, adjustment_id, principal.actor(), now, note=body.note))
