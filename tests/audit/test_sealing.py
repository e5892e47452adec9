"""The audit log sealed in blocks: sealing, verification, tampering named by
row or block, the append-only triggers, retention purge and the jobs (both
databases)."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from carepoints.audit import sealing
from carepoints.audit import service as audit
from carepoints.cli.main import app as cli_app
from carepoints.config import get_settings, reset_settings
from carepoints.jobs import registry
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.time import utc_now
from tests.audit.kit import add_rows, all_ids, attacker, next_id, seal_all, seals, sql, verify
from tests.conftest import Db


def test_rows_are_sealed_in_chained_signed_blocks_and_verify(db: Db) -> None:
    before = len(all_ids())
    ids = add_rows(25)
    assert verify().pending == before + 25
    sizes = seal_all(block_rows=10)
    total = before + 25
    assert sum(sizes) == total
    assert max(sizes) == 10
    blocks = seals()
    assert [b["block"] for b in blocks] == list(range(1, len(blocks) + 1))
    assert blocks[0]["prev_digest"] == ""
    for prev, cur in itertools.pairwise(blocks):
        assert cur["prev_digest"] == prev["digest"]
        assert cur["first_id"] > prev["last_id"]
    assert blocks[-1]["last_id"] == ids[-1]
    report = verify()
    assert report.ok, report.problem
    assert (report.blocks, report.rows, report.pending) == (len(blocks), total, 0)
    # new rows wait for the next seal and are counted as pending meanwhile
    add_rows(3)
    report = verify()
    assert report.ok
    assert report.pending == 3
    assert seal_all() == [3]
    assert verify().pending == 0


def test_only_rows_older_than_the_margin_are_sealed(db: Db) -> None:
    add_rows(5)
    with write_tx() as session:
        sealed = audit.seal(session, get_settings().checkpoint_key, utc_now(), margin=timedelta(minutes=2))
    assert sealed == 0  # written just now: a writer holding an older id may not have committed yet
    with write_tx() as session:  # a clock in the future does not move the horizon past the real one
        sealed = audit.seal(session, get_settings().checkpoint_key, utc_now() + timedelta(hours=1),
                            margin=timedelta(minutes=2))
    assert sealed == 0
    assert sum(seal_all()) >= 5


def test_the_database_refuses_updates_and_deletes(db: Db) -> None:
    [rid] = add_rows(1)
    seal_all()
    for statement in ("UPDATE audit_log SET action = 'x' WHERE id = :id", "DELETE FROM audit_log WHERE id = :id",
                      "UPDATE audit_seals SET digest = 'x'", "DELETE FROM audit_seals"):
        with pytest.raises(DBAPIError, match="append-only"):
            sql(statement, id=rid)
    assert verify().ok


def test_an_altered_row_is_named(db: Db) -> None:
    ids = add_rows(12)
    seal_all(block_rows=5)
    victim = ids[7]
    with attacker():
        sql("UPDATE audit_log SET patient_id = 'someone-else' WHERE id = :id", id=victim)
    report = verify()
    assert not report.ok
    assert report.problem is not None
    assert victim in report.problem
    assert "altered" in report.problem


def test_a_deleted_row_is_named_with_its_block(db: Db) -> None:
    ids = add_rows(12)
    seal_all(block_rows=5)
    victim = ids[3]
    block = next(b["block"] for b in seals() if b["first_id"] <= victim <= b["last_id"])
    with attacker():
        sql("DELETE FROM audit_log WHERE id = :id", id=victim)
    report = verify()
    assert report.problem is not None
    assert victim in report.problem
    assert "deleted" in report.problem
    assert f"block {block}" in report.problem


def test_a_row_inserted_inside_a_sealed_range_is_named(db: Db) -> None:
    ids = add_rows(12)
    seal_all(block_rows=50)
    a, _b = next((x, y) for x, y in itertools.pairwise(ids) if x[-1] != "f" and next_id(x) < y)
    forged = next_id(a)
    with attacker():
        sql("INSERT INTO audit_log (id, at, actor_kind, actor_id, action, details) "
            "SELECT :new, at, actor_kind, actor_id, action, details FROM audit_log WHERE id = :old", new=forged, old=a)
    report = verify()
    assert report.problem is not None
    assert forged in report.problem
    assert "inserted" in report.problem


def test_a_bad_signature_and_a_broken_chain_are_named(db: Db) -> None:
    add_rows(12)
    seal_all(block_rows=5)
    report = verify(key="another-key")
    assert report.problem is not None
    assert "block 1" in report.problem
    assert "signature" in report.problem
    with attacker():
        sql("UPDATE audit_seals SET prev_digest = :d WHERE block = 2", d="0" * 64)
    report = verify()
    assert report.problem is not None
    assert "block 2" in report.problem
    assert "chain" in report.problem


def test_a_removed_seal_is_named(db: Db) -> None:
    add_rows(16)
    seal_all(block_rows=5)
    with attacker():
        sql("DELETE FROM audit_seals WHERE block = 2")
    report = verify()
    assert report.problem is not None
    assert "block 2" in report.problem


def test_purge_removes_whole_old_blocks_and_the_chain_still_verifies(db: Db) -> None:
    now = utc_now()
    old = add_rows(20, at=now - timedelta(days=400))
    seal_all(block_rows=10)
    recent = add_rows(10, at=now - timedelta(days=10))
    seal_all(block_rows=10)
    blocks_before = seals()
    with write_tx() as session:
        deleted = audit.purge_before(session, now - timedelta(days=200))
    kept = set(all_ids())
    assert not kept & set(old)
    assert set(recent) <= kept
    assert deleted >= 20
    after = seals()
    assert len(after) < len(blocks_before)
    assert after[0]["block"] > 1
    report = verify()
    assert report.ok, report.problem
    assert report.pending == 1  # the purge's own audit row, with its anchor
    with read_tx() as session:
        [purge] = audit.entries(session, action=sealing.PURGE_ACTION)
    assert purge["details"]["through_block"] == after[0]["block"] - 1
    assert purge["details"]["anchor"] == after[0]["prev_digest"]
    seal_all()
    assert verify().ok
    with write_tx() as session:  # nothing more is old enough
        assert audit.purge_before(session, now - timedelta(days=200)) == 0


def test_purge_never_goes_below_six_months_and_keeps_the_newest_seal(db: Db) -> None:
    now = utc_now()
    add_rows(10, at=now - timedelta(days=100))
    seal_all(block_rows=5)
    with write_tx() as session:  # clamped to 183 days: 100-day-old rows stay
        assert audit.purge_before(session, now - timedelta(days=1)) == 0
    add_rows(5, at=now - timedelta(days=300))
    seal_all(block_rows=5)
    blocks = seals()
    with write_tx() as session:  # that block is the newest seal: it stays so the chain can continue
        assert audit.purge_before(session, now) == 0
    assert seals() == blocks


def test_purged_blocks_without_a_recorded_purge_are_reported(db: Db) -> None:
    add_rows(15)
    seal_all(block_rows=5)
    first = seals()[0]
    with attacker():
        sql("DELETE FROM audit_log WHERE id >= :a AND id <= :b", a=first["first_id"], b=first["last_id"])
        sql("DELETE FROM audit_seals WHERE block = 1")
    report = verify()
    assert report.problem is not None
    assert "blocks 1-1" in report.problem


def test_the_jobs_seal_the_audit_log(db: Db, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAREPOINTS_AUDIT_SEAL_MARGIN_SECONDS", "0")
    monkeypatch.setenv("CAREPOINTS_AUDIT_SEAL_BLOCK_ROWS", "10")
    reset_settings()
    add_rows(15)
    total = len(all_ids())
    result = registry.run("seal-audit", utc_now())
    assert result["audit_rows"] + result["audit_pending"] == total
    assert result["audit_blocks"] >= 1
    add_rows(4)
    result = registry.run("seal-checkpoint", utc_now())
    assert "digest" in result  # the ledger checkpoint
    assert result["audit_rows"] + result["audit_pending"] >= 4
    assert verify().ok


def test_cli_audit_verify(db: Db) -> None:
    ids = add_rows(8)
    seal_all(block_rows=5)
    runner = CliRunner()
    out = runner.invoke(cli_app, ["audit", "verify"])
    assert out.exit_code == 0, out.output
    assert "audit log intact:" in out.output
    assert "0 rows pending" in out.output
    with attacker():
        sql("UPDATE audit_log SET action = 'test:row:innocent' WHERE id = :id", id=ids[2])
    out = runner.invoke(cli_app, ["audit", "verify"])
    assert out.exit_code == 1
    assert ids[2] in out.output
    assert "AUDIT LOG BROKEN" in out.output
