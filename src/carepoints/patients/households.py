"""Household membership (家庭积分): who belongs to which household, who heads it
and who may redeem from its pooled wallet. The wallet itself lives in `ledger`;
use cases that change both sit above it (enrolment.households).

A patient is in at most one household at a time and a household has one head:
both are partial unique indexes over the active memberships."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from carepoints.kit.db import table
from carepoints.kit.ids import is_id, new_id
from carepoints.patients.errors import (
    AlreadyInHouseholdError,
    HeadMustStayError,
    HouseholdNotFoundError,
    NotHouseholdMemberError,
    PatientNotFoundError,
)
from carepoints.patients.models import Household, HouseholdMember, Patient

_households = table(Household)
_members = table(HouseholdMember)


def _active(household_id: str, patient_id: str) -> Any:
    return (_members.c.household_id == household_id, _members.c.patient_id == patient_id,
            _members.c.left_at.is_(None))


def _require_patient(session: Session, patient_id: str) -> None:
    if not is_id(patient_id) or session.connection().execute(
            select(Patient.id).where(Patient.id == patient_id)).first() is None:
        raise PatientNotFoundError()


def _insert_member(session: Session, household_id: str, patient_id: str, role: str, can_redeem: bool,
                   now: datetime) -> dict[str, Any]:
    row = {"id": new_id(), "household_id": household_id, "patient_id": patient_id, "role": role,
           "can_redeem": can_redeem, "joined_at": now, "left_at": None}
    nested = session.begin_nested()
    try:
        session.connection().execute(insert(_members), [row])
        nested.commit()
    except IntegrityError:
        nested.rollback()  # the active-membership index: already in a household (perhaps just now)
        raise AlreadyInHouseholdError() from None
    return row


def create(session: Session, name: str, head_patient_id: str, now: datetime) -> str:
    """A household with its head as first member (who may redeem); flushes, never commits."""
    _require_patient(session, head_patient_id)
    hid = new_id()
    session.connection().execute(insert(_households), [{"id": hid, "name": name, "head_patient_id": head_patient_id,
                                                        "created_at": now}])
    _insert_member(session, hid, head_patient_id, "head", True, now)
    return hid


def require(session: Session, household_id: str) -> dict[str, Any]:
    row = session.connection().execute(select(_households).where(_households.c.id == household_id)).mappings().first() \
        if is_id(household_id) else None
    if row is None:
        raise HouseholdNotFoundError()
    return dict(row)


def add_member(session: Session, household_id: str, patient_id: str, *, can_redeem: bool,
               now: datetime) -> dict[str, Any]:
    require(session, household_id)
    _require_patient(session, patient_id)
    return _insert_member(session, household_id, patient_id, "member", can_redeem, now)


def membership(session: Session, patient_id: str) -> dict[str, Any] | None:
    """The patient's active membership, or None."""
    row = session.connection().execute(select(_members).where(
        _members.c.patient_id == patient_id, _members.c.left_at.is_(None))).mappings().first()
    return dict(row) if row is not None else None


def member_of(session: Session, household_id: str, patient_id: str) -> dict[str, Any]:
    row = session.connection().execute(select(_members).where(*_active(household_id, patient_id))).mappings().first()
    if row is None:
        raise NotHouseholdMemberError()
    return dict(row)


def set_can_redeem(session: Session, household_id: str, patient_id: str, can_redeem: bool) -> dict[str, Any]:
    row = member_of(session, household_id, patient_id)
    session.connection().execute(update(_members).where(_members.c.id == row["id"]).values(can_redeem=can_redeem))
    return {**row, "can_redeem": can_redeem}


def check_leave(session: Session, household_id: str, patient_id: str) -> dict[str, Any]:
    """The membership that may end now: the head leaves only as the last member."""
    row = member_of(session, household_id, patient_id)
    if row["role"] == "head" and active_count(session, household_id) > 1:
        raise HeadMustStayError()
    return row


def leave(session: Session, household_id: str, patient_id: str, now: datetime) -> dict[str, Any]:
    row = check_leave(session, household_id, patient_id)
    done = session.connection().execute(update(_members).where(_members.c.id == row["id"],
                                                               _members.c.left_at.is_(None)).values(left_at=now))
    if done.rowcount != 1:
        raise NotHouseholdMemberError()  # left concurrently
    return {**row, "left_at": now}


def transfer_head(session: Session, household_id: str, patient_id: str) -> dict[str, Any]:
    """Make an active member the head; the former head stays as a member."""
    require(session, household_id)
    new_head = member_of(session, household_id, patient_id)
    if new_head["role"] == "head":
        return new_head
    conn = session.connection()
    conn.execute(update(_members).where(_members.c.household_id == household_id, _members.c.role == "head",
                                        _members.c.left_at.is_(None)).values(role="member"))
    conn.execute(update(_members).where(_members.c.id == new_head["id"]).values(role="head", can_redeem=True))
    conn.execute(update(_households).where(_households.c.id == household_id).values(head_patient_id=patient_id))
    return {**new_head, "role": "head", "can_redeem": True}


def active_count(session: Session, household_id: str) -> int:
    return int(session.connection().execute(select(func.count()).select_from(_members).where(
        _members.c.household_id == household_id, _members.c.left_at.is_(None))).scalar() or 0)


def read(session: Session, household_id: str) -> dict[str, Any]:
    """The household and its active members (ids only)."""
    household = require(session, household_id)
    rows = session.connection().execute(select(_members).where(
        _members.c.household_id == household_id, _members.c.left_at.is_(None))
        .order_by(_members.c.joined_at, _members.c.id)).mappings().all()
    return {**household, "members": [{"patient_id": r["patient_id"], "role": r["role"],
                                      "can_redeem": r["can_redeem"], "joined_at": r["joined_at"]} for r in rows]}
