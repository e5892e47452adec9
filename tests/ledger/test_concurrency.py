"""Real concurrency: every racer is a thread with its own connection and its
own `write_tx()` that really commits.

On SQLite the writers serialise through BEGIN IMMEDIATE and the busy timeout.
On PostgreSQL the wallet row lock decides; to make sure the racers really
contend there, the main thread holds that lock until every racer is queued
behind it (visible in pg_stat_activity) and then lets them go at once.
PostgreSQL grants a contended row lock in queue order, which also lets a test
fix who goes first."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from carepoints.config import get_settings
from carepoints.events import service as events
from carepoints.events.errors import EventConflictError
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.errors import AppError
from carepoints.ledger import integrity
from carepoints.ledger import service as ledger
from carepoints.ledger.errors import HoldClosedError, InsufficientPointsError
from carepoints.ledger.models import Account, Hold, Transfer
from carepoints.ledger.posting import Posted
from tests.conftest import Db
from tests.helpers import bp, enrol, event, ingest, ingest_one, points
from tests.locks import Outcome, RowLocks, errors, oks
from tests.locks import race as race_behind

_acc = Account.__table__
_tr = Transfer.__table__
_holds = Hold.__table__



# --- the race harness ---------------------------------------------------------------

def race(db: Db, fns: list[Callable[[], Any]], *, wallet_id: str | None = None) -> list[Outcome]:
    """Racers released together, queued behind the wallet's row lock on PostgreSQL."""
    return race_behind(db, fns, lock=(_acc, [wallet_id]) if wallet_id else None)


# --- helpers ------------------------------------------------------------------------------

def wallet(pid: str) -> str:
    with read_tx() as session:
        return ledger.wallet_of(session, pid)


def account(pid: str) -> dict[str, Any]:
    with read_tx() as session:
        return dict(session.connection().execute(select(_acc).where(_acc.c.patient_id == pid)).mappings().one())


def count_transfers(wid: str, **where: Any) -> int:
    with read_tx() as session:
        stmt = select(func.count()).select_from(_tr).where(_tr.c.wallet_id == wid)
        for col, value in where.items():
            stmt = stmt.where(_tr.c[col] == value)
        return int(session.connection().execute(stmt).scalar() or 0)


def rule_total(wid: str, rule: str) -> int:
    with read_tx() as session:
        return int(session.connection().execute(
            select(func.coalesce(func.sum(_tr.c.amount), 0))
            .where(_tr.c.wallet_id == wid, _tr.c.rule_code == rule, _tr.c.kind == "earn")).scalar() or 0)


def spend(wid: str, pts: int, now: datetime) -> Posted:
    with write_tx() as session:
        return ledger.spend(session, wid, pts, now)


def hold(wid: str, pts: int, now: datetime, key: str | None = None) -> dict[str, Any]:
    with write_tx() as session:
        return ledger.hold(session, wid, pts, now, ttl=timedelta(minutes=15), idempotency_key=key)


def referral(pid: str, at: datetime) -> dict[str, Any]:
    return event(pid, "referral.visit", at, {"referral_id": uuid.uuid4().hex, "from_institution": "社区中心"})


def assert_verified() -> None:
    with read_tx() as session:
        report = integrity.verify(session, get_settings().checkpoint_key)
    assert report.ok, report.problem


# --- invariant 6: concurrent spends never overdraw --------------------------------------

def test_parallel_spends_succeed_exactly_as_often_as_the_balance_covers(db: Db, now: datetime) -> None:
    pid = enrol(now)
    wid = wallet(pid)
    results = race(db, [lambda: spend(wid, 30, now)] * 8, wallet_id=wid)
    won = oks(results)
    lost = errors(results)
    assert len(won) == 3
    assert len(lost) == 5
    assert all(isinstance(e, InsufficientPointsError) for e in lost), lost
    assert sorted(p.balance_after for p in won) == [10, 40, 70]
    acc = account(pid)
    assert (acc["balance"], acc["debt"], acc["held"]) == (10, 0, 0)
    assert count_transfers(wid, kind="redeem") == 3
    assert_verified()


def test_parallel_spends_across_several_lots(db: Db, now: datetime) -> None:
    pid = enrol(now)
    ingest(now, *[referral(pid, now - timedelta(days=d)) for d in (5, 50, 500)])  # 700 in four lots
    wid = wallet(pid)
    results = race(db, [lambda: spend(wid, 160, now)] * 8, wallet_id=wid)
    assert len(oks(results)) == 4
    assert all(isinstance(e, InsufficientPointsError) for e in errors(results))
    assert account(pid)["balance"] == 60
    assert_verified()


def test_a_hold_and_a_spend_racing_for_the_same_points_never_both_succeed(db: Db, now: datetime) -> None:
    for _ in range(4):
        pid = enrol(now)
        wid = wallet(pid)
        results = race(db, [lambda: hold(wid, 80, now), lambda: spend(wid, 80, now)], wallet_id=wid)  # noqa: B023
        assert len(oks(results)) == 1, results
        assert isinstance(errors(results)[0], InsufficientPointsError)
        acc = account(pid)
        if results[0][0] == "ok":  # the hold won
            assert (acc["balance"], acc["held"]) == (100, 80)
            assert count_transfers(wid, kind="redeem") == 0
        else:
            assert (acc["balance"], acc["held"]) == (20, 0)
            assert count_transfers(wid, kind="redeem") == 1
    assert_verified()


def test_parallel_commits_of_one_hold_post_once(db: Db, now: datetime) -> None:
    pid = enrol(now)
    wid = wallet(pid)
    h = hold(wid, 60, now)

    def commit() -> dict[str, Any]:
        with write_tx() as session:
            return ledger.commit_hold(session, h["id"], now)

    results = race(db, [commit] * 4, wallet_id=wid)
    assert errors(results) == []
    assert len({r["transfer_id"] for r in oks(results)}) == 1
    assert count_transfers(wid, kind="redeem") == 1
    acc = account(pid)
    assert (acc["balance"], acc["held"]) == (40, 0)
    assert_verified()


def test_commit_and_void_racing_one_wins(db: Db, now: datetime) -> None:
    pid = enrol(now)
    wid = wallet(pid)
    h = hold(wid, 60, now)

    def commit() -> dict[str, Any]:
        with write_tx() as session:
            return ledger.commit_hold(session, h["id"], now)

    def void() -> dict[str, Any]:
        with write_tx() as session:
            return ledger.void_hold(session, h["id"], now)

    results = race(db, [commit, void], wallet_id=wid)
    assert len(oks(results)) == 1, results
    assert isinstance(errors(results)[0], HoldClosedError)
    with read_tx() as session:
        status = session.connection().execute(select(_holds.c.status).where(_holds.c.id == h["id"])).scalar()
    acc = account(pid)
    if results[0][0] == "ok":
        assert status == "committed"
        assert (acc["balance"], acc["held"]) == (40, 0)
    else:
        assert status == "voided"
        assert (acc["balance"], acc["held"]) == (100, 0)
    assert_verified()


def test_parallel_holds_with_one_idempotency_key_make_one_hold(db: Db, now: datetime,
                                                               request: pytest.FixtureRequest) -> None:
    pid = enrol(now)
    wid = wallet(pid)
    results = race(db, [lambda: hold(wid, 30, now, key="cashier-42")] * 2, wallet_id=wid)
    assert errors(results) == []
    assert len({h["id"] for h in oks(results)}) == 1
    assert account(pid)["held"] == 30


# --- invariant 7: caps hold under concurrency ---------------------------------------------

def test_parallel_referrals_never_exceed_the_annual_cap(db: Db, now: datetime) -> None:
    pid = enrol(now)  # the welcome 100 counts against the cap
    wid = wallet(pid)
    base = now - timedelta(days=100)  # same calendar year as the welcome bonus

    def batch(t: int) -> list[dict[str, Any] | AppError]:
        return ingest(now, *[referral(pid, base + timedelta(days=t, hours=i)) for i in range(7)])

    results = race(db, [lambda t=t: batch(t) for t in range(8)], wallet_id=wid)  # type: ignore[misc]
    assert errors(results) == []
    outcomes = [o for batch_out in oks(results) for o in batch_out]
    assert len(outcomes) == 56
    assert not [o for o in outcomes if isinstance(o, AppError)]
    awarded = [a["points"] for o in outcomes for a in o["awards"]]  # type: ignore[index]
    assert sum(awarded) == 9900
    assert awarded.count(200) == 49
    assert awarded.count(100) == 1  # reduced to the remaining room, once
    view = points(pid, now)
    assert (view["balance"], view["earned_this_year"]) == (10000, 10000)
    assert rule_total(wid, "referral") == 9900
    assert_verified()


def test_parallel_referrals_one_transaction_each(db: Db, now: datetime) -> None:
    pid = enrol(now)
    base = now - timedelta(days=30)

    def several(t: int) -> int:
        got = 0
        for i in range(7):
            out = ingest_one(now, referral(pid, base + timedelta(hours=t * 7 + i)))
            got += sum(a["points"] for a in out["awards"])
        return got

    results = race(db, [lambda t=t: several(t) for t in range(8)])  # type: ignore[misc]
    assert errors(results) == []
    assert sum(oks(results)) == 9900
    assert points(pid, now)["earned_this_year"] == 10000
    assert_verified()


def test_parallel_readings_on_one_day_respect_the_daily_cap(db: Db, now: datetime) -> None:
    pid = enrol(now)
    wid = wallet(pid)
    day = now - timedelta(days=1)
    evs = [event(pid, "health.measurement", day + timedelta(minutes=i), bp()) for i in range(6)]
    results = race(db, [lambda ev=ev: ingest_one(now, ev) for ev in evs], wallet_id=wid)  # type: ignore[misc]
    assert errors(results) == []
    assert rule_total(wid, "health_checkin") == 20
    assert rule_total(wid, "first_checkin") == 50
    assert sum(1 for o in oks(results) if o["awards"]) == 2
    assert account(pid)["balance"] == 170
    assert_verified()


# --- invariant 4 under concurrency: one source key, one acceptance -------------------------

def test_the_same_event_ingested_twice_at_once_counts_once(db: Db, now: datetime) -> None:
    pid = enrol(now)
    wid = wallet(pid)
    ev = referral(pid, now - timedelta(hours=2))
    results = race(db, [lambda: ingest_one(now, ev)] * 2, wallet_id=wid)
    assert errors(results) == []
    first, second = sorted(oks(results), key=lambda o: o["duplicate"])
    assert (first["duplicate"], second["duplicate"]) == (False, True)
    assert second["event_id"] == first["event_id"]
    assert second["awards"] == first["awards"]
    assert account(pid)["balance"] == 300
    assert count_transfers(wid, kind="earn") == 2
    assert_verified()


def test_one_source_key_for_two_patients_at_once_is_a_conflict_for_one(db: Db, now: datetime) -> None:
    """The loser's batch falls back to item-by-item: only the clashing item fails."""
    a, b = enrol(now), enrol(now)
    at = now - timedelta(hours=2)
    clash = [event(pid, "referral.visit", at, {"referral_id": "R-1", "from_institution": "社区中心"}, key="HIS-77")
             for pid in (a, b)]
    extra = referral(a, at - timedelta(hours=1))
    results = race(db, [lambda: ingest(now, clash[0], extra), lambda: ingest(now, clash[1])])
    assert errors(results) == []
    (first_a, extra_a), (first_b,) = oks(results)
    assert isinstance(extra_a, dict)
    assert extra_a["duplicate"] is False
    assert [o["awards"][0]["points"] for o in (extra_a,)] == [200]
    accepted = [o for o in (first_a, first_b) if isinstance(o, dict)]
    refused = [o for o in (first_a, first_b) if not isinstance(o, dict)]
    assert len(accepted) == 1
    assert accepted[0]["duplicate"] is False
    assert len(refused) == 1
    assert isinstance(refused[0], EventConflictError)
    if first_a is accepted[0]:
        assert (account(a)["balance"], account(b)["balance"]) == (500, 100)
    else:
        assert (account(a)["balance"], account(b)["balance"]) == (300, 300)
    assert_verified()


def test_batches_touching_the_same_wallets_in_opposite_orders_do_not_deadlock(db: Db, now: datetime) -> None:
    a, b = enrol(now), enrol(now)
    at = now - timedelta(hours=3)

    def batch(first: str, second: str) -> list[dict[str, Any] | AppError]:
        return ingest(now, referral(first, at), referral(second, at))

    results = race(db, [lambda: batch(a, b), lambda: batch(b, a)] * 3)
    assert errors(results) == []
    assert all(isinstance(o, dict) for out in oks(results) for o in out)
    assert (account(a)["balance"], account(b)["balance"]) == (1300, 1300)
    assert_verified()


def test_parallel_revokes_reverse_once(db: Db, now: datetime) -> None:
    pid = enrol(now)
    wid = wallet(pid)
    out = ingest_one(now, referral(pid, now - timedelta(hours=2)))

    def revoke() -> dict[str, Any]:
        with write_tx() as session:
            return events.revoke(session, now=now, reason="HIS correction", event_id=out["event_id"])

    results = race(db, [revoke] * 4, wallet_id=wid)
    assert errors(results) == []
    answers = oks(results)
    assert all(a == answers[0] for a in answers)
    assert answers[0]["reversed"] == [{"rule": "referral", "points": -200}]
    assert count_transfers(wid, kind="reversal") == 1
    assert account(pid)["balance"] == 100
    assert_verified()


def test_expiry_job_and_spends_racing(db: Db, now: datetime) -> None:
    pid = enrol(now)
    wid = wallet(pid)
    ingest_one(now, referral(pid, now.replace(year=2024) + timedelta(days=5)))  # expires in 5 days
    later = now + timedelta(days=10)

    def expire() -> tuple[int, int]:
        with write_tx() as session:
            return ledger.expire_points(session, later)

    results = race(db, [expire, lambda: spend(wid, 150, later), lambda: spend(wid, 150, later)], wallet_id=wid)
    acc = account(pid)
    spent = [r for r in results[1:] if r[0] == "ok"]
    assert all(isinstance(e, InsufficientPointsError) for e in errors(results))
    expired = results[0][1][1] if results[0][0] == "ok" else 0
    assert acc["balance"] == 300 - 150 * len(spent) - expired
    assert acc["balance"] >= 0
    assert_verified()


def test_two_expiry_jobs_racing_expire_once(db: Db, now: datetime) -> None:
    pid = enrol(now)
    wid = wallet(pid)
    ingest_one(now, referral(pid, now.replace(year=2024) + timedelta(days=5)))  # expires in 5 days
    later = now + timedelta(days=10)

    def expire() -> tuple[int, int]:
        with write_tx() as session:
            return ledger.expire_points(session, later)

    results = race(db, [expire, expire], wallet_id=wid)
    assert errors(results) == []
    assert sorted(p for _w, p in oks(results)) == [0, 200]
    assert count_transfers(wid, kind="expiry") == 1
    assert account(pid)["balance"] == 100
    assert_verified()


def test_parallel_refunds_of_one_spend_refund_once(db: Db, now: datetime) -> None:
    pid = enrol(now)
    wid = wallet(pid)
    spent = spend(wid, 70, now)

    def refund() -> Posted:
        with write_tx() as session:
            return ledger.refund(session, spent.id, now, expires_at=now + timedelta(days=730))

    results = race(db, [refund] * 4, wallet_id=wid)
    assert errors(results) == []
    assert len({p.id for p in oks(results)}) == 1
    assert count_transfers(wid, kind="refund") == 1
    assert account(pid)["balance"] == 100
    assert_verified()


def test_the_hold_expiry_job_survives_a_commit_that_won_the_race(db: Db, now: datetime) -> None:
    """The job picks the hold while it is open; the cashier's commit takes the wallet first."""
    pid = enrol(now)
    wid = wallet(pid)
    h = hold(wid, 60, now)  # expires at now + 15 min
    keep_going = hold(wid, 10, now)
    results: dict[str, Outcome] = {}

    def commit() -> None:
        try:
            with write_tx() as session:
                results["commit"] = ("ok", ledger.commit_hold(session, h["id"], now + timedelta(minutes=14)))
        except Exception as exc:  # collected and asserted below
            results["commit"] = ("err", exc)

    def job() -> None:
        try:
            with write_tx() as session:
                results["job"] = ("ok", ledger.expire_holds(session, now + timedelta(minutes=16)))
        except Exception as exc:  # collected and asserted below
            results["job"] = ("err", exc)

    threads = [threading.Thread(target=commit, daemon=True), threading.Thread(target=job, daemon=True)]
    if db.is_postgres:  # queue the commit first, then the job (which has read the open holds already)
        with RowLocks(db, _acc, [wid]) as lock:
            threads[0].start()
            lock.wait_for(1)
            threads[1].start()
            lock.wait_for(2)
    else:  # BEGIN IMMEDIATE serialises the whole use case: the commit simply goes first
        threads[0].start()
        threads[0].join(timeout=60)
        threads[1].start()
    for t in threads:
        t.join(timeout=60)
    assert results["commit"][0] == "ok", results
    assert results["job"][0] == "ok", results
    with read_tx() as session:
        statuses = dict(session.connection().execute(select(_holds.c.id, _holds.c.status)).all())
    assert statuses == {h["id"]: "committed", keep_going["id"]: "expired"}
    acc = account(pid)
    assert (acc["balance"], acc["held"]) == (40, 0)
    assert_verified()
