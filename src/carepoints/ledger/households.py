"""Household wallets (家庭积分): a pooled wallet per household that its members'
earnings credit, attributed per member, and that members allowed to redeem
spend from. Membership itself lives in `patients.households`.

- Joining points the member's own wallet at the household wallet (`pool_id`),
  under both row locks; from then on the rules engine posts the member's
  earnings, penalties and their reversals there (Poster.lock_patients), each
  entry and each earned lot naming the member. Points the member had before
  stay in their own wallet.
- Spending from the pool (redemptions, holds) consumes the pool's unheld lots
  first-expiring first, whoever earned them: what the household spends is
  shared. A member's penalty takes that member's own lots first.
- Leaving takes the member's attributed unspent share — the unheld remainder
  of every lot attributed to them — back to their own wallet, lot by lot, as a
  pair of transfers through the households clearing account; each new lot
  keeps its expiry and earning time and names the lot it came from (a later
  reversal of the earning follows it there). The last member to leave takes
  every unheld lot. Debt stays with the household wallet."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from carepoints.kit.db import table
from carepoints.kit.ids import is_id, new_id
from carepoints.ledger.errors import WalletNotFoundError
from carepoints.ledger.models import Account, Lot
from carepoints.ledger.posting import Poster
from carepoints.patients import households as membership
from carepoints.patients.errors import AlreadyInHouseholdError, NotHouseholdMemberError, RedeemNotAllowedError

_acc = table(Account)
_lots = table(Lot)


def open_household_wallet(session: Session, household_id: str, now: datetime) -> str:
    wid = new_id()
    session.connection().execute(insert(_acc), [{
        "id": wid, "kind": "wallet", "code": None, "patient_id": None, "household_id": household_id,
        "pool_id": None, "balance": 0, "debt": 0, "held": 0, "chain_seq": 0, "chain_head": "", "created_at": now}])
    return wid


def _wallet_by(session: Session, owner: str, owner_id: str) -> str:
    """The wallet of a household or a patient (`owner`: the accounts column naming it)."""
    wid = session.connection().execute(select(_acc.c.id).where(_acc.c[owner] == owner_id)).scalar() \
        if is_id(owner_id) else None
    if wid is None:
        raise WalletNotFoundError()
    return str(wid)


def household_wallet(session: Session, household_id: str) -> str:
    return _wallet_by(session, "household_id", household_id)


def _own_wallet(session: Session, patient_id: str) -> str:
    return _wallet_by(session, "patient_id", patient_id)


def join_pool(session: Session, patient_id: str, household_id: str, now: datetime) -> str:
    """Point the patient's postings at the household wallet (both wallets locked,
    the patient's first); returns the household wallet id."""
    own, pool = _own_wallet(session, patient_id), household_wallet(session, household_id)
    poster = Poster(session, now)
    poster.lock([own, pool])
    if poster.wallets[own].pool is not None:
        raise AlreadyInHouseholdError()
    session.connection().execute(update(_acc).where(_acc.c.id == own).values(pool_id=pool))
    return pool


def leave_pool(session: Session, patient_id: str, now: datetime) -> dict[str, Any]:
    """Take the member's attributed unspent share back to their own wallet and stop
    pooling their postings (see the module docstring). Returns the household wallet,
    the points moved and the new lots."""
    own = _own_wallet(session, patient_id)
    conn = session.connection()
    poster = Poster(session, now)
    poster.lock([own])
    pool = poster.wallets[own].pool
    if pool is None:
        raise NotHouseholdMemberError()
    poster.lock([pool])  # after the member's own wallet: the order every use case takes them in
    last = not conn.execute(select(_acc.c.id).where(_acc.c.pool_id == pool, _acc.c.id != own).limit(1)).first()
    lots = [lot for lot in poster.open_lots(pool) if lot.free > 0 and (last or lot.member == patient_id)]
    earned = dict(conn.execute(select(_lots.c.id, _lots.c.earned_at).where(_lots.c.id.in_([x.id for x in lots]))
                               ).all()) if lots else {}
    moved = [poster.move_lot(lot, own, lot.free, now, earned[lot.id], member=patient_id) for lot in lots]
    poster.flush()
    conn.execute(update(_acc).where(_acc.c.id == own).values(pool_id=None))
    return {"household_wallet_id": pool, "points": sum(p.points for p in moved), "lots": [p.id for p in moved],
            "balance": poster.wallets[own].balance}


def spending_wallet(session: Session, patient_id: str, *, household: bool, now: datetime) -> str:
    """The wallet a patient's redemption spends from, locked: their own, or with `household`
    the household wallet, which needs an active membership (409 otherwise) allowed to redeem
    (403). The member's own wallet is locked first, so that a concurrent leave (which takes
    the same lock) cannot slip between the membership check and the spend."""
    own = _own_wallet(session, patient_id)
    poster = Poster(session, now)
    poster.lock([own])
    if not household:
        return own
    member = membership.membership(session, patient_id) if is_id(patient_id) else None
    if member is None:
        raise NotHouseholdMemberError()
    if not member["can_redeem"]:
        raise RedeemNotAllowedError()
    pool = household_wallet(session, member["household_id"])
    poster.lock([pool])
    return pool


def household_summary(session: Session, household_id: str) -> dict[str, Any]:
    """Balance, available, held and debt of the household wallet, and the unspent points
    attributed to each member (patient id → points; lots of departed members included)."""
    conn = session.connection()
    row = conn.execute(select(_acc.c.id, _acc.c.balance, _acc.c.debt, _acc.c.held)
                       .where(_acc.c.household_id == household_id)).first() if is_id(household_id) else None
    if row is None:
        raise WalletNotFoundError()
    wid, balance, debt, held = row
    attributed = {pid: int(total) for pid, total in conn.execute(
        select(_lots.c.member_id, func.sum(_lots.c.remaining))
        .where(_lots.c.wallet_id == wid, _lots.c.remaining > 0, _lots.c.member_id.is_not(None))
        .group_by(_lots.c.member_id))}
    return {"wallet_id": wid, "balance": balance, "available": max(0, balance - held), "held": held, "debt": debt,
            "attributed": attributed}
