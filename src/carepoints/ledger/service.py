"""Ledger use cases: wallets, balances and entries, spends, holds, refunds,
reversals and expiry. Every change goes through a `Poster` holding the
wallet's row lock; nothing here commits."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from carepoints.kit.bulk import fetch, marks, ts_param
from carepoints.kit.db import table
from carepoints.kit.ids import is_id, new_id
from carepoints.ledger.accounts import SYSTEM_IDS, System
from carepoints.ledger.errors import (
    HoldClosedError,
    HoldNotFoundError,
    IdempotencyConflictError,
    InvalidAmountError,
    NotRefundableError,
    TransferNotFoundError,
    WalletNotFoundError,
)
from carepoints.ledger.households import household_summary as household_summary
from carepoints.ledger.households import household_wallet as household_wallet
from carepoints.ledger.households import join_pool as join_pool
from carepoints.ledger.households import leave_pool as leave_pool
from carepoints.ledger.households import open_household_wallet as open_household_wallet
from carepoints.ledger.households import spending_wallet as spending_wallet
from carepoints.ledger.models import Account, Allocation, Hold, HoldLot, Lot, Transfer
from carepoints.ledger.posting import Posted, Poster, WalletState
from carepoints.patients.models import Patient

_acc = table(Account)
_tr = table(Transfer)
_lots = table(Lot)
_alloc = table(Allocation)
_holds = table(Hold)
_patients = table(Patient)
_hold_lots = table(HoldLot)
SPEND_KINDS = ("redeem",)


def ensure_system_accounts(session: Session, now: datetime) -> None:
    conn = session.connection()
    have = {r[0] for r in conn.execute(select(_acc.c.id).where(_acc.c.kind == "system"))}
    missing = [{"id": aid, "kind": "system", "code": code, "balance": 0, "debt": 0, "held": 0, "chain_seq": 0,
                "chain_head": "", "created_at": now} for code, aid in SYSTEM_IDS.items() if aid not in have]
    if missing:
        conn.execute(insert(_acc), missing)


def open_wallet(session: Session, patient_id: str, now: datetime) -> str:
    wid = new_id()
    session.connection().execute(insert(_acc), [{
        "id": wid, "kind": "wallet", "code": None, "patient_id": patient_id, "balance": 0, "debt": 0, "held": 0,
        "chain_seq": 0, "chain_head": "", "created_at": now}])
    return wid


def wallet_ids(session: Session, patient_ids: Iterable[str]) -> dict[str, str]:
    ids = list(patient_ids)
    rows = session.connection().execute(select(_acc.c.patient_id, _acc.c.id).where(_acc.c.patient_id.in_(ids)))
    found = {r[0]: r[1] for r in rows}
    if len(found) != len(set(ids)):
        raise WalletNotFoundError()
    return found


def wallet_of(session: Session, patient_id: str) -> str:
    if not is_id(patient_id):
        raise WalletNotFoundError()
    return wallet_ids(session, [patient_id])[patient_id]


# --- reads ------------------------------------------------------------------------

def summary(session: Session, patient_id: str, now: datetime, notice_days: int) -> dict[str, Any]:
    """Balance, available, held, debt and the lots expiring within `notice_days`."""
    conn = session.connection()
    row = conn.execute(select(_acc.c.id, _acc.c.balance, _acc.c.debt, _acc.c.held)
                       .where(_acc.c.patient_id == patient_id)).first()
    if row is None:
        raise WalletNotFoundError()
    wid, balance, debt, held = row
    soon = conn.execute(
        select(_lots.c.expires_at, func.sum(_lots.c.remaining - _lots.c.held))
        .where(_lots.c.wallet_id == wid, _lots.c.remaining > 0, _lots.c.expires_at <= now + timedelta(days=notice_days))
        .group_by(_lots.c.expires_at).order_by(_lots.c.expires_at)).all()
    return {"wallet_id": wid, "balance": balance, "available": max(0, balance - held), "held": held, "debt": debt,
            "expiring": [{"points": int(p), "expires_at": at} for at, p in soon if p and p > 0]}


def lock_wallet(session: Session, wallet_id: str, now: datetime) -> WalletState:
    """Lock a wallet for the rest of the transaction and read it under the lock."""
    poster = Poster(session, now)
    poster.lock([wallet_id])
    return poster.wallets[wallet_id]


def holds(session: Session, hold_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Holds by id: status, amount, expiry and the commit's transfer."""
    ids = [h for h in hold_ids if h]
    if not ids:
        return {}
    rows = session.connection().execute(select(_holds).where(_holds.c.id.in_(ids))).mappings()
    return {r["id"]: dict(r) for r in rows}


def outstanding_points(session: Session) -> int:
    """Points in wallets not yet spent, expired or owed: the programme's liability."""
    total = session.connection().execute(select(func.coalesce(func.sum(_acc.c.balance), 0)).where(
        _acc.c.kind == "wallet", _acc.c.balance > 0)).scalar()
    return int(total or 0)


def spend_origins(session: Session, transfer_ids: Iterable[str]) -> dict[str, list[tuple[int, str | None]]]:
    """For each spend, the points it took from each lot and the event that earned that lot."""
    ids = list(transfer_ids)
    if not ids:
        return {}
    earn = _tr.alias("earn")
    rows = session.connection().execute(
        select(_alloc.c.transfer_id, _alloc.c.amount, earn.c.event_id)
        .select_from(_alloc.join(earn, earn.c.id == _alloc.c.lot_id))
        .where(_alloc.c.transfer_id.in_(ids), _alloc.c.amount > 0))
    out: dict[str, list[tuple[int, str | None]]] = {}
    for tid, amount, event_id in rows:
        out.setdefault(tid, []).append((int(amount), event_id))
    return out


def entries(session: Session, patient_id: str, *, limit: int, before: str | None) -> dict[str, Any]:
    """Newest first, keyed by chain position; `next` is an opaque cursor."""
    conn = session.connection()
    wid = wallet_of(session, patient_id)
    stmt = (select(_tr.c.id, _tr.c.seq, _tr.c.at, _tr.c.created_at, _tr.c.amount, _tr.c.to_account_id, _tr.c.kind,
                   _tr.c.rule_code, _tr.c.rule_version, _tr.c.event_id, _tr.c.message, _tr.c.balance_after)
            .where(_tr.c.wallet_id == wid).order_by(_tr.c.seq.desc()).limit(limit + 1))
    if before is not None:
        stmt = stmt.where(_tr.c.seq < int(before))
    rows = conn.execute(stmt).all()
    items = [{"id": r.id, "at": r.at, "created_at": r.created_at,
              "points": r.amount if r.to_account_id == wid else -r.amount, "kind": r.kind, "rule": r.rule_code,
              "rule_version": r.rule_version, "event_id": r.event_id, "message": r.message,
              "balance_after": r.balance_after} for r in rows[:limit]]
    nxt = str(rows[limit - 1].seq) if len(rows) > limit else None
    return {"items": items, "next": nxt}


def earned_by(session: Session, patient_ids: Iterable[str], since: datetime) -> dict[str, int]:
    """Points each patient earned from `since` on (by the earning's `at`), in one grouped
    query: their `earn` transfers less those since reversed (a revoked or re-evaluated
    earning counts for nothing). Penalties, spending, refunds and expiry do not lower it.
    Patients without earnings answer 0. The one place that says which earnings are a
    patient's: those posted to their own wallet, and those posted to a household wallet
    attributed to them as its member."""
    ids = sorted(set(patient_ids))
    if not ids:
        return {}
    conn = session.connection()
    live = "AND NOT EXISTS (SELECT 1 FROM transfers r WHERE r.reverses_id = t.id AND r.kind = 'reversal')"
    sql = ("SELECT pid, SUM(amount) FROM ("  # noqa: S608
           "SELECT a.patient_id AS pid, t.amount AS amount FROM accounts a JOIN transfers t ON t.wallet_id = a.id "
           f"WHERE a.patient_id IN ({marks(conn, len(ids))}) AND t.kind = 'earn' AND t.at >= {marks(conn, 1)} {live} "
           "UNION ALL SELECT t.member_id, t.amount FROM transfers t "
           f"WHERE t.member_id IN ({marks(conn, len(ids))}) AND t.kind = 'earn' AND t.at >= {marks(conn, 1)} {live}"
           ") e GROUP BY pid")
    earned = dict.fromkeys(ids, 0)
    at = ts_param(conn, since)
    for pid, total in fetch(conn, sql, (*ids, at, *ids, at)):
        earned[pid] = int(total or 0)
    return earned


def earned_in(session: Session, patient_id: str, since: datetime) -> int:
    wallet_of(session, patient_id)  # an unknown patient has no wallet: WalletNotFoundError
    return earned_by(session, [patient_id], since)[patient_id]


# --- reversals --------------------------------------------------------------------

def reverse_transfers(poster: Poster, event_id: str, transfer_ids: list[str], now: datetime, *,
                      expires_at: datetime) -> list[tuple[str, int]]:
    """Reverse the earnings and penalties an event posted (each at most once), in the
    wallet they were posted to; the part of a pooled earning a leaving member took with
    them is reversed in the wallet it went to (ledger.households)."""
    conn = poster.conn
    if not transfer_ids:
        return []
    posted = conn.execute(select(_tr.c.id, _tr.c.wallet_id, _tr.c.amount, _tr.c.kind, _tr.c.rule_code,
                                 _tr.c.rule_version, _tr.c.member_id)
                          .where(_tr.c.id.in_(transfer_ids), _tr.c.kind.in_(("earn", "penalty")))
                          .order_by(_tr.c.seq)).all()
    done = {r[0] for r in conn.execute(select(_tr.c.reverses_id).where(
        _tr.c.reverses_id.in_([p.id for p in posted])))} if posted else set()
    out: list[tuple[str, int]] = []
    for p in posted:
        if p.id in done:
            continue
        meta = {"rule": p.rule_code, "version": p.rule_version, "event_id": event_id, "reverses": p.id,
                "message": "撤销" + (p.rule_code or ""), "member": p.member_id}
        if p.kind == "earn":
            # What expiry already took from this lot is gone; reversing it again would charge twice.
            # What a leaving household member or a record merge took follows the lot (moved_from).
            parts = _lot_parts(poster, p.wallet_id, p.id, p.amount)
            for wallet_id, lot_id, part in parts:
                if part > 0:
                    # what a merged record still owes for it (spent before the merge) its survivor owes
                    successor = successor_wallet(poster, wallet_id)
                    poster.debit(successor or wallet_id, part, kind="reversal", counterparty=System.issuance,
                                 at=now, allow_debt=True, first_lot=None if successor else lot_id, **meta)
            total = sum(part for _w, _l, part in parts if part > 0)
            if total > 0:
                out.append((p.rule_code or "", -total))
        else:
            successor = successor_wallet(poster, p.wallet_id)
            # a merged record's penalty comes back to the record it lives on as, as a new lot
            consumed = consumed_lots(poster, p.id) if successor is None else []
            poster.restore(successor or p.wallet_id, p.amount, consumed, kind="reversal",
                           counterparty=System.penalties, at=now, expires_at=expires_at, **meta)
            out.append((p.rule_code or "", p.amount))
    return out


def _lot_parts(poster: Poster, wallet_id: str, lot_id: str, amount: int) -> list[tuple[str, str, int]]:
    """Where an earned lot's unexpired points are now: (wallet, lot, points) for the lot itself
    and, depth first, every lot moved out of it (household leavers, record merges)."""
    parts = [(wallet_id, lot_id, amount - expired_from(poster, lot_id))]
    for moved_id, moved_wallet, moved in moved_lots(poster, lot_id):
        parts[0] = (wallet_id, lot_id, parts[0][2] - moved)
        parts.extend(_lot_parts(poster, moved_wallet, moved_id, moved))
    return parts


def successor_wallet(poster: Poster, wallet_id: str) -> str | None:
    """For the own wallet of a record merged into another (enrolment.merge), the wallet the
    survivor posts to now (locked; the end of a chain of merges); else None."""
    conn = poster.conn
    pid = conn.execute(select(_acc.c.patient_id).where(_acc.c.id == wallet_id)).scalar()
    survivor = None
    for _hop in range(16):
        nxt = conn.execute(select(_patients.c.merged_into).where(_patients.c.id == pid)).scalar() if pid else None
        if nxt is None:
            break
        survivor = pid = nxt
    if survivor is None:
        return None
    return poster.lock_patients({survivor})[survivor]


def expired_from(poster: Poster, lot_id: str) -> int:
    rows = poster.conn.execute(select(func.coalesce(func.sum(_alloc.c.amount), 0)).select_from(
        _alloc.join(_tr, _tr.c.id == _alloc.c.transfer_id)).where(_alloc.c.lot_id == lot_id, _tr.c.kind == "expiry"))
    return int(rows.scalar() or 0)


def moved_lots(poster: Poster, lot_id: str) -> list[tuple[str, str, int]]:
    """The lots leaving members took from this household lot: (lot, wallet, points)."""
    rows = poster.conn.execute(select(_lots.c.id, _lots.c.wallet_id, _lots.c.amount)
                               .where(_lots.c.moved_from == lot_id).order_by(_lots.c.id))
    return [(r[0], r[1], r[2]) for r in rows]


def consumed_lots(poster: Poster, transfer_id: str) -> list[tuple[str, int]]:
    rows = poster.conn.execute(select(_alloc.c.lot_id, _alloc.c.amount).where(
        _alloc.c.transfer_id == transfer_id, _alloc.c.amount > 0).order_by(_alloc.c.id))
    return [(r[0], r[1]) for r in rows]


# --- spending and holds -------------------------------------------------------------

def spend(session: Session, wallet_id: str, points: int, now: datetime, *, kind: str = "redeem",
          message: str | None = None, reference: str | None = None, member: str | None = None) -> Posted:
    """Spend available points (FIFO over unheld lots); refuses to overdraw. From a household
    wallet `member` names the member who redeemed (recorded on the entry only)."""
    if points <= 0:
        raise InvalidAmountError()
    poster = Poster(session, now)
    poster.lock([wallet_id])
    posted = poster.debit(wallet_id, points, kind=kind, counterparty=System.redemptions, at=now, allow_debt=False,
                          message=message, event_id=reference, member=member)
    poster.flush()
    return posted


def refund(session: Session, transfer_id: str, now: datetime, *, expires_at: datetime) -> Posted:
    """Return a spend: the unexpired part of each consumed lot is restored.
    Refunding the same spend again answers the first refund."""
    conn = session.connection()
    row = conn.execute(select(_tr.c.wallet_id, _tr.c.amount, _tr.c.kind, _tr.c.to_account_id)
                       .where(_tr.c.id == transfer_id)).first() if is_id(transfer_id) else None
    if row is None:
        raise TransferNotFoundError()
    if row.kind not in SPEND_KINDS or row.to_account_id != SYSTEM_IDS[System.redemptions]:
        raise NotRefundableError()
    poster = Poster(session, now)
    # a merged record's spend is refunded to the record it lives on as (a new lot there)
    successor = successor_wallet(poster, row.wallet_id)
    if successor is None:
        poster.lock([row.wallet_id])
    done = conn.execute(select(_tr.c.id, _tr.c.amount, _tr.c.balance_after).where(
        _tr.c.reverses_id == transfer_id, _tr.c.kind == "refund")).first()
    if done is not None:
        return Posted(done.id, done.amount, done.balance_after)
    consumed = consumed_lots(poster, transfer_id) if successor is None else []
    posted = poster.restore(successor or row.wallet_id, row.amount, consumed, kind="refund",
                            counterparty=System.redemptions, at=now, expires_at=expires_at, reverses=transfer_id)
    poster.flush()
    return posted


def hold(session: Session, wallet_id: str, points: int, now: datetime, *, ttl: timedelta,
         idempotency_key: str | None = None, reference: str | None = None) -> dict[str, Any]:
    """Two-phase spend, phase one: allocate specific lots to a hold."""
    if points <= 0:
        raise InvalidAmountError()
    conn = session.connection()
    poster = Poster(session, now)
    poster.lock([wallet_id])  # before the key lookup: a concurrent replay waits, then finds the hold
    if idempotency_key:
        existing = conn.execute(select(_holds).where(_holds.c.idempotency_key == idempotency_key)).mappings().first()
        if existing is not None:
            if (existing["wallet_id"], existing["amount"], existing["reference"]) != (wallet_id, points, reference):
                raise IdempotencyConflictError()
            return dict(existing)
    taken = poster.hold(wallet_id, points)
    hid = new_id()
    row = {"id": hid, "wallet_id": wallet_id, "amount": points, "status": "open", "reference": reference,
           "idempotency_key": idempotency_key, "expires_at": now + ttl, "created_at": now, "settled_at": None,
           "transfer_id": None}
    conn.execute(insert(_holds), [row])
    conn.execute(insert(_hold_lots), [{"hold_id": hid, "lot_id": lot.id, "amount": a}
                                      for lot, a in taken])
    poster.flush()
    return row


def _open_hold(session: Session, poster: Poster, hold_id: str) -> tuple[dict[str, Any], list[tuple[str, int]]]:
    conn = session.connection()
    row = conn.execute(select(_holds).where(_holds.c.id == hold_id)).mappings().first() if is_id(hold_id) else None
    if row is None:
        raise HoldNotFoundError()
    poster.lock([row["wallet_id"]])
    row = conn.execute(select(_holds).where(_holds.c.id == hold_id)).mappings().one()
    lots = [(r[0], r[1]) for r in conn.execute(select(_hold_lots.c.lot_id, _hold_lots.c.amount)
                                               .where(_hold_lots.c.hold_id == hold_id).order_by(_hold_lots.c.lot_id))]
    return dict(row), lots


def commit_hold(session: Session, hold_id: str, now: datetime, *, message: str | None = None) -> dict[str, Any]:
    poster = Poster(session, now)
    row, lots = _open_hold(session, poster, hold_id)
    if row["status"] == "committed":
        return row
    if row["status"] != "open" or row["expires_at"] <= now:
        raise HoldClosedError(status=row["status"] if row["status"] != "open" else "expired")
    posted = poster.settle_hold(row["wallet_id"], hold_id, lots, now, message=message)
    poster.flush()
    session.connection().execute(update(_holds).where(_holds.c.id == hold_id, _holds.c.status == "open")
                                 .values(status="committed", settled_at=now, transfer_id=posted.id))
    return {**row, "status": "committed", "settled_at": now, "transfer_id": posted.id}


def void_hold(session: Session, hold_id: str, now: datetime, *, status: str = "voided") -> dict[str, Any]:
    poster = Poster(session, now)
    row, lots = _open_hold(session, poster, hold_id)
    if row["status"] in ("voided", "expired"):
        return row
    if row["status"] != "open":
        raise HoldClosedError(status=row["status"])
    poster.release(row["wallet_id"], lots)
    poster.flush()
    session.connection().execute(update(_holds).where(_holds.c.id == hold_id, _holds.c.status == "open")
                                 .values(status=status, settled_at=now))
    return {**row, "status": status, "settled_at": now}


def expire_holds(session: Session, now: datetime, limit: int = 500) -> int:
    """Expire up to `limit` holds past their time. Their wallets are locked together first,
    in the order every multi-wallet use case locks them, so the job cannot deadlock ingest."""
    rows = session.connection().execute(
        select(_holds.c.id, _holds.c.wallet_id).where(_holds.c.status == "open", _holds.c.expires_at <= now)
        .order_by(_holds.c.expires_at).limit(limit)).all()
    ids = [r[0] for r in rows]
    if rows:
        Poster(session, now).lock({r[1] for r in rows})
    expired = 0
    for hid in ids:
        try:
            void_hold(session, hid, now, status="expired")
            expired += 1
        except HoldClosedError:
            continue  # committed by the cashier after we listed it: nothing to expire
    return expired


def expire_points(session: Session, now: datetime, limit: int = 500) -> tuple[int, int]:
    """Post the expiry of lots past `expires_at` (unheld part) for up to `limit` wallets.
    Returns (wallets, points)."""
    conn = session.connection()
    wallets = [r[0] for r in conn.execute(
        select(_lots.c.wallet_id).where(_lots.c.remaining > _lots.c.held, _lots.c.expires_at <= now)
        .group_by(_lots.c.wallet_id).order_by(_lots.c.wallet_id).limit(limit))]
    if not wallets:
        return 0, 0
    poster = Poster(session, now)
    poster.lock(wallets)
    total = 0
    for wid in wallets:
        due = [lot for lot in poster.open_lots(wid) if lot.expires_at <= now and lot.free > 0]
        posted = poster.expire(wid, due)
        if posted is not None:
            total -= posted.points
    poster.flush()
    return len(wallets), total
