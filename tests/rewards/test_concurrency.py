"""Real concurrency in the mall: racers in threads, each with its own connection and
its own committing transaction (tests/locks.py). On PostgreSQL the racers are made
to queue behind the row they all need before they are let go together."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Table, func, select

from carepoints.audit.service import Actor
from carepoints.jobs import registry
from carepoints.kit.db import read_tx, write_tx
from carepoints.ledger import service as ledger
from carepoints.ledger.errors import InsufficientPointsError
from carepoints.ledger.models import Account
from carepoints.patients.models import Patient
from carepoints.rewards import service as rewards
from carepoints.rewards.errors import (
    BudgetExhaustedError,
    CouponUsedError,
    IdempotencyConflictError,
    LimitReachedError,
    OutOfStockError,
    StockUnlimitedError,
)
from carepoints.rewards.models import BudgetYear, Coupon, Redemption, Reward
from tests.conftest import Db
from tests.helpers import assert_ledger_intact, balance, event, ingest, ingest_one
from tests.locks import errors, oks, race
from tests.rewards.kit import add_reward, load_budget, offset, outbox, patient_with, redeem, refund, reward_row, verify

_patients: Table = Patient.__table__  # type: ignore[assignment]
_rewards: Table = Reward.__table__  # type: ignore[assignment]
_coupons: Table = Coupon.__table__  # type: ignore[assignment]
_budget: Table = BudgetYear.__table__  # type: ignore[assignment]
_accounts: Table = Account.__table__  # type: ignore[assignment]


def wallet_of(pid: str) -> str:
    with read_tx() as session:
        return ledger.wallet_of(session, pid)


def redemptions_of(pid: str | None = None) -> int:
    t = Redemption.__table__
    with read_tx() as session:
        stmt = select(func.count()).select_from(t)
        if pid is not None:
            stmt = stmt.where(t.c.patient_id == pid)
        return int(session.connection().execute(stmt).scalar_one())


def only(errs: list[BaseException], kind: type[Exception]) -> None:
    assert errs
    assert all(type(e) is kind for e in errs), [repr(e) for e in errs]


def test_twenty_redemptions_against_a_balance_for_five(racing: Db, now: datetime) -> None:
    pid = patient_with(now, 400)  # 500
    item = add_reward(now, points=100)["code"]
    results = race(racing, [lambda: redeem(pid, item, now)] * 20, lock=(_patients, [pid]))
    assert len(oks(results)) == 5
    only(errors(results), InsufficientPointsError)
    assert balance(pid, now) == 0
    assert redemptions_of(pid) == 5
    assert_ledger_intact()


def test_twenty_patients_race_for_a_stock_of_three(racing: Db, now: datetime) -> None:
    item = add_reward(now, points=10, stock=3)["code"]
    pids = [patient_with(now, 0) for _ in range(20)]
    rid = reward_row(item)["id"]
    results = race(racing, [lambda p=p: redeem(p, item, now) for p in pids],  # type: ignore[misc]
                   lock=(_rewards, [rid]))
    assert len(oks(results)) == 3
    only(errors(results), OutOfStockError)
    assert reward_row(item)["stock_used"] == 3
    assert sum(balance(p, now) for p in pids) == 20 * 100 - 3 * 10


def test_a_per_patient_limit_holds_under_concurrency(racing: Db, now: datetime) -> None:
    pid = patient_with(now, 2000)
    item = add_reward(now, points=10, limit={"count": 2, "period": "month"})["code"]
    results = race(racing, [lambda: redeem(pid, item, now)] * 10, lock=(_patients, [pid]))
    assert len(oks(results)) == 2
    only(errors(results), LimitReachedError)


def test_the_same_key_from_ten_threads_makes_one_redemption(racing: Db, now: datetime) -> None:
    pid = patient_with(now, 400)
    key = uuid.uuid4().hex
    results = race(racing, [lambda: redeem(pid, "priority_exam", now, key=key)] * 10, lock=(_patients, [pid]))
    assert errors(results) == []
    assert len({r["id"] for r in oks(results)}) == 1
    assert redemptions_of(pid) == 1
    assert balance(pid, now) == 200


def test_a_hold_and_a_redemption_never_both_take_the_same_points(racing: Db, now: datetime) -> None:
    for _ in range(3):
        pid = patient_with(now, 0)  # 100 points: one or the other
        item = add_reward(now, points=100)["code"]
        racers = [lambda p=pid: offset(p, "500.00", now), lambda p=pid, i=item: redeem(p, i, now)]
        results = race(racing, racers, lock=(_patients, [pid]))  # type: ignore[misc]
        held = [r for r in oks(results) if "offset_cny" in r and r["points"] > 0]
        spent = [r for r in oks(results) if "reward" in r]
        assert len(held) + len(spent) == 1, results
        assert balance(pid, now) == (100 if held else 0)
        assert all(isinstance(e, InsufficientPointsError) for e in errors(results)), results
    assert_ledger_intact()


def test_a_code_is_used_once_however_many_desks_scan_it(racing: Db, now: datetime) -> None:
    pid = patient_with(now, 400)
    doc = redeem(pid, "priority_exam", now)
    cid = doc["coupons"][0]
    with read_tx() as session:
        coupon_id = session.connection().execute(select(_coupons.c.id).where(_coupons.c.code == cid["code"])).scalar()
    results = race(racing, [lambda: verify(cid["code"], now)] * 6, lock=(_coupons, [str(coupon_id)]))
    assert len(oks(results)) == 1
    only(errors(results), CouponUsedError)


def test_the_hard_stop_lets_exactly_the_budget_through(racing: Db, now: datetime) -> None:
    load_budget(now, cny="120.00", hard_stop=True)
    pids = [patient_with(now, 1000) for _ in range(8)]  # 1,100 each
    first = redeem(pids[0], "pharmacy_50", now)  # 50 of 120 CNY: makes the year's row
    assert first["cost_cny"] == "50.00"
    results = race(racing, [lambda p=p: redeem(p, "pharmacy_50", now) for p in pids[1:]],  # type: ignore[misc]
                   lock=(_budget, []))
    assert len(oks(results)) == 1  # 100 of 120; a third would pass it
    only(errors(results), BudgetExhaustedError)
    with read_tx() as session:
        used = session.connection().execute(select(_budget.c.used_fen)).scalar()
    assert used == 10000
    alerts = outbox("rewards.budget_alert")
    assert [a["percent"] for a in alerts] == [80]  # 100/120 = 83%: once, however many raced
    assert Decimal(used) / 100 <= Decimal("120.00")


def test_a_refund_racing_a_verification_never_gives_both(racing: Db, now: datetime) -> None:
    for _ in range(3):
        pid = patient_with(now, 400)
        doc = redeem(pid, "priority_exam", now)
        code = doc["coupon_code"]
        with read_tx() as session:
            cid = str(session.connection().execute(select(_coupons.c.id).where(_coupons.c.code == code)).scalar())
        results = race(racing, [lambda c=code: verify(c, now), lambda r=doc["id"]: refund(r, now)],  # type: ignore[misc]
                       lock=(_coupons, [cid]))
        assert len(oks(results)) == 1, results
        with read_tx() as session:
            status = session.connection().execute(select(_coupons.c.status).where(_coupons.c.id == cid)).scalar()
        assert balance(pid, now) == (500 if status == "refunded" else 200)
        assert status in ("used", "refunded")


def test_the_same_key_from_two_patients_is_one_redemption(racing: Db, now: datetime) -> None:
    a, b = patient_with(now, 400), patient_with(now, 400)
    key = uuid.uuid4().hex
    results = race(racing, [lambda p=p: redeem(p, "priority_exam", now, key=key) for p in (a, b) * 3])  # type: ignore[misc]
    assert len({r["id"] for r in oks(results)}) == 1
    only(errors(results), IdempotencyConflictError)
    assert redemptions_of(a) + redemptions_of(b) == 1
    assert balance(a, now) + balance(b, now) == 1000 - 300
    assert_ledger_intact()


def test_refunded_points_are_counted_under_the_wallet_lock(racing: Db, now: datetime) -> None:
    for _ in range(3):
        pid = patient_with(now, 400)
        doc = redeem(pid, "priority_exam", now)
        earn = event(pid, "referral.visit", now, {"referral_id": uuid.uuid4().hex, "from_institution": "社区中心"})
        results = race(racing, [lambda r=doc["id"]: refund(r, now), lambda e=earn: ingest_one(now, e)],  # type: ignore[misc]
                       lock=(_accounts, [wallet_of(pid)]))
        assert errors(results) == []
        assert oks(results)[0]["refunded_points"] == 300
        assert balance(pid, now) == 700


def test_the_hold_expiry_job_and_ingest_do_not_deadlock(racing: Db, now: datetime) -> None:
    for _ in range(3):
        pids = sorted(patient_with(now, 0) for _ in range(2))
        later = now + timedelta(minutes=20)
        offset(pids[1], "30.00", now)  # the later wallet's hold expires first
        offset(pids[0], "30.00", now + timedelta(seconds=1))
        readings = [event(p, "referral.visit", later, {"referral_id": uuid.uuid4().hex, "from_institution": "x"})
                    for p in pids]
        results = race(racing, [lambda t=later: registry.run("expire-holds", t + timedelta(minutes=1)),
                                lambda t=later, r=readings: ingest(t, *r)])  # type: ignore[misc]
        assert errors(results) == [], results
        assert [balance(p, later) for p in pids] == [300, 300]


def test_admins_adding_stock_at_once_all_count(racing: Db, now: datetime) -> None:
    """rewards.service.add_stock is one UPDATE (stock_total + n): no addition is lost."""
    item = add_reward(now, points=10, stock=3)["code"]
    rid = reward_row(item)["id"]

    def add(n: int) -> dict[str, object]:
        with write_tx() as session:
            return rewards.add_stock(session, item, n, Actor("staff", "admin-test"), now)

    results = race(racing, [lambda n=n: add(n) for n in range(1, 9)], lock=(_rewards, [rid]))  # type: ignore[misc]
    assert errors(results) == []
    assert reward_row(item)["stock_total"] == 3 + sum(range(1, 9))
    unlimited = add_reward(now, points=10)["code"]
    with pytest.raises(StockUnlimitedError), write_tx() as session:
        rewards.add_stock(session, unlimited, 5, Actor("staff", "admin-test"), now)
    assert reward_row(unlimited)["stock_total"] is None
