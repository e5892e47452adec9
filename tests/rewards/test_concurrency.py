"""Real concurrency in the mall: racers in threads, each with its own connection and
its own committing transaction (tests/locks.py). On PostgreSQL the racers are made
to queue behind the row they all need before they are let go together."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Table, func, select

from carepoints.kit.db import read_tx
from carepoints.ledger.errors import InsufficientPointsError
from carepoints.patients.models import Patient
from carepoints.rewards.errors import BudgetExhaustedError, CouponUsedError, LimitReachedError, OutOfStockError
from carepoints.rewards.models import BudgetYear, Coupon, Redemption, Reward
from tests.conftest import Db
from tests.helpers import assert_ledger_intact, balance
from tests.locks import errors, oks, race
from tests.rewards.kit import add_reward, load_budget, offset, outbox, patient_with, redeem, reward_row, verify

_patients: Table = Patient.__table__  # type: ignore[assignment]
_rewards: Table = Reward.__table__  # type: ignore[assignment]
_coupons: Table = Coupon.__table__  # type: ignore[assignment]
_budget: Table = BudgetYear.__table__  # type: ignore[assignment]


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
