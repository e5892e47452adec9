"""The ledger part of merging a duplicate patient record into its survivor (enrolment.merge).

Both personal wallets are locked (primary-key order; the caller has already taken them in
the same transaction). Then, through the `transfers` clearing account:

- every lot of the duplicate's wallet with points left moves to the survivor's own wallet,
  lot by lot, as a `merge_out` / `merge_in` pair (Poster.move_lot): the new lot keeps its
  expiry and earning time and names the lot it came from. Moving into the survivor repays
  the survivor's debt first, as any credit does;
- the duplicate's debt moves too: a `merge_debt_out` credit repays it in the duplicate's
  wallet, and a `merge_debt_in` debit charges the survivor like a penalty (their unheld lots
  first-expiring first, the rest becomes debt).

Afterwards the duplicate's wallet is zero (no lots, no debt). Held points cannot move (a
hold names its lots): the caller refuses a duplicate with open holds. Nothing commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from carepoints.kit.db import table
from carepoints.ledger.accounts import System
from carepoints.ledger.models import Lot
from carepoints.ledger.posting import Poster

_lots = table(Lot)
MOVE_KINDS = ("merge_out", "merge_in")
DEBT_KINDS = ("merge_debt_out", "merge_debt_in")


@dataclass(frozen=True, slots=True)
class WalletMerge:
    lots: int  # lots moved
    points: int  # unspent points moved
    debt: int  # the duplicate's debt the survivor took over
    balance: int  # the survivor's own wallet balance afterwards


def merge_wallets(session: Session, duplicate_wallet: str, survivor_wallet: str, now: datetime) -> WalletMerge:
    """Move the duplicate's lots and debt into the survivor's wallet (see the module docstring).
    The duplicate's wallet must hold nothing (`held == 0`): the caller checks it under the lock."""
    poster = Poster(session, now)
    poster.lock([duplicate_wallet, survivor_wallet])
    dup = poster.wallets[duplicate_wallet]
    if dup.held:
        raise ValueError("a wallet with held points cannot be merged")  # the caller refuses it first
    lots = [lot for lot in poster.open_lots(duplicate_wallet) if lot.free > 0]
    earned = dict(session.connection().execute(
        select(_lots.c.id, _lots.c.earned_at).where(_lots.c.id.in_([lot.id for lot in lots]))).all()) if lots else {}
    moved = 0
    for lot in lots:
        amount = lot.free
        poster.move_lot(lot, survivor_wallet, amount, now, earned[lot.id], None, via=System.transfers,
                        kinds=MOVE_KINDS)
        moved += amount
    debt = dup.debt
    if debt:
        poster.credit(duplicate_wallet, debt, kind=DEBT_KINDS[0], counterparty=System.transfers, at=now,
                      expires_at=now)
        poster.debit(survivor_wallet, debt, kind=DEBT_KINDS[1], counterparty=System.transfers, at=now,
                     allow_debt=True)
    poster.flush()
    return WalletMerge(len(lots), moved, debt, poster.wallets[survivor_wallet].balance)
