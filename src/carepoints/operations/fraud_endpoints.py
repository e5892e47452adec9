"""The fraud review queue and earning freezes over the API (staff only)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Body, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.time import utc_now
from carepoints.kit.web import JSON
from carepoints.operations import fraud
from carepoints.security.deps import require
from carepoints.security.service import Principal

router = APIRouter(tags=["fraud"])

Kind = Literal["velocity", "repeated_reading", "implausible_reading", "staff_outlier", "shared_phone",
               "shared_device"]
Status = Literal["open", "dismissed", "actioned"]
ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["dismiss", "freeze", "revoke_events", "freeze_and_revoke"]
    # revoke: these of the signal's events (default all of them); freeze: these of its patients (default all)
    event_ids: list[str] | None = Field(default=None, max_length=100)
    patient_ids: list[str] | None = Field(default=None, max_length=50)
    note: str | None = Field(default=None, max_length=500)


class FreezeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="fraud_review", pattern=r"^[a-z][a-z0-9_.-]{0,63}$",
                        description="a reason code, never free text (it goes to the audit log)")
    signal_id: str | None = Field(default=None, pattern=ID_PATTERN)


@router.get("/fraud/signals")
def list_signals(status: Status | None = "open", kind: Kind | None = None,
                 limit: int = Query(default=50, ge=1, le=200), before: str | None = Query(default=None, max_length=36),
                 _p: Principal = Depends(require("fraud:read"))) -> JSON:
    """The fraud review queue, newest first (default: open signals); `before` = the previous page's `next`."""
    with read_tx() as session:
        return JSON(fraud.signals(session, status=status, kind=kind, limit=limit, before=before))


@router.get("/fraud/signals/{signal_id}")
def get_signal(signal_id: str, _p: Principal = Depends(require("fraud:read"))) -> JSON:
    """One fraud signal: its kind, subject, window, counts, event ids and review."""
    with read_tx() as session:
        return JSON(fraud.signal(session, signal_id))


@router.post("/fraud/signals/{signal_id}/review")
def review_signal(signal_id: str, body: ReviewIn, principal: Principal = Depends(require("fraud:review"))) -> JSON:
    """Close an open signal: dismiss it, freeze its patients' earning, revoke its events (reason
    `fraud:<signal id>`), or both. A signal already reviewed answers 409 `fraud.already_reviewed`."""
    now = utc_now()
    with write_tx() as session:
        return JSON(fraud.review(session, signal_id, body.action, principal.actor(), now, event_ids=body.event_ids,
                                 patient_ids=body.patient_ids, note=body.note))


@router.post("/patients/{patient_id}/earning-freeze")
def freeze_earning(patient_id: str, body: FreezeIn | None = Body(default=None),
                   principal: Principal = Depends(require("fraud:review"))) -> JSON:
    """Freeze the patient's earning: ingest awards nothing (notice `rules.earning_frozen`) until
    unfrozen; penalties and spending go on. Again: `changed` false. The patient is told."""
    body = body or FreezeIn()
    now = utc_now()
    with write_tx() as session:
        return JSON(fraud.freeze(session, patient_id, principal.actor(), now, reason=body.reason,
                                 signal_id=body.signal_id))


@router.delete("/patients/{patient_id}/earning-freeze")
def unfreeze_earning(patient_id: str, principal: Principal = Depends(require("fraud:review"))) -> JSON:
    """Let the patient earn again from now (not retroactive). Not frozen: `changed` false."""
    now = utc_now()
    with write_tx() as session:
        return JSON(fraud.unfreeze(session, patient_id, principal.actor(), now))
