"""Tamper evidence: verify() over a mixed history, raw-SQL tampering of each
kind of row, and HMAC-signed checkpoints."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update

from carepoints.config import get_settings
from carepoints.events import service as events
from carepoints.kit.db import read_tx, write_tx
from carepoints.ledger import integrity
from carepoints.ledger import service as ledger
from carepoints.ledger.chain import canonical, link
from carepoints.ledger.models import Account, Checkpoint, Lot, Transfer
from tests.conftest import Db
from tests.helpers import bp, enrol, event, ingest, ingest_one

_acc = Account.__table__
_tr = Transfer.__table__
_lots = Lot.__table__
_cp = Checkpoint.__table__


def key() -> str:
    return get_settings().checkpoint_key


def verify(checkpoint_key: str | None = None) -> integrity.Report:
    with read_tx() as session:
        return integrity.verify(session, checkpoint_key or key())


def seal(now: datetime, export_dir: Path | None, checkpoint_key: str | None = None) -> dict[str, Any]:
    with write_tx() as session:
        return integrity.seal_checkpoint(session, checkpoint_key or key(), now, export_dir)


def wallet(pid: str) -> str:
    with read_tx() as session:
        return ledger.wallet_of(session, pid)


def chain(wid: str) -> list[dict[str, Any]]:
    with read_tx() as session:
        return [dict(r) for r in session.connection().execute(
            select(_tr).where(_tr.c.wallet_id == wid).order_by(_tr.c.seq)).mappings()]


def raw(stmt: Any) -> None:
    """Tamper with the database behind the application's back."""
    with write_tx() as session:
        session.connection().execute(stmt)


def referral(pid: str, at: datetime) -> dict[str, Any]:
    return event(pid, "referral.visit", at, {"referral_id": uuid.uuid4().hex, "from_institution": "社区中心"})


def mixed_history(now: datetime) -> tuple[str, str]:
    """Two patients with earnings, a penalty, spends, holds, a refund, a revoke and an expiry."""
    a, b = enrol(now), enrol(now)
    ingest(now, referral(a, now.replace(year=2024) + timedelta(days=3)),  # expires in 3 days
           event(a, "health.measurement", now - timedelta(days=1), bp()),
           event(a, "appointment.no_show", now - timedelta(days=2),
                 {"appointment_id": "A-1", "slot_start": (now - timedelta(days=2)).isoformat()}),
           referral(b, now - timedelta(days=40)))
    revoked = ingest_one(now, referral(b, now - timedelta(days=20)))
    with write_tx() as session:
        wa, wb = ledger.wallet_of(session, a), ledger.wallet_of(session, b)
        spent = ledger.spend(session, wa, 70, now)
        h1 = ledger.hold(session, wb, 120, now, ttl=timedelta(minutes=10))
        h2 = ledger.hold(session, wa, 40, now, ttl=timedelta(minutes=10))
    with write_tx() as session:
        ledger.commit_hold(session, h1["id"], now)
        ledger.void_hold(session, h2["id"], now)
        ledger.refund(session, spent.id, now, expires_at=now + timedelta(days=730))
        events.revoke(session, now=now, reason="HIS correction", event_id=revoked["event_id"])
    with write_tx() as session:
        ledger.spend(session, wb, 30, now)
        ledger.hold(session, wa, 10, now, ttl=timedelta(hours=1))  # stays open
    with write_tx() as session:
        assert ledger.expire_points(session, now + timedelta(days=5))[1] > 0
    return wa, wb


def total_transfers() -> int:
    with read_tx() as session:
        return int(session.connection().execute(select(func.count()).select_from(_tr)).scalar() or 0)


# --- verify ------------------------------------------------------------------------

def test_verify_is_ok_after_a_mixed_history(db: Db, now: datetime) -> None:
    mixed_history(now)
    report = verify()
    assert report.ok, report.problem
    assert report.wallets == 2
    assert report.entries == total_transfers()
    assert report.checkpoints == 0


def test_verify_on_an_empty_ledger(db: Db) -> None:
    report = verify()
    assert report.ok
    assert (report.wallets, report.entries) == (0, 0)


def test_a_changed_transfer_amount_breaks_its_hash(db: Db, now: datetime) -> None:
    wa, _ = mixed_history(now)
    victim = chain(wa)[2]
    raw(update(_tr).where(_tr.c.id == victim["id"]).values(amount=victim["amount"] + 10))
    report = verify()
    assert not report.ok
    assert victim["id"] in (report.problem or "")
    assert "hash mismatch" in (report.problem or "")


@pytest.mark.parametrize("column", ["kind", "event_id", "at", "rule_version", "counterparty"])
def test_any_hashed_field_changed_is_detected(db: Db, now: datetime, column: str) -> None:
    wa, _ = mixed_history(now)
    victim = next(t for t in chain(wa) if t["kind"] == "earn" and t["rule_code"] == "referral")
    values: dict[str, Any] = {
        "kind": {"kind": "refund"},
        "event_id": {"event_id": str(uuid.uuid4())},
        "at": {"at": victim["at"] + timedelta(seconds=1)},
        "rule_version": {"rule_version": 99},
        "counterparty": {"from_account_id": "00000000-0000-7000-8000-000000000005"},
    }[column]
    raw(update(_tr).where(_tr.c.id == victim["id"]).values(**values))
    report = verify()
    assert not report.ok
    assert victim["id"] in (report.problem or "")


def test_a_deleted_middle_transfer_breaks_the_chain(db: Db, now: datetime) -> None:
    wa, _ = mixed_history(now)
    entries = chain(wa)
    assert len(entries) >= 4
    raw(delete(_tr).where(_tr.c.id == entries[1]["id"]))
    report = verify()
    assert not report.ok
    problem = report.problem or ""
    assert wa in problem
    assert entries[2]["id"] in problem  # the first entry whose link breaks
    assert "breaks the chain" in problem


def test_a_deleted_last_transfer_is_caught_by_the_wallet_head(db: Db, now: datetime) -> None:
    wa, _ = mixed_history(now)
    raw(delete(_tr).where(_tr.c.id == chain(wa)[-1]["id"]))
    report = verify()
    assert not report.ok
    assert f"wallet {wa}" in (report.problem or "")


def test_an_edited_wallet_balance_is_detected(db: Db, now: datetime) -> None:
    _, wb = mixed_history(now)
    raw(update(_acc).where(_acc.c.id == wb).values(balance=_acc.c.balance + 50))
    report = verify()
    assert not report.ok
    assert f"wallet {wb}" in (report.problem or "")
    assert "balance" in (report.problem or "")


def test_an_edited_balance_after_is_detected(db: Db, now: datetime) -> None:
    _, wb = mixed_history(now)
    victim = chain(wb)[1]
    raw(update(_tr).where(_tr.c.id == victim["id"]).values(balance_after=victim["balance_after"] + 1))
    report = verify()
    assert not report.ok
    assert victim["id"] in (report.problem or "")


def test_a_changed_lot_remaining_is_detected(db: Db, now: datetime) -> None:
    _, wb = mixed_history(now)
    with read_tx() as session:
        lot = session.connection().execute(select(_lots).where(_lots.c.wallet_id == wb, _lots.c.remaining > 10)
                                           .limit(1)).mappings().one()
    raw(update(_lots).where(_lots.c.id == lot["id"]).values(remaining=lot["remaining"] - 10))
    report = verify()
    assert not report.ok
    assert f"wallet {wb}" in (report.problem or "")
    assert "lots" in (report.problem or "")


def test_a_changed_lot_held_is_detected(db: Db, now: datetime) -> None:
    wa, _ = mixed_history(now)
    with read_tx() as session:
        lot = session.connection().execute(select(_lots).where(_lots.c.wallet_id == wa, _lots.c.remaining > 0,
                                                               _lots.c.held == 0).limit(1)).mappings().one()
    raw(update(_lots).where(_lots.c.id == lot["id"]).values(held=1))
    report = verify()
    assert not report.ok
    assert f"wallet {wa}" in (report.problem or "")
    assert "held" in (report.problem or "")


def test_points_moved_between_lots_are_detected(db: Db, now: datetime) -> None:
    """Moving points from a soon-expiring lot into a later one (dodging expiry) keeps every sum."""
    pid = enrol(now)  # welcome lot: expires 2028-06-15
    ingest(now, referral(pid, now.replace(year=2024) + timedelta(days=3)),  # expires in 3 days
           referral(pid, now - timedelta(days=1)))  # expires 2028-06-14
    wid = wallet(pid)
    with write_tx() as session:
        h = ledger.hold(session, wid, 200, now, ttl=timedelta(minutes=5))  # the expiring lot
    with write_tx() as session:
        ledger.spend(session, wid, 100, now)  # so from the later referral lot
        ledger.void_hold(session, h["id"], now)
    with read_tx() as session:
        soon, late, _welcome = session.connection().execute(
            select(_lots.c.id).where(_lots.c.wallet_id == wid).order_by(_lots.c.expires_at)).scalars().all()
    assert verify().ok
    raw(update(_lots).where(_lots.c.id == soon).values(remaining=_lots.c.remaining - 100))
    raw(update(_lots).where(_lots.c.id == late).values(remaining=_lots.c.remaining + 100))
    report = verify()
    assert not report.ok
    assert soon in (report.problem or "") or late in (report.problem or "")


# --- checkpoints ------------------------------------------------------------------------

def test_seal_checkpoint_writes_a_row_and_an_exported_file(db: Db, now: datetime, tmp_path: Path) -> None:
    wa, wb = mixed_history(now)
    out = seal(now, tmp_path / "export")
    assert out["chains"] == 2
    path = Path(out["file"])
    assert path.parent == tmp_path / "export"
    doc = json.loads(path.read_text())
    assert doc["id"] == out["id"]
    assert doc["digest"] == out["digest"]
    assert doc["signature"] == out["signature"]
    heads = {w: chain(w)[-1] for w in (wa, wb)}
    assert doc["heads"] == {w: [t["seq"], t["hash"]] for w, t in heads.items()}
    with read_tx() as session:
        rows = session.connection().execute(select(_cp)).mappings().all()
    assert len(rows) == 1
    assert (rows[0]["id"], rows[0]["digest"], rows[0]["signature"]) == (out["id"], out["digest"], out["signature"])
    report = verify()
    assert report.ok, report.problem
    assert report.checkpoints == 1


def test_two_checkpoints_sealed_in_the_same_second_keep_both_exports(db: Db, now: datetime,
                                                                     tmp_path: Path) -> None:
    enrol(now)
    exports = tmp_path / "exports"
    first = seal(now, exports)
    second = seal(now, exports)
    assert first["file"] != second["file"]
    assert len(list(exports.iterdir())) == 2


def test_seal_without_export(db: Db, now: datetime) -> None:
    enrol(now)
    out = seal(now, None)
    assert "file" not in out
    assert verify().ok


def test_more_entries_after_a_checkpoint_are_fine(db: Db, now: datetime, tmp_path: Path) -> None:
    pid = enrol(now)
    seal(now, tmp_path)
    ingest_one(now, referral(pid, now - timedelta(days=1)))
    enrol(now)
    seal(now + timedelta(hours=1), tmp_path)
    report = verify()
    assert report.ok, report.problem
    assert report.checkpoints == 2


def test_a_checkpoint_signed_with_another_key_fails(db: Db, now: datetime, tmp_path: Path) -> None:
    mixed_history(now)
    out = seal(now, tmp_path, checkpoint_key="not-the-configured-key")
    report = verify()
    assert not report.ok
    assert f"checkpoint {out['id']}" in (report.problem or "")
    assert "signature" in (report.problem or "")
    assert verify("not-the-configured-key").ok


def test_edited_checkpoint_heads_fail_the_signature(db: Db, now: datetime, tmp_path: Path) -> None:
    wa, _ = mixed_history(now)
    out = seal(now, tmp_path)
    with read_tx() as session:
        heads = dict(session.connection().execute(select(_cp.c.heads)).scalar_one())
    heads[wa] = [heads[wa][0] - 1, chain(wa)[-2]["hash"]]
    raw(update(_cp).where(_cp.c.id == out["id"]).values(heads=heads))
    report = verify()
    assert not report.ok
    assert f"checkpoint {out['id']}" in (report.problem or "")


def _rehash_from(wid: str, seq: int, change: dict[str, Any]) -> None:
    """A careful forger: change entry `seq` and recompute every hash after it and the wallet head,
    so that only a sealed checkpoint can tell."""
    entries = chain(wid)
    prev = entries[seq - 2]["hash"] if seq > 1 else ""
    with write_tx() as session:
        conn = session.connection()
        for t in entries[seq - 1:]:
            t = {**t, **change} if t["seq"] == seq else t
            counterparty = t["from_account_id"] if t["to_account_id"] == wid else t["to_account_id"]
            signed = t["amount"] if t["to_account_id"] == wid else -t["amount"]
            body = canonical(id=t["id"], wallet=wid, counterparty=counterparty, amount=signed, kind=t["kind"],
                             rule_version=t["rule_version"], event_id=t["event_id"], at=t["at"],
                             created_at=t["created_at"], prev_hash=prev)
            digest = link(prev, body)
            conn.execute(update(_tr).where(_tr.c.id == t["id"]).values(prev_hash=prev, hash=digest, **(
                change if t["seq"] == seq else {})))
            prev = digest
        conn.execute(update(_acc).where(_acc.c.id == wid).values(chain_head=prev))


def test_a_consistently_rehashed_chain_passes_without_a_checkpoint(db: Db, now: datetime) -> None:
    wa, _ = mixed_history(now)
    _rehash_from(wa, 2, {"at": chain(wa)[1]["at"] - timedelta(days=1)})
    report = verify()
    assert report.ok, report.problem  # the forgery is self-consistent: the checkpoint is what catches it


def test_a_transfer_altered_after_sealing_fails_the_checkpoint(db: Db, now: datetime, tmp_path: Path) -> None:
    wa, _ = mixed_history(now)
    out = seal(now, tmp_path)
    _rehash_from(wa, 2, {"at": chain(wa)[1]["at"] - timedelta(days=1)})
    report = verify()
    assert not report.ok
    problem = report.problem or ""
    assert f"checkpoint {out['id']}" in problem
    assert wa in problem


def test_a_transfer_altered_before_the_sealed_head_fails_the_checkpoint(db: Db, now: datetime,
                                                                        tmp_path: Path) -> None:
    """The sealed head is not the wallet's last entry any more: verify looks it up."""
    wa, _ = mixed_history(now)
    out = seal(now, tmp_path)
    with write_tx() as session:
        ledger.spend(session, wa, 1, now)
    assert verify().ok
    _rehash_from(wa, 1, {"at": chain(wa)[0]["at"] - timedelta(seconds=1)})
    report = verify()
    assert not report.ok
    assert f"checkpoint {out['id']}" in (report.problem or "")
