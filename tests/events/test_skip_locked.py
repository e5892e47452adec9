"""PostgreSQL: a group of requests takes the patients it can lock now and
leaves the ones another transaction holds to a second transaction."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

import pytest

from carepoints.events import service as events
from carepoints.kit.db import read_tx
from carepoints.kit.errors import AppError
from carepoints.ledger import service as ledger
from carepoints.ledger.models import Account
from tests.conftest import Db
from tests.helpers import balance, bp, enrol, event
from tests.locks import RowLocks

_acc = Account.__table__


@pytest.fixture
def pg_only(db: Db) -> Db:
    if not db.is_postgres:
        pytest.skip("SKIP LOCKED splitting is PostgreSQL's (SQLite has one writer)")
    return db


def _wallet(pid: str) -> str:
    with read_tx() as session:
        return ledger.wallet_of(session, pid)


def test_a_held_wallet_does_not_hold_up_the_other_patients(pg_only: Db, now: datetime) -> None:
    busy, free = enrol(now), enrol(now)
    at = now - timedelta(hours=1)
    jobs = [[event(busy, "health.measurement", at, bp())],
            [event(free, "health.measurement", at, bp()), event(busy, "health.measurement", at, bp(), key="b2")]]
    results: list[Any] = []
    with RowLocks(pg_only, _acc, [_wallet(busy)]) as lock:
        worker = threading.Thread(target=lambda: results.extend(events._ingest_group(jobs)), daemon=True)
        worker.start()
        lock.wait_for(1)  # the second transaction queues for the held wallet ...
        assert balance(free, now) == 160  # ... after the first committed the free patient's reading
        assert balance(busy, now) == 100
        lock.release()
        worker.join(timeout=30)
    assert not worker.is_alive()
    first, second = results
    assert [sum(a["points"] for a in o["awards"]) for o in first] == [60]  # first reading 50 + 10
    assert [sum(a["points"] for a in o["awards"]) for o in second] == [60, 10]  # answers in request order
    assert balance(busy, now) == 170


def test_two_groups_sharing_patients_both_finish(pg_only: Db, now: datetime) -> None:
    """Groups that take each other's patients in opposite orders never deadlock."""
    pids = [enrol(now) for _ in range(6)]
    at = now - timedelta(hours=1)
    groups = [[[event(p, "health.measurement", at + timedelta(minutes=i), bp()) for p in pids]] for i in range(2)]
    groups[1][0].reverse()
    barrier = threading.Barrier(2)
    out: list[Any] = [None, None]

    def run(i: int) -> None:
        barrier.wait()
        out[i] = events._ingest_group(groups[i])

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert all(isinstance(o, dict) for group in out for job in group for o in job), out
    assert [balance(p, now) for p in pids] == [170] * 6  # 100 + 50 + 10 + 10


def test_a_repeated_key_stays_with_its_first_item(pg_only: Db, now: datetime) -> None:
    busy = enrol(now, external_ids=[{"system": "his", "value": "MRN-1"}])
    free = enrol(now)
    at = now - timedelta(hours=1)
    first = {**event(busy, "health.measurement", at, bp(), key="dup"), "patient": {"system": "his", "value": "MRN-1"}}
    second = event(free, "health.measurement", at, bp(), key="dup")
    out: list[Any] = []
    with RowLocks(pg_only, _acc, [_wallet(busy)]) as lock:
        worker = threading.Thread(target=lambda: out.extend(events._ingest_group([[first, second]])), daemon=True)
        worker.start()
        lock.wait_for(1)
        lock.release()
        worker.join(timeout=30)
    ((a, b),) = out
    assert isinstance(a, dict), a
    assert isinstance(b, AppError)
    assert b.code == "events.conflict"


def test_a_failure_after_the_first_commit_answers_only_the_waiting_items(
        pg_only: Db, now: datetime, monkeypatch: pytest.MonkeyPatch) -> None:
    busy, free = enrol(now), enrol(now)
    at = now - timedelta(hours=1)

    def broken(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("the second transaction lost its connection")

    monkeypatch.setattr(events, "ingest", broken)
    with RowLocks(pg_only, _acc, [_wallet(busy)]):
        committed, waiting = events._ingest_group([[event(free, "health.measurement", at, bp())],
                                                   [event(busy, "health.measurement", at, bp())]])
    assert committed[0]["duplicate"] is False  # answered once, from the transaction that committed it
    assert isinstance(waiting[0], AppError)
    assert waiting[0].status_code == 500
    assert balance(free, now) == 160
    assert balance(busy, now) == 100
