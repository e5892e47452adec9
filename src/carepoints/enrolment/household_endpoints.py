"""Households (家庭积分) over the API: create one, add members, let them leave, read it."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, model_validator

from carepoints.enrolment import households
from carepoints.events.schemas import PatientRef
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.time import utc_now
from carepoints.kit.web import JSON
from carepoints.security.deps import require
from carepoints.security.service import Principal

router = APIRouter(tags=["households"])


class HouseholdCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    head: PatientRef


class MemberAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")
    patient_id: str | None = Field(default=None, max_length=64)
    patient: PatientRef | None = None
    can_redeem: bool = False

    @model_validator(mode="after")
    def _one(self) -> MemberAdd:
        if (self.patient_id is None) == (self.patient is None):
            raise ValueError("give exactly one of patient_id and patient")
        return self

    def ref(self) -> PatientRef:
        return self.patient or PatientRef(id=self.patient_id)


class MemberUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    can_redeem: bool



@router.post("/households", status_code=201)
def create_household(body: HouseholdCreate, principal: Principal = Depends(require("households:write"))) -> JSON:
    """Create a household headed by a patient, with its pooled wallet; the head's earnings credit it from now on."""
    with write_tx() as session:
        head = households.patient_id(session, body.head)
        return JSON(households.create(session, principal.actor(), body.name, head, utc_now()), status_code=201)


@router.get("/households/{household_id}")
def get_household(household_id: str, _p: Principal = Depends(require("households:read"))) -> JSON:
    """The household, its members with the unspent points attributed to each, and its wallet."""
    with read_tx() as session:
        return JSON(households.read(session, household_id))


@router.post("/households/{household_id}/members", status_code=201)
def add_member(household_id: str, body: MemberAdd, principal: Principal = Depends(require("households:write"))
               ) -> JSON:
    """Add a member (409 `households.already_member` when they are in a household already)."""
    with write_tx() as session:
        pid = households.patient_id(session, body.ref())
        return JSON(households.add_member(session, principal.actor(), household_id, pid, can_redeem=body.can_redeem,
                                          now=utc_now()), status_code=201)


@router.post("/households/{household_id}/members/{patient_id}")
def update_member(household_id: str, patient_id: str, body: MemberUpdate,
                  principal: Principal = Depends(require("households:write"))) -> JSON:
    """Allow or stop a member redeeming from the household wallet."""
    with write_tx() as session:
        return JSON(households.set_can_redeem(session, principal.actor(), household_id, patient_id, body.can_redeem,
                                              utc_now()))


@router.post("/households/{household_id}/members/{patient_id}/head")
def transfer_head(household_id: str, patient_id: str,
                  principal: Principal = Depends(require("households:write"))) -> JSON:
    """Make a member the head of the household; the former head stays a member."""
    with write_tx() as session:
        return JSON(households.transfer_head(session, principal.actor(), household_id, patient_id, utc_now()))


@router.post("/households/{household_id}/members/{patient_id}/leave")
def leave(household_id: str, patient_id: str, principal: Principal = Depends(require("households:write"))) -> JSON:
    """The member leaves and takes the unspent points attributed to them back to their own wallet
    (the head only as the last member: 409 `households.head_must_transfer`)."""
    with write_tx() as session:
        return JSON(households.leave(session, principal.actor(), household_id, patient_id, utc_now()))
