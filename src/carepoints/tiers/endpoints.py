"""Tiers API: a patient's tier with its progress and history, and their health advisor."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.time import utc_now
from carepoints.kit.web import JSON
from carepoints.security.deps import require
from carepoints.security.service import Principal
from carepoints.tiers import service
from carepoints.tiers.schemas import AdvisorAssign

router = APIRouter(tags=["tiers"])


@router.get("/patients/{patient_id}/tier")
def get_tier(patient_id: str, _p: Principal = Depends(require("points:read"))) -> JSON:
    """The patient's tier, points earned in the last 12 months, the next tier and the points
    it still needs, the assigned health advisor and the latest tier changes."""
    now = utc_now()
    with read_tx() as session:
        return JSON(service.view(session, patient_id, now, service.settings_at(session, now)))


@router.put("/patients/{patient_id}/advisor")
def put_advisor(patient_id: str, body: AdvisorAssign, principal: Principal = Depends(require("tiers:write"))) -> JSON:
    """Assign a staff user as the patient's health advisor (专属健康顾问; a benefit of the
    tiers that include one), or end the assignment with `staff_user_id: null`."""
    now = utc_now()
    with write_tx() as session:
        advisor = service.assign_advisor(session, patient_id, body.staff_user_id, now,
                                         service.settings_at(session, now),
                                         actor=principal.actor())
    return JSON({"advisor": advisor})
