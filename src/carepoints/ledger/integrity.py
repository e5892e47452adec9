"""Tamper evidence: verify every wallet's hash chain and the ledger
invariants, and seal HMAC-signed checkpoints of all chain heads."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from carepoints.kit.db import table
from carepoints.kit.ids import new_id
from carepoints.kit.time import iso_z
from carepoints.ledger.accounts import SYSTEM_BY_ID
from carepoints.ledger.chain import canonical, heads_digest, link, sign, signature_ok
from carepoints.ledger.models import Account, Allocation, Checkpoint, Hold, HoldLot, Lot, Transfer

_acc = table(Account)
_tr = table(Transfer)
_lots = table(Lot)


@dataclass
class Report:
    wallets: int = 0
    entries: int = 0
    checkpoints: int = 0
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify(session: Session, checkpoint_key: str) -> Report:
    """Check chains, balances, lots, holds, Σ balances = 0 and checkpoints; stop at the first break."""
    conn = session.connection()
    report = Report()
    wallets = {r.id: r for r in conn.execute(select(_acc).where(_acc.c.kind == "wallet"))}
    report.wallets = len(wallets)
    state: dict[str, tuple[int, str, int]] = {}  # wallet -> (seq, head, balance)
    system_totals: dict[str, int] = defaultdict(int)
    stmt = select(_tr).order_by(_tr.c.wallet_id, _tr.c.seq).execution_options(yield_per=5000)
    for t in conn.execute(stmt):
        report.entries += 1
        seq, head, bal = state.get(t.wallet_id, (0, "", 0))
        counterparty = t.from_account_id if t.to_account_id == t.wallet_id else t.to_account_id
        signed = t.amount if t.to_account_id == t.wallet_id else -t.amount
        where = f"entry {t.id} (wallet {t.wallet_id}, seq {t.seq})"
        if counterparty not in SYSTEM_BY_ID or t.wallet_id not in (t.from_account_id, t.to_account_id):
            report.problem = f"{where}: accounts are not a wallet and a system account"
            return report
        if t.seq != seq + 1 or t.prev_hash != head:
            report.problem = f"{where}: breaks the chain (expected seq {seq + 1} after {head[:12] or 'genesis'})"
            return report
        body = canonical(id=t.id, wallet=t.wallet_id, counterparty=counterparty, amount=signed, kind=t.kind,
                         rule_version=t.rule_version, event_id=t.event_id, at=t.at, created_at=t.created_at,
                         prev_hash=t.prev_hash)
        digest = link(t.prev_hash, body)
        if digest != t.hash:
            report.problem = f"{where}: hash mismatch (entry altered)"
            return report
        bal += signed
        if bal != t.balance_after:
            report.problem = f"{where}: balance_after {t.balance_after} != running balance {bal}"
            return report
        system_totals[counterparty] -= signed
        state[t.wallet_id] = (t.seq, t.hash, bal)
    lot_sums = {r[0]: (int(r[1] or 0), int(r[2] or 0)) for r in conn.execute(
        select(_lots.c.wallet_id, func.sum(_lots.c.remaining), func.sum(_lots.c.held)).group_by(_lots.c.wallet_id))}
    hl, h = table(HoldLot), table(Hold)
    open_held = {r[0]: int(r[1] or 0) for r in conn.execute(
        select(h.c.wallet_id, func.sum(hl.c.amount)).join(h, h.c.id == hl.c.hold_id)
        .where(h.c.status == "open").group_by(h.c.wallet_id))}
    for wid, w in sorted(wallets.items()):
        seq, head, bal = state.get(wid, (0, "", 0))
        if (w.chain_seq, w.chain_head) != (seq, head):
            report.problem = f"wallet {wid}: head (seq {w.chain_seq}) does not match its last entry (seq {seq})"
            return report
        if w.balance != bal:
            report.problem = f"wallet {wid}: balance {w.balance} != sum of entries {bal}"
            return report
        remaining, held = lot_sums.get(wid, (0, 0))
        if w.balance != remaining - w.debt:
            report.problem = f"wallet {wid}: balance {w.balance} != lots {remaining} - debt {w.debt}"
            return report
        if not (w.held == held == open_held.get(wid, 0)) or held > remaining:
            report.problem = f"wallet {wid}: held {w.held} != lots held {held} / open holds {open_held.get(wid, 0)}"
            return report
    bad_lot = conn.execute(select(_lots.c.id).where(
        (_lots.c.remaining < 0) | (_lots.c.remaining > _lots.c.amount) | (_lots.c.held < 0)
        | (_lots.c.held > _lots.c.remaining)).limit(1)).scalar()
    if bad_lot:
        report.problem = f"lot {bad_lot}: remaining or held out of range"
        return report
    a = table(Allocation)
    used = select(a.c.lot_id, func.sum(a.c.amount).label("used")).group_by(a.c.lot_id).subquery()
    moved = conn.execute(select(_lots.c.id).select_from(_lots.outerjoin(used, used.c.lot_id == _lots.c.id)).where(
        _lots.c.remaining != _lots.c.amount - func.coalesce(used.c.used, 0)).limit(1)).scalar()
    if moved:
        report.problem = f"lot {moved}: remaining does not match its amount minus the recorded allocations"
        return report
    if sum(w.balance for w in wallets.values()) + sum(system_totals.values()) != 0:
        report.problem = "the sum of all account balances is not zero"
        return report
    by_wallet_seq = {(wid, s): hsh for wid, (s, hsh, _b) in state.items()}
    for cp in conn.execute(select(table(Checkpoint)).order_by(Checkpoint.sealed_at)):
        report.checkpoints += 1
        if heads_digest(cp.heads) != cp.digest or not signature_ok(checkpoint_key, cp.digest, cp.signature):
            report.problem = f"checkpoint {cp.id}: signature invalid"
            return report
        for wid, (s, hsh) in cp.heads.items():
            if s == 0:
                continue
            current = by_wallet_seq.get((wid, s))
            if current is None:
                actual = conn.execute(select(_tr.c.hash).where(_tr.c.wallet_id == wid, _tr.c.seq == s)).scalar()
                current = actual
            if current != hsh:
                report.problem = f"checkpoint {cp.id}: wallet {wid} entry seq {s} differs from the sealed head"
                return report
    return report


def seal_checkpoint(session: Session, key: str, now: datetime, export_dir: Path | None) -> dict[str, Any]:
    conn = session.connection()
    heads: dict[str, list[object]] = {
        r[0]: [r[1], r[2]] for r in conn.execute(
            select(_acc.c.id, _acc.c.chain_seq, _acc.c.chain_head)
            .where(_acc.c.kind == "wallet", _acc.c.chain_seq > 0))}
    digest = heads_digest(heads)
    row: dict[str, Any] = {"id": new_id(), "sealed_at": now, "chains": len(heads), "digest": digest, "heads": heads,
           "signature": sign(key, digest)}
    conn.execute(insert(table(Checkpoint)), [row])
    out = {k: v for k, v in row.items() if k != "heads"}
    out["sealed_at"] = iso_z(now)
    if export_dir is not None:
        export_dir.mkdir(parents=True, exist_ok=True)
        path = export_dir / f"checkpoint-{now.strftime('%Y%m%dT%H%M%S')}-{row['id']}.json"
        path.write_text(json.dumps({**out, "heads": heads}, ensure_ascii=False, sort_keys=True, indent=1))
        out["file"] = str(path)
    return out
