"""The rewards mall through its services, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from carepoints.kit.db import read_tx, write_tx
from carepoints.ledger import service as ledger
from carepoints.ledger.errors import InsufficientPointsError
from carepoints.rewards import budget, service
from carepoints.rewards.errors import (
    BudgetExhaustedError,
    CouponExpiredError,
    CouponNotFoundError,
    CouponRefundedError,
    CouponUsedError,
    CouponUsedRefundError,
    IdempotencyConflictError,
    LimitReachedError,
    NotRedeemableError,
    OutOfStockError,
    RewardInactiveError,
    RewardNotValidError,
)
from carepoints.rewards.models import BudgetYear
from carepoints.rules import service as rules
from carepoints.rules.errors import ProgrammeInvalidError
from tests.conftest import Db
from tests.helpers import assert_ledger_intact, balance, event, ingest_one, points
from tests.rewards.kit import (
    add_reward,
    audit_actions,
    change_reward,
    load_budget,
    outbox,
    patient_with,
    redeem,
    refund,
    reward_row,
    usage,
    verify,
)


def test_the_default_programme_ships_the_catalogue(db: Db, now: datetime) -> None:
    with read_tx() as session:
        items = {i["code"]: i for i in service.catalogue(session, None, now)["items"]}
    assert {"fee_offset", "checkup_80", "pharmacy_50", "expert_extra_slot", "priority_exam",
            "lecture_seat"} <= items.keys()
    assert items["fee_offset"]["details"]["cny"] == "10.00"
    assert items["fee_offset"]["points"] == 100
    assert (items["checkup_80"]["points"], items["checkup_80"]["details"]["discount_share"]) == (500, "0.80")
    assert (items["pharmacy_50"]["points"], items["pharmacy_50"]["kind"]) == (1000, "pharmacy_voucher")
    assert items["lecture_seat"]["stock"] == 200
    assert items["checkup_80"]["stock"] is None


def test_a_redemption_spends_issues_a_code_and_is_audited(db: Db, now: datetime) -> None:
    pid = patient_with(now, 400)
    doc = redeem(pid, "checkup_80", now)
    assert (doc["points"], doc["status"], doc["reward"]) == (500, "redeemed", "checkup_80")
    code = doc["coupon_code"]
    assert len(code) == 12
    assert code.isalnum()
    assert not set(code) & set("01IO")
    assert balance(pid, now) == 0
    assert audit_actions(doc["id"]) == ["rewards:redemption:create"]
    assert {"patient_id": pid, "redemption_id": doc["id"]} in outbox("rewards.redeemed")
    entry = points(pid, now)
    assert entry["balance"] == 0
    assert entry["available"] == 0
    assert_ledger_intact()


def test_codes_are_unguessable_and_unique(db: Db, now: datetime) -> None:
    pid = patient_with(now, 1000)
    doc = redeem(pid, "lecture_seat", now)
    other = redeem(patient_with(now, 0), "lecture_seat", now)
    assert doc["coupon_code"] != other["coupon_code"]
    codes = redeem(pid, "priority_exam", now, quantity=2)["coupons"]
    assert len({c["code"] for c in codes}) == 2


def test_the_same_key_answers_the_first_redemption(db: Db, now: datetime) -> None:
    pid = patient_with(now, 400)
    first = redeem(pid, "priority_exam", now, key="k-1")
    again = redeem(pid, "priority_exam", now, key="k-1")
    assert again["id"] == first["id"]
    assert again["coupon_code"] == first["coupon_code"]
    assert balance(pid, now) == 200
    with pytest.raises(IdempotencyConflictError):
        redeem(pid, "lecture_seat", now, key="k-1")


def test_not_enough_points_changes_nothing(db: Db, now: datetime) -> None:
    pid = patient_with(now, 0)
    before = reward_row("lecture_seat")["stock_used"]
    with pytest.raises(InsufficientPointsError):
        redeem(pid, "priority_exam", now)  # 300 > 100
    assert balance(pid, now) == 100
    assert usage("priority_exam", pid) == 0
    assert reward_row("lecture_seat")["stock_used"] == before


def test_a_usage_cap_of_one_blocks_the_second_use_until_a_refund(db: Db, now: datetime) -> None:
    pid = patient_with(now, 1000)
    first = redeem(pid, "checkup_80", now)  # limit 1 a year
    with pytest.raises(LimitReachedError) as err:
        redeem(pid, "checkup_80", now)
    assert err.value.code == "rewards.limit_reached"
    refund(first["id"], now)
    assert usage("checkup_80", pid) == 0
    assert redeem(pid, "checkup_80", now)["status"] == "redeemed"


def test_a_quantity_over_the_limit_is_refused_whole(db: Db, now: datetime) -> None:
    pid = patient_with(now, 4000)
    with pytest.raises(LimitReachedError):
        redeem(pid, "pharmacy_50", now, quantity=3)  # 2 a month
    assert balance(pid, now) == 4100
    redeem(pid, "pharmacy_50", now, quantity=2)
    assert balance(pid, now) == 2100


def test_limit_periods_follow_the_local_calendar(db: Db, now: datetime) -> None:
    pid = patient_with(now, 1000)
    seat = add_reward(now, points=10, limit={"count": 1, "period": "day"})["code"]
    late = datetime(2026, 6, 15, 15, 59, 59, tzinfo=UTC)  # 23:59:59 in Shanghai
    redeem(pid, seat, late)
    with pytest.raises(LimitReachedError):
        redeem(pid, seat, late)
    redeem(pid, seat, late + timedelta(seconds=1))  # the next local day


def test_validity_dates_include_both_ends(db: Db, now: datetime) -> None:
    pid = patient_with(now, 200)
    day = add_reward(now, points=10, valid_from="2026-06-15", valid_to="2026-06-16")["code"]
    first_second = datetime(2026, 6, 14, 16, 0, tzinfo=UTC)  # 2026-06-15 00:00 local
    last_second = datetime(2026, 6, 16, 15, 59, 59, tzinfo=UTC)  # 2026-06-16 23:59:59 local
    redeem(pid, day, first_second)
    redeem(pid, day, last_second)
    for outside in (first_second - timedelta(seconds=1), last_second + timedelta(seconds=1)):
        with pytest.raises(RewardNotValidError):
            redeem(pid, day, outside)
    with read_tx() as session:
        listed = {i["code"] for i in service.catalogue(session, None, last_second + timedelta(seconds=1))["items"]}
    assert day not in listed


def test_tier_prices(db: Db, now: datetime) -> None:
    pid = patient_with(now, 5000)  # earned 5,100 in the last 12 months: gold
    assert points(pid, now)["tier"] == "gold"
    with read_tx() as session:
        items = {i["code"]: i for i in service.catalogue(session, pid, now)["items"]}
    assert (items["expert_extra_slot"]["points"], items["expert_extra_slot"]["base_points"]) == (600, 800)
    assert redeem(pid, "expert_extra_slot", now)["points"] == 600


def test_refund_after_partial_expiry_restores_only_the_unexpired_part(db: Db, now: datetime) -> None:
    old = now - timedelta(days=730) + timedelta(days=5)  # this lot expires in 5 days
    pid = patient_with(now, 200, at=old)  # 200 expiring + 100 welcome
    spent = redeem(pid, "priority_exam", now)  # 300: 200 from the expiring lot, 100 from the welcome lot
    later = now + timedelta(days=10)
    back = refund(spent["id"], later)
    assert (back["status"], back["refunded_points"]) == ("refunded", 100)
    assert balance(pid, later) == 100
    kinds = [e["kind"] for e in points_entries(pid)][:2]
    assert kinds == ["expiry", "refund"]
    assert refund(spent["id"], later)["refunded_points"] == 100  # again: the same answer
    assert balance(pid, later) == 100
    assert_ledger_intact()


def points_entries(pid: str) -> list[dict[str, object]]:
    with read_tx() as session:
        return list(ledger.entries(session, pid, limit=20, before=None)["items"])


def test_refund_returns_the_stock(db: Db, now: datetime) -> None:
    pid = patient_with(now, 200)
    seat = add_reward(now, points=10, stock=1)["code"]
    first = redeem(pid, seat, now)
    with pytest.raises(OutOfStockError):
        redeem(pid, seat, now)
    refund(first["id"], now)
    assert reward_row(seat)["stock_used"] == 0
    redeem(pid, seat, now)


def test_earning_suspension_does_not_block_spending(db: Db, now: datetime) -> None:
    pid = patient_with(now, 400)
    for i in range(3):
        ingest_one(now, event(pid, "appointment.no_show", now - timedelta(days=3 - i),
                              {"appointment_id": uuid.uuid4().hex,
                               "slot_start": (now - timedelta(days=3 - i)).isoformat()}))
    assert points(pid, now)["suspended_until"] is not None
    assert balance(pid, now) == 350
    assert redeem(pid, "priority_exam", now)["points"] == 300


def test_fee_offsets_inactive_and_inactive_rewards_are_refused(db: Db, now: datetime) -> None:
    pid = patient_with(now, 200)
    with pytest.raises(NotRedeemableError):
        redeem(pid, "fee_offset", now)
    code = add_reward(now, points=10)["code"]
    change_reward(code, now, active=False)
    with pytest.raises(RewardInactiveError):
        redeem(pid, code, now)
    with read_tx() as session:
        assert code not in {i["code"] for i in service.catalogue(session, None, now)["items"]}


def test_verification_once_and_every_refusal(db: Db, now: datetime) -> None:
    pid = patient_with(now, 1000)
    doc = redeem(pid, "priority_exam", now, quantity=2)
    used, other = (c["code"] for c in doc["coupons"])
    shown = f"{used[:4]}-{used[4:8]} {used[8:].lower()}"  # as a person types it
    assert verify(shown, now)["status"] == "used"
    with pytest.raises(CouponUsedError):
        verify(used, now + timedelta(minutes=1))
    with pytest.raises(CouponNotFoundError):
        verify("ZZZZZZZZZZZZ", now)
    with pytest.raises(CouponUsedRefundError):
        refund(doc["id"], now)
    with pytest.raises(CouponExpiredError):
        verify(other, now + timedelta(days=32))  # valid 30 days
    fresh = redeem(pid, "lecture_seat", now)
    refund(fresh["id"], now)
    with pytest.raises(CouponRefundedError):
        verify(fresh["coupon_code"], now)
    cid = doc["coupons"][0]
    with read_tx() as session:
        assert service.coupon(session, cid["code"])["status"] == "used"


def test_programme_reload_updates_the_catalogue_but_never_below_what_is_redeemed(db: Db, now: datetime) -> None:
    pid = patient_with(now, 0)
    redeem(pid, "lecture_seat", now)
    raw = rules.default_programme_text().replace(b"stock: 200", b"stock: 0").replace(
        "健康讲座座位".encode(), "讲座座位".encode())
    with write_tx() as session:
        service.sync_catalogue(session, rules.parse_programme(raw), now)
    row = reward_row("lecture_seat")
    assert (row["stock_total"], row["stock_used"], row["names"]["zh"]) == (1, 1, "讲座座位")
    with write_tx() as session:  # start-up only adds what is missing
        service.sync_catalogue(session, rules.parse_programme(rules.default_programme_text()), now, only_missing=True)
    assert reward_row("lecture_seat")["names"]["zh"] == "讲座座位"


def test_budget_alerts_go_out_once_at_80_and_100_percent(db: Db, now: datetime) -> None:
    load_budget(now, share_of_revenue="0.005", annual_revenue_cny="40000")  # 200.00 CNY
    pids = [patient_with(now, 1000) for _ in range(5)]
    redeem(pids[0], "pharmacy_50", now)
    redeem(pids[1], "pharmacy_50", now)
    redeem(pids[2], "pharmacy_50", now)  # 150 = 75%
    assert outbox("rewards.budget_alert") == []
    redeem(pids[3], "pharmacy_50", now)  # 200 = 100%: both thresholds at once
    assert [a["percent"] for a in outbox("rewards.budget_alert")] == [80, 100]
    redeem(pids[4], "pharmacy_50", now)  # no hard stop: past 100%, no new alert
    assert [a["percent"] for a in outbox("rewards.budget_alert")] == [80, 100]
    with read_tx() as session:
        status = budget.status(session, now)
    assert (status["budget_cny"], status["used_cny"], status["remaining_cny"]) == ("200.00", "250.00", "-50.00")
    assert (status["used_share"], status["alerts"], status["hard_stop"]) == ("1.2500", [80, 100], False)
    assert status["liability"]["points"] == sum(balance(p, now) for p in pids)


def test_a_refund_gives_the_budget_back(db: Db, now: datetime) -> None:
    load_budget(now, cny="100.00", hard_stop=True)
    a, b, c = (patient_with(now, 1000) for _ in range(3))
    first = redeem(a, "pharmacy_50", now)
    redeem(b, "pharmacy_50", now)
    with pytest.raises(BudgetExhaustedError):
        redeem(c, "pharmacy_50", now)
    assert balance(c, now) == 1100  # refused whole
    refund(first["id"], now)
    redeem(c, "pharmacy_50", now)
    with read_tx() as session:
        assert budget.status(session, now)["used_cny"] == "100.00"
    next_year = datetime(2027, 1, 1, 0, 0, tzinfo=UTC)  # a new local year, a new budget
    assert redeem(a, "pharmacy_50", next_year)["status"] == "redeemed"


def test_a_refund_gives_back_to_the_year_it_was_counted_in(db: Db, now: datetime) -> None:
    pid = patient_with(now, 2000)
    eve = datetime(2026, 12, 31, 15, 0, tzinfo=UTC)  # 23:00 on new year's eve in Shanghai
    spent = redeem(pid, "pharmacy_50", eve)
    redeem(pid, "pharmacy_50", eve + timedelta(hours=2))  # 2027
    refund(spent["id"], eve + timedelta(hours=3))
    with read_tx() as session:
        rows = dict(session.connection().execute(select(BudgetYear.__table__.c.year,
                                                        BudgetYear.__table__.c.used_fen)).all())
    assert rows == {2026: 0, 2027: 5000}


def test_codes_are_valid_for_their_days_counting_today(db: Db, now: datetime) -> None:
    pid = patient_with(now, 600)
    code = redeem(pid, "priority_exam", now, quantity=2)["coupons"]  # 30 days from 2026-06-15 local
    last = datetime(2026, 7, 14, 15, 59, 59, tzinfo=UTC)  # 2026-07-14 23:59:59 local
    assert verify(code[0]["code"], last)["status"] == "used"
    with pytest.raises(CouponExpiredError):
        verify(code[1]["code"], last + timedelta(seconds=1))


def test_programme_files_with_bad_fee_offset_terms_are_refused(db: Db, now: datetime) -> None:
    for bad in (b'max_share: "abc"', b'max_share: "0"', b'max_share: "2"', b'step_points: "0"'):
        raw = rules.default_programme_text().replace(b'max_share: "0.50"', bad) if b"max_share" in bad else \
            rules.default_programme_text().replace(b'step_points: "10"', bad)
        with pytest.raises(ProgrammeInvalidError):
            rules.parse_programme(raw)
