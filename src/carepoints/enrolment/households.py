"""Household use cases (家庭积分): each changes the membership (patients.households)
and the pooled wallet (ledger.households) in one transaction and leaves an audit
row (ids only). Nothing here commits.

Locks: the membership row is written first (its partial unique index decides a
race to add one patient twice), then the wallets are locked — the member's own
first, then the household's, as every ledger use case takes them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from carepoints.audit import service as audit
from carepoints.audit.service import Actor
from carepoints.events.schemas import PatientRef
from carepoints.ledger import service as ledger
from carepoints.patients import households
from carepoints.patients import service as patients
from carepoints.patients.errors import NotHouseholdMemberError, PatientNotFoundError


def patient_id(session: Session, ref: PatientRef) -> str:
    """The patient a reference names (by id or by an external identifier); 404 when none."""
    found, by_ref = patients.resolve(session, [ref.id] if ref.id else [], [] if ref.id else [(ref.system or "",
                                                                                               ref.value or "")])
    pid = ref.id if ref.id else by_ref.get((ref.system or "", ref.value or ""))
    if pid is None or pid not in found:
        raise PatientNotFoundError()
    return pid


def create(session: Session, actor: Actor, name: str, head_patient_id: str, now: datetime) -> dict[str, Any]:
    """A household headed by `head_patient_id`, with its wallet; the head's postings pool from now on."""
    hid = households.create(session, name, head_patient_id, now)
    ledger.open_household_wallet(session, hid, now)
    ledger.join_pool(session, head_patient_id, hid, now)
    audit.record(session, actor, "households:household:create", now, subject_id=hid, patient_id=head_patient_id)
    return read(session, hid)


def add_member(session: Session, actor: Actor, household_id: str, patient_id: str, *, can_redeem: bool,
               now: datetime) -> dict[str, Any]:
    """Add a member; their earnings credit the household wallet from now on (what they had stays theirs)."""
    households.add_member(session, household_id, patient_id, can_redeem=can_redeem, now=now)
    ledger.join_pool(session, patient_id, household_id, now)
    audit.record(session, actor, "households:member:add", now, subject_id=household_id, patient_id=patient_id,
                 can_redeem=can_redeem)
    return read(session, household_id)


def set_can_redeem(session: Session, actor: Actor, household_id: str, patient_id: str, can_redeem: bool,
                   now: datetime) -> dict[str, Any]:
    households.set_can_redeem(session, household_id, patient_id, can_redeem)
    audit.record(session, actor, "households:member:update", now, subject_id=household_id, patient_id=patient_id,
                 can_redeem=can_redeem)
    return read(session, household_id)


def transfer_head(session: Session, actor: Actor, household_id: str, patient_id: str, now: datetime
                  ) -> dict[str, Any]:
    households.transfer_head(session, household_id, patient_id)
    audit.record(session, actor, "households:head:transfer", now, subject_id=household_id, patient_id=patient_id)
    return read(session, household_id)


def leave(session: Session, actor: Actor, household_id: str, patient_id: str, now: datetime) -> dict[str, Any]:
    """The member leaves, taking their attributed unspent share back to their own wallet
    (ledger.households); the head may leave only as the last member."""
    households.check_leave(session, household_id, patient_id)
    moved = ledger.leave_pool(session, patient_id, now)
    if moved["household_wallet_id"] != ledger.household_wallet(session, household_id):
        raise NotHouseholdMemberError()  # the wallet pools elsewhere: membership and wallet disagree
    households.leave(session, household_id, patient_id, now)
    audit.record(session, actor, "households:member:leave", now, subject_id=household_id, patient_id=patient_id,
                 points=moved["points"], lots=len(moved["lots"]))
    return {"household_id": household_id, "patient_id": patient_id, "points": moved["points"],
            "balance": moved["balance"]}


def read(session: Session, household_id: str) -> dict[str, Any]:
    """The household, its active members with the unspent points attributed to each, and its wallet."""
    doc = households.read(session, household_id)
    wallet = ledger.household_summary(session, household_id)
    attributed = wallet.pop("attributed")
    wallet.pop("wallet_id")
    members = [{**m, "attributed": attributed.get(m["patient_id"], 0)} for m in doc.pop("members")]
    return {**doc, "members": members, "wallet": wallet}


def of_patient(session: Session, patient_id: str) -> dict[str, Any] | None:
    """The patient's household in their points view: id, balance, available and the points
    attributed to them; None when they are in no household."""
    member = households.membership(session, patient_id)
    if member is None:
        return None
    wallet = ledger.household_summary(session, member["household_id"])
    return {"id": member["household_id"], "balance": wallet["balance"], "available": wallet["available"],
            "attributed": wallet["attributed"].get(patient_id, 0)}
