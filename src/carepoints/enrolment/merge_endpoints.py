"""Merging a duplicate patient record into its survivor over the API (档案合并)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from carepoints.enrolment import merge
from carepoints.kit.db import write_tx
from carepoints.kit.time import utc_now
from carepoints.kit.web import JSON
from carepoints.security.deps import require
from carepoints.security.service import Principal

router = APIRouter(tags=["patients"])


class MergeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    duplicate_id: str = Field(min_length=1, max_length=36)
    reason_code: str = Field(pattern=r"^[a-z][a-z0-9_.-]{0,63}$",
                             description="a reason code (e.g. duplicate_registration), never free text")
    note: str | None = Field(default=None, max_length=500, description="staff's note; kept with the merge only")
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=128)


@router.post("/patients/{survivor_id}/merge", responses={200: {"description": "merged, or the same merge again"}})
def merge_patient(survivor_id: str, body: MergeRequest,
                  principal: Principal = Depends(require("patients:merge"))) -> JSON:
    """Merge the duplicate record into this one in one transaction: external ids, events, rule
    state, appointments and engagement records, and the wallet's lots and debt move here; the
    duplicate becomes `merged`. The same merge again answers the first result with
    `duplicate: true`. 409 when either record is not active or already merged, the duplicate
    has open holds, or the two are in different households."""
    now = utc_now()
    with write_tx() as session:
        result, created = merge.merge(session, survivor_id, body.duplicate_id, principal.actor(), now,
                                      reason_code=body.reason_code, note=body.note,
                                      idempotency_key=body.idempotency_key)
    return JSON({**result, "duplicate": not created})
