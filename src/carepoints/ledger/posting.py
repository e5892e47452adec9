"""Posting to wallets in bulk under row locks.

A `Poster` locks the wallets it will touch (in primary-key order; on SQLite
the transaction already holds the write lock from BEGIN IMMEDIATE), keeps
their state in memory while a use case posts any number of transfers, and
writes everything with a handful of multi-row statements at `flush()`.
Each wallet write is a compare-and-set on the chain position and held total
read under the lock, and (wallet, seq) is unique: a lost update is refused
by the database, never silently applied.

Households: while a patient is a member, their own wallet row points at the
household wallet (`pool_id`) and `lock_patients` answers that wallet as the
one to post to; what is posted there for a member carries the member's id
(`member`). Wallets are always locked personal wallets first, in primary-key
order, then household wallets, in primary-key order: holding a member's own
wallet pins its `pool_id` (joining and leaving change it under that lock)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Table, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from carepoints.kit.bulk import fetch, insert_rows, marks, update_rows
from carepoints.kit.db import is_postgres, table
from carepoints.kit.ids import new_id
from carepoints.ledger.accounts import SYSTEM_IDS, System
from carepoints.ledger.chain import canonical, link
from carepoints.ledger.errors import ConcurrentUpdateError, InsufficientPointsError, WalletNotFoundError
from carepoints.ledger.models import Account, Allocation, Lot, Transfer

_acc = table(Account)
_lots = table(Lot)
_transfers = table(Transfer)
_allocs = table(Allocation)
_WALLET_SET = ("balance", "debt", "held", "chain_seq", "chain_head")
_WALLET_WHERE = ("id", "chain_seq", "held")  # compare-and-set on what was read under the lock


@dataclass(slots=True)
class WalletState:
    id: str
    balance: int
    debt: int
    held: int
    seq: int
    head: str
    seq0: int
    held0: int
    household: bool = False
    pool: str | None = None  # a member's own wallet: the household wallet their postings go to

    @property
    def available(self) -> int:
        return max(0, self.balance - self.held)


@dataclass(slots=True)
class LotState:
    id: str
    wallet_id: str
    amount: int
    remaining: int
    held: int
    expires_at: datetime
    new: bool = False
    member: str | None = None  # in a household wallet: the member it is attributed to

    @property
    def free(self) -> int:
        return self.remaining - self.held


@dataclass(slots=True)
class Posted:
    id: str
    points: int
    balance_after: int


class Poster:
    def __init__(self, session: Session, now: datetime) -> None:
        self.session = session
        self.conn = session.connection()
        self.now = now
        self.wallets: dict[str, WalletState] = {}
        self.transfers: list[dict[str, object]] = []
        self.allocations: list[dict[str, object]] = []
        self._lots: dict[str, list[LotState]] = {}  # open lots per wallet, FIFO order
        self._lot_by_id: dict[str, LotState] = {}
        self._dirty_lots: set[str] = set()
        self._dirty_wallets: set[str] = set()
        self._pending_lots: list[dict[str, object]] = []

    # --- locking and loading ------------------------------------------------------

    def lock_patients(self, patient_ids: set[str], skip_locked: bool = False) -> dict[str, str]:
        """Lock and load the wallets these patients' postings go to; patient id → wallet id:
        their own, or while they are a household member the household wallet (locked after
        all the personal ones). With `skip_locked` (PostgreSQL) wallets another transaction
        holds are left out, not waited for, and so are the patients whose postings go there."""
        conn = self.conn
        pids = sorted(patient_ids)
        sql = ("SELECT id, balance, debt, held, chain_seq, chain_head, patient_id, pool_id FROM accounts "  # noqa: S608
               f"WHERE patient_id IN ({marks(conn, len(pids))}) ORDER BY id")
        if conn.dialect.name == "postgresql":
            sql += " FOR UPDATE SKIP LOCKED" if skip_locked else " FOR UPDATE"
        out: dict[str, str] = {}
        pooled: dict[str, str] = {}
        for wid, bal, debt, held, seq, head, pid, pool in fetch(conn, sql, pids):
            if wid not in self.wallets:
                self.wallets[wid] = WalletState(wid, bal, debt, held, seq, head, seq, held, False, pool)
            if pool is None:
                out[pid] = wid
            else:
                pooled[pid] = pool
        if pooled:
            self.lock(set(pooled.values()), skip_locked=skip_locked)
            out.update((pid, pool) for pid, pool in pooled.items() if pool in self.wallets)
        if len(out) != len(pids) and not skip_locked:
            raise WalletNotFoundError()
        return out

    def lock(self, wallet_ids: set[str] | list[str], skip_locked: bool = False) -> None:
        """Lock and load wallets, personal ones first, each kind in primary-key order
        (PostgreSQL: FOR UPDATE; with `skip_locked` those another transaction holds are left out)."""
        wanted = sorted(set(wallet_ids) - self.wallets.keys())
        if not wanted:
            return
        stmt = (select(_acc.c.id, _acc.c.balance, _acc.c.debt, _acc.c.held, _acc.c.chain_seq, _acc.c.chain_head,
                       _acc.c.household_id, _acc.c.pool_id)
                .where(_acc.c.id.in_(wanted), _acc.c.kind == "wallet")
                .order_by(_acc.c.household_id.is_not(None), _acc.c.id))
        if is_postgres(self.session):
            stmt = stmt.with_for_update(skip_locked=skip_locked)
        for r in self.conn.execute(stmt):
            self.wallets[r[0]] = WalletState(r[0], r[1], r[2], r[3], r[4], r[5], r[4], r[3], r[6] is not None, r[7])
        missing = [w for w in wanted if w not in self.wallets]
        if missing and not skip_locked:
            raise WalletNotFoundError()

    def wallet(self, wallet_id: str) -> WalletState:
        w = self.wallets.get(wallet_id)
        if w is None:
            self.lock([wallet_id])
            w = self.wallets[wallet_id]
        return w

    def open_lots(self, wallet_id: str) -> list[LotState]:
        lots = self._lots.get(wallet_id)
        if lots is None:
            rows = self.conn.execute(
                select(_lots.c.id, _lots.c.amount, _lots.c.remaining, _lots.c.held, _lots.c.expires_at,
                       _lots.c.member_id)
                .where(_lots.c.wallet_id == wallet_id, _lots.c.remaining > 0)
                .order_by(_lots.c.expires_at, _lots.c.id))
            lots = []
            for r in rows:
                lot = self._lot_by_id.get(r[0]) or LotState(r[0], wallet_id, r[1], r[2], r[3], r[4], member=r[5])
                self._lot_by_id[lot.id] = lot
                lots.append(lot)
            # lots created or refilled in this use case are not in the database yet
            seen = {lot.id for lot in lots}
            lots.extend(lot for lot in self._lot_by_id.values()
                        if lot.wallet_id == wallet_id and lot.remaining > 0 and lot.id not in seen)
            lots.sort(key=lambda x: (x.expires_at, x.id))
            self._lots[wallet_id] = lots
        return lots

    def lot(self, lot_id: str) -> LotState:
        lot = self._lot_by_id.get(lot_id)
        if lot is None:
            r = self.conn.execute(
                select(_lots.c.id, _lots.c.wallet_id, _lots.c.amount, _lots.c.remaining, _lots.c.held,
                       _lots.c.expires_at, _lots.c.member_id).where(_lots.c.id == lot_id)).one()
            lot = LotState(r[0], r[1], r[2], r[3], r[4], r[5], member=r[6])
            self._lot_by_id[lot_id] = lot
        return lot

    # --- posting -----------------------------------------------------------------

    def _append(self, w: WalletState, counterparty: System, delta: int, kind: str, at: datetime, *,
                rule: str | None = None, version: int | None = None, event_id: str | None = None,
                message: str | None = None, reverses: str | None = None, hold_id: str | None = None,
                member: str | None = None) -> Posted:
        tid = new_id()
        w.balance += delta
        w.seq += 1
        cp = SYSTEM_IDS[counterparty]
        body = canonical(id=tid, wallet=w.id, counterparty=cp, amount=delta, kind=kind, rule_version=version,
                         event_id=event_id, at=at, created_at=self.now, prev_hash=w.head)
        digest = link(w.head, body)
        row: dict[str, object] = {
            "id": tid, "wallet_id": w.id, "seq": w.seq,
            "from_account_id": cp if delta > 0 else w.id, "to_account_id": w.id if delta > 0 else cp,
            "amount": abs(delta), "kind": kind, "rule_code": rule, "rule_version": version, "event_id": event_id,
            "reverses_id": reverses, "hold_id": hold_id, "message": message, "balance_after": w.balance,
            "at": at, "created_at": self.now, "prev_hash": w.head, "hash": digest,
        }
        if w.household:  # personal wallets' rows leave the household columns out (NULL): no extra cost
            row["member_id"] = member
        self.transfers.append(row)
        w.head = digest
        self._dirty_wallets.add(w.id)
        return Posted(tid, delta, w.balance)

    def _alloc(self, transfer_id: str, lot: LotState, amount: int) -> None:
        self.allocations.append({"transfer_id": transfer_id, "lot_id": lot.id, "amount": amount})
        self._dirty_lots.add(lot.id)

    def credit(self, wallet_id: str, amount: int, *, kind: str, counterparty: System, at: datetime,
               expires_at: datetime, earned_at: datetime | None = None, moved_from: str | None = None,
               **meta: object) -> Posted:
        """Points into a wallet: debt is repaid first, the rest becomes a lot (earned at `at`
        unless a leaving member's lot keeps its own `earned_at`)."""
        w = self.wallet(wallet_id)
        posted = self._append(w, counterparty, amount, kind, at, **meta)  # type: ignore[arg-type]
        repaid = min(w.debt, amount)
        w.debt -= repaid
        member = meta.get("member") if w.household else None
        lot = LotState(posted.id, w.id, amount, amount - repaid, 0, expires_at, new=True, member=member)  # type: ignore[arg-type]
        self._lot_by_id[lot.id] = lot
        self._new_lot(lot, earned_at or at, moved_from)
        if repaid:
            self.allocations.append({"transfer_id": posted.id, "lot_id": lot.id, "amount": repaid})
        return posted

    def _new_lot(self, lot: LotState, earned_at: datetime, moved_from: str | None = None) -> None:
        """A lot has the id of the transfer that created it."""
        row: dict[str, object] = {"id": lot.id, "wallet_id": lot.wallet_id,
                                  "amount": lot.amount, "remaining": lot.remaining, "held": 0,
                                  "earned_at": earned_at, "expires_at": lot.expires_at}
        if lot.member is not None or moved_from is not None:
            row.update(member_id=lot.member, moved_from=moved_from)
        self._pending_lots.append(row)
        if lot.remaining > 0:
            lots = self._lots.get(lot.wallet_id)
            if lots is not None:
                lots.append(lot)
                lots.sort(key=lambda x: (x.expires_at, x.id))

    def debit(self, wallet_id: str, amount: int, *, kind: str, counterparty: System, at: datetime,
              allow_debt: bool, first_lot: str | None = None, **meta: object) -> Posted:
        """Points out of a wallet, consuming unheld lots first-expiring first.

        With `allow_debt` (penalties, reversals) what the lots cannot cover
        becomes debt; otherwise the available balance must cover it. In a household
        wallet a member's penalty or reversal (`member`) takes that member's lots first."""
        w = self.wallet(wallet_id)
        if not allow_debt and amount > w.available:
            raise InsufficientPointsError()
        lots = self.open_lots(wallet_id)
        member = meta.get("member")
        if w.household and member is not None and allow_debt:
            lots = [*(lot for lot in lots if lot.member == member), *(lot for lot in lots if lot.member != member)]
        if first_lot is not None:  # a reversal takes from its own lot first, then first-expiring others
            own = self.lot(first_lot)
            lots = [own, *[lot for lot in lots if lot.id != first_lot]]
        posted = self._append(w, counterparty, -amount, kind, at, **meta)  # type: ignore[arg-type]
        left = amount
        for lot in lots:
            if left == 0:
                break
            take = min(lot.free, left)
            if take <= 0:
                continue
            lot.remaining -= take
            left -= take
            self._alloc(posted.id, lot, take)
        if left:
            w.debt += left
        return posted

    def restore(self, wallet_id: str, amount: int, consumed: list[tuple[str, int]], *, kind: str,
                counterparty: System, at: datetime, expires_at: datetime, **meta: object) -> Posted:
        """Points returning to a wallet (refunds, penalty reversals). The part
        whose lots have expired meanwhile goes straight to the expiry account;
        of the rest, debt is repaid first, then the lots they came from are
        refilled; what no lot recorded (a penalty's debt part) becomes a new lot."""
        w = self.wallet(wallet_id)
        posted = self._append(w, counterparty, amount, kind, at, **meta)  # type: ignore[arg-type]
        left = amount
        expired: list[tuple[LotState, int]] = []
        parts: list[tuple[LotState, int]] = []
        for lot_id, taken in consumed:
            if left == 0:
                break
            part = min(taken, left)
            left -= part
            lot = self.lot(lot_id)
            (expired if lot.expires_at <= self.now else parts).append((lot, part))
        fresh = left
        repay = min(w.debt, fresh + sum(p for _, p in parts))
        w.debt -= repay
        take = min(repay, fresh)
        fresh -= take
        repay -= take
        for lot, part in parts:
            take = min(repay, part)
            repay -= take
            back = min(part - take, lot.amount - lot.remaining)
            fresh += part - take - back
            if back > 0:
                lot.remaining += back
                self._alloc(posted.id, lot, -back)
                self._reopen(lot)
        if fresh:
            member = meta.get("member") if w.household else None
            lot = LotState(posted.id, w.id, fresh, fresh, 0, expires_at, new=True, member=member)  # type: ignore[arg-type]
            self._lot_by_id[lot.id] = lot
            self._new_lot(lot, at)
        if expired:
            # Recorded against the lots as a refill and its expiry, so that the
            # lot's history says where those points went (reversals rely on it).
            gone = self._append(w, System.expiry, -sum(p for _, p in expired), "expiry", self.now)
            for lot, part in expired:
                self._alloc(posted.id, lot, -part)
                self._alloc(gone.id, lot, part)
        return posted

    def move_lot(self, lot: LotState, to_wallet: str, amount: int, at: datetime, earned_at: datetime,
                 member: str | None, *, via: System = System.households,
                 kinds: tuple[str, str] = ("household_out", "household_in")) -> Posted:
        """Part of a lot to another wallet through a clearing account (`via`; a leaving household
        member's share by default): out of the lot's wallet against that lot, and in as a new lot
        that keeps its expiry and earning time and names the lot it came from (so a later reversal
        of the earning follows it). `kinds` names the out and in entries."""
        src = self.wallet(lot.wallet_id)
        out = self._append(src, via, -amount, kinds[0], at, member=member)
        lot.remaining -= amount
        self._alloc(out.id, lot, amount)
        return self.credit(to_wallet, amount, kind=kinds[1], counterparty=via, at=at,
                           expires_at=lot.expires_at, earned_at=earned_at, moved_from=lot.id)

    def _reopen(self, lot: LotState) -> None:
        lots = self._lots.get(lot.wallet_id)
        if lots is not None and lot not in lots:
            lots.append(lot)
            lots.sort(key=lambda x: (x.expires_at, x.id))

    def hold(self, wallet_id: str, amount: int) -> list[tuple[LotState, int]]:
        """Allocate unheld lots to a hold without moving points."""
        w = self.wallet(wallet_id)
        if amount <= 0 or amount > w.available:
            raise InsufficientPointsError()
        taken: list[tuple[LotState, int]] = []
        left = amount
        for lot in self.open_lots(wallet_id):
            if left == 0:
                break
            take = min(lot.free, left)
            if take > 0:
                lot.held += take
                left -= take
                taken.append((lot, take))
                self._dirty_lots.add(lot.id)
        if left:
            raise InsufficientPointsError()
        w.held += amount
        self._dirty_wallets.add(w.id)
        return taken

    def release(self, wallet_id: str, allocations: list[tuple[str, int]]) -> None:
        w = self.wallet(wallet_id)
        for lot_id, amount in allocations:
            lot = self.lot(lot_id)
            lot.held -= amount
            w.held -= amount
            self._dirty_lots.add(lot.id)
        self._dirty_wallets.add(w.id)

    def settle_hold(self, wallet_id: str, hold_id: str, allocations: list[tuple[str, int]], at: datetime,
                    **meta: object) -> Posted:
        """Commit a hold: its lots go to the redemptions account."""
        w = self.wallet(wallet_id)
        total = sum(a for _, a in allocations)
        posted = self._append(w, System.redemptions, -total, "redeem", at, hold_id=hold_id, **meta)  # type: ignore[arg-type]
        for lot_id, amount in allocations:
            lot = self.lot(lot_id)
            lot.held -= amount
            lot.remaining -= amount
            self._alloc(posted.id, lot, amount)
        w.held -= total
        return posted

    def expire(self, wallet_id: str, lots: list[LotState]) -> Posted | None:
        w = self.wallet(wallet_id)
        total = sum(lot.free for lot in lots if lot.free > 0)
        if total <= 0:
            return None
        posted = self._append(w, System.expiry, -total, "expiry", self.now)
        for lot in lots:
            take = lot.free
            if take > 0:
                lot.remaining -= take
                self._alloc(posted.id, lot, take)
        return posted

    # --- writing -----------------------------------------------------------------

    def flush(self) -> None:
        conn = self.conn
        _insert_by_shape(conn, _transfers, self.transfers)
        new_ids = set()
        for row in self._pending_lots:  # lots created here are inserted with their final state
            lot = self._lot_by_id[str(row["id"])]
            row["remaining"], row["held"] = lot.remaining, lot.held
            new_ids.add(lot.id)
        _insert_by_shape(conn, _lots, self._pending_lots)
        update_rows(conn, _lots, [(self._lot_by_id[lid].remaining, self._lot_by_id[lid].held, lid)
                                  for lid in sorted(self._dirty_lots - new_ids)],
                    ("remaining", "held"), ("id",))
        insert_rows(conn, _allocs, self.allocations)
        if self._dirty_wallets:
            rows = [(w.balance, w.debt, w.held, w.seq, w.head, w.id, w.seq0, w.held0)
                    for wid in sorted(self._dirty_wallets) if (w := self.wallets[wid])]
            matched = update_rows(conn, _acc, rows, _WALLET_SET, _WALLET_WHERE)
            if matched not in (-1, len(rows)):
                raise ConcurrentUpdateError()
            for w in self.wallets.values():
                w.seq0, w.held0 = w.seq, w.held
        self.transfers = []
        self.allocations = []
        self._pending_lots = []
        self._dirty_lots.clear()
        self._dirty_wallets.clear()
        for lot in self._lot_by_id.values():
            lot.new = False


def _insert_by_shape(conn: Connection, tbl: Table, rows: list[dict[str, object]]) -> None:
    """Rows with and without the household columns, one multi-row insert per shape."""
    shapes: dict[int, list[dict[str, object]]] = {}
    for row in rows:
        shapes.setdefault(len(row), []).append(row)
    for group in shapes.values():
        insert_rows(conn, tbl, group)
