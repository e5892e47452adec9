"""The cashier's fee offset (挂号费抵扣): quote, hold, commit / void / expiry, 退号,
reconciliation (对账) and its share of the budget, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from carepoints.jobs import registry
from carepoints.kit.db import read_tx
from carepoints.rewards import budget, offsets
from carepoints.rewards.errors import FeeOffsetNotFoundError, FeeOffsetStateError, IdempotencyConflictError
from tests.conftest import Db
from tests.helpers import assert_ledger_intact, points
from tests.rewards.kit import load_budget, offset, patient_with, redeem, settle


@pytest.mark.parametrize(("fee", "discount", "available", "expected"), [
    (2500, 0, 1000, 120),     # 50% of 25.00 = 12.50 → 12 whole CNY → 120 points
    (2500, 500, 1000, 100),   # gold: 50% of (25.00 − 5.00) = 10.00 → 100
    (3333, 0, 1000, 160),     # 16.665 → 16 whole steps
    (2500, 0, 95, 90),        # only whole 10-point steps of what is available
    (2500, 0, 9, 0),
    (0, 0, 1000, 0),
    (1999, 0, 1000, 90),      # 9.995 → 9
    (100000, 0, 10_000_000, 5000),  # 50% of 1,000.00 = 500.00 CNY
])
def test_quote(fee: int, discount: int, available: int, expected: int) -> None:
    assert offsets.quote(fee, discount, available, max_share=Decimal("0.50"), step=10, value_points=100,
                         value_cny=Decimal("10.00")) == expected


def test_an_offset_holds_the_points_until_the_payment_commits(db: Db, now: datetime) -> None:
    pid = patient_with(now, 400)  # 500
    doc = offset(pid, "25.00", now, reference="HIS-0001")
    assert (doc["status"], doc["points"], doc["offset_cny"], doc["tier_discount_cny"]) == ("held", 120, "12.00",
                                                                                         "0.00")
    assert doc["payable_cny"] == "13.00"
    assert doc["expires_at"] == now + timedelta(minutes=15)
    held = points(pid, now)
    assert (held["balance"], held["held"], held["available"]) == (500, 120, 380)
    done = settle("commit", doc["id"], now + timedelta(minutes=1))
    assert done["status"] == "committed"
    assert settle("commit", doc["id"], now + timedelta(minutes=2))["status"] == "committed"  # again: the same
    after = points(pid, now)
    assert (after["balance"], after["held"], after["available"]) == (380, 0, 380)
    with pytest.raises(FeeOffsetStateError):
        settle("void", doc["id"], now + timedelta(minutes=3))
    assert_ledger_intact()


def test_the_offset_for_a_gold_patient_is_computed_after_the_tier_discount(db: Db, now: datetime) -> None:
    pid = patient_with(now, 5000)
    assert points(pid, now)["tier"] == "gold"
    doc = offset(pid, "25.00", now)
    assert (doc["tier"], doc["tier_discount_cny"], doc["offset_cny"], doc["points"]) == ("gold", "5.00", "10.00", 100)
    assert doc["payable_cny"] == "10.00"


def test_void_releases_and_a_voided_offset_cannot_commit(db: Db, now: datetime) -> None:
    pid = patient_with(now, 0)
    doc = offset(pid, "30.00", now)
    assert doc["points"] == 100
    assert settle("void", doc["id"], now)["status"] == "voided"
    assert settle("void", doc["id"], now)["status"] == "voided"
    assert points(pid, now)["available"] == 100
    with pytest.raises(FeeOffsetStateError):
        settle("commit", doc["id"], now)


def test_an_unsettled_hold_expires(db: Db, now: datetime) -> None:
    pid = patient_with(now, 0)
    doc = offset(pid, "30.00", now)
    late = now + timedelta(minutes=16)
    with read_tx() as session:
        assert offsets.get(session, doc["id"], late)["status"] == "expired"  # before the job, too
    with pytest.raises(FeeOffsetStateError):
        settle("commit", doc["id"], late)
    assert registry.run("expire-holds", late)["holds"] == 1
    assert points(pid, late)["available"] == 100
    assert settle("void", doc["id"], late)["status"] == "expired"


def test_nothing_to_offset_answers_without_a_hold(db: Db, now: datetime) -> None:
    pid = patient_with(now, 0)
    first = offset(pid, "30.00", now)
    settle("commit", first["id"], now)
    doc = offset(pid, "30.00", now)  # nothing left
    assert (doc["status"], doc["points"], doc["offset_cny"], doc["expires_at"]) == ("none", 0, "0.00", None)
    assert settle("commit", doc["id"], now)["status"] == "none"


def test_refund_after_commit_returns_the_points(db: Db, now: datetime) -> None:
    pid = patient_with(now, 0)
    doc = offset(pid, "30.00", now)
    settle("commit", doc["id"], now)
    assert points(pid, now)["balance"] == 0
    assert settle("refund", doc["id"], now + timedelta(hours=1))["status"] == "refunded"
    assert settle("refund", doc["id"], now + timedelta(hours=1))["status"] == "refunded"
    assert points(pid, now)["balance"] == 100
    with pytest.raises(FeeOffsetStateError):
        settle("refund", offset(pid, "30.00", now)["id"], now)  # held, not committed
    assert_ledger_intact()


def test_the_same_key_answers_the_first_offset(db: Db, now: datetime) -> None:
    pid = patient_with(now, 0)
    first = offset(pid, "30.00", now, key="bill-7")
    assert offset(pid, "30.00", now, key="bill-7")["id"] == first["id"]
    assert points(pid, now)["held"] == 100
    with pytest.raises(IdempotencyConflictError):
        offset(pid, "31.00", now, key="bill-7")
    with pytest.raises(FeeOffsetNotFoundError):
        settle("commit", "not-an-id", now)
    with pytest.raises(FeeOffsetNotFoundError):
        settle("commit", "00000000-0000-7000-8000-000000000000", now)


def test_reconciliation_lists_every_state_and_flags_orphans(db: Db, now: datetime) -> None:
    a, b = "00000000-0000-7000-8000-0000000000aa", "00000000-0000-7000-8000-0000000000bb"
    pid = patient_with(now, 2000)
    committed = offset(pid, "20.00", now, institution_id=a, reference="A-1")
    settle("commit", committed["id"], now)
    voided = offset(pid, "20.00", now, institution_id=a, reference="A-2")
    settle("void", voided["id"], now)
    offset(pid, "20.00", now, institution_id=a, reference="A-3")  # never settled: expires
    unreferenced = offset(pid, "40.00", now, institution_id=b)
    settle("commit", unreferenced["id"], now)
    day = now.astimezone(registry.get_settings().tz).date()
    with read_tx() as session:
        report = offsets.reconciliation(session, day, None, now + timedelta(hours=1))
    by = {g["institution_id"]: g for g in report["institutions"]}
    assert by[a]["totals"] == {"committed": {"count": 1, "points": 100, "offset_cny": "10.00"},
                               "expired": {"count": 1, "points": 100, "offset_cny": "10.00"},
                               "voided": {"count": 1, "points": 100, "offset_cny": "10.00"}}
    assert by[a]["orphans"] == 1
    assert [i["reference"] for i in by[a]["items"] if i["orphan"]] == ["A-3"]
    assert by[b]["orphans"] == 1  # a commit without the HIS's bill number
    with read_tx() as session:
        only_b = offsets.reconciliation(session, day, b, now)
        yesterday = offsets.reconciliation(session, day - timedelta(days=1), None, now)
    assert [g["institution_id"] for g in only_b["institutions"]] == [b]
    assert yesterday["institutions"] == []


def test_committed_offsets_count_against_the_budget(db: Db, now: datetime) -> None:
    pid = patient_with(now, 0)
    doc = offset(pid, "30.00", now)
    with read_tx() as session:
        assert budget.status(session, now)["used_cny"] == "0.00"
    settle("commit", doc["id"], now)
    with read_tx() as session:
        assert budget.status(session, now)["used_cny"] == "10.00"
    settle("refund", doc["id"], now)
    with read_tx() as session:
        assert budget.status(session, now)["used_cny"] == "0.00"


def test_no_offset_is_quoted_past_a_hard_stop_and_a_commit_is_never_refused(db: Db, now: datetime) -> None:
    load_budget(now, cny="55.00", hard_stop=True)
    pid = patient_with(now, 2000)
    held = offset(pid, "40.00", now)  # 20.00 quoted while the budget has room
    redeem(pid, "pharmacy_50", now)  # 50 of 55 used
    assert settle("commit", held["id"], now)["status"] == "committed"  # the payment went through
    with read_tx() as session:
        assert budget.status(session, now)["used_cny"] == "70.00"
    none = offset(pid, "40.00", now)
    assert (none["status"], none["points"], none["reason"]) == ("none", 0, "rewards.budget_exhausted")
