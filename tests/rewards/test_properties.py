"""Hypothesis drives random sequences of mall use cases — redemptions (from own
and pooled household wallets), refunds, verifications, fee offsets with their
commits, voids, expiries and 退号, earnings into the pool, a member leaving,
point expiry — on SQLite and PostgreSQL, and after every sequence checks that the
ledger verifies (its seven invariants) and that the mall's own counters agree
with its records: stock, per-patient usage and the year's budget."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from carepoints.audit.service import Actor
from carepoints.enrolment import households
from carepoints.jobs import registry
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.errors import AppError
from carepoints.rewards import repository as repo
from tests.conftest import Db
from tests.helpers import assert_ledger_intact, event, ingest_one
from tests.rewards.kit import add_reward, offset, patient_with, redeem, refund, settle, verify

MAX_OPS = 20
ACTOR = Actor("system", "tests.rewards")
who = st.integers(min_value=0, max_value=3)
pick = st.integers(min_value=0, max_value=1000)
OPERATION = st.one_of(
    st.tuples(st.just("redeem"), who, st.integers(min_value=0, max_value=2), st.integers(min_value=1, max_value=3)),
    st.tuples(st.just("refund"), pick),
    st.tuples(st.just("verify"), pick),
    st.tuples(st.just("offset"), who, st.integers(min_value=0, max_value=8000)),
    st.tuples(st.just("settle"), pick, st.sampled_from(["commit", "void", "refund"])),
    st.tuples(st.just("wait"), st.integers(min_value=1, max_value=60 * 24 * 40)),
    st.tuples(st.just("pool"), who, st.integers(min_value=0, max_value=2), st.integers(min_value=1, max_value=2)),
    st.tuples(st.just("earn"), who),
    st.tuples(st.just("leave"), who),
)


def _counters_agree() -> None:
    with read_tx() as session:
        conn = session.connection()
        r = repo.redemptions
        live = dict(conn.execute(select(r.c.reward_id, func.sum(r.c.quantity)).where(r.c.status == "redeemed")
                                 .group_by(r.c.reward_id)).all())
        for rid, total, used in conn.execute(select(repo.rewards.c.id, repo.rewards.c.stock_total,
                                                    repo.rewards.c.stock_used)):
            if total is not None:
                assert used == live.get(rid, 0), rid
                assert used <= total
        usage = {(a, b, c): n for a, b, c, n in conn.execute(select(repo.usage))}
        want: dict[tuple[str, str, str], int] = defaultdict(int)
        for rid, pid, key, q in conn.execute(select(r.c.reward_id, r.c.patient_id, r.c.period_key, r.c.quantity)
                                             .where(r.c.status == "redeemed", r.c.period_key.is_not(None))):
            want[(rid, pid, key)] += q
        assert {k: v for k, v in usage.items() if v} == dict(want)
        cost = conn.execute(select(func.coalesce(func.sum(r.c.cost_fen), 0)).where(r.c.status == "redeemed")).scalar()
        o = repo.offsets
        offset_cost = conn.execute(select(func.coalesce(func.sum(o.c.offset_fen), 0))
                                   .where(o.c.status == "committed")).scalar()
        used_fen = conn.execute(select(func.coalesce(func.sum(repo.budget.c.used_fen), 0))).scalar()
        assert used_fen == cost + offset_cost


@given(ops=st.lists(OPERATION, min_size=8, max_size=MAX_OPS))
def test_the_mall_keeps_its_books(db: Db, now: datetime, ops: list[tuple[Any, ...]]) -> None:
    clock = now
    pids = [patient_with(clock, 200 * (i + 1)) for i in range(4)]
    items = [add_reward(clock, points=60, stock=3)["code"], add_reward(clock, points=40, cost_cny="5.00",
                                                                       limit={"count": 2, "period": "month"})["code"],
             add_reward(clock, points=150, cost_cny="12.50", code_valid_days=10)["code"]]
    redemptions: list[dict[str, Any]] = []
    fee_offsets: list[str] = []
    with write_tx() as session:  # patients 0 (head) and 1 share a pooled wallet; 1 may redeem from it
        hid = households.create(session, ACTOR, "测试家庭", pids[0], clock)["id"]
        households.add_member(session, ACTOR, hid, pids[1], can_redeem=True, now=clock)
    for op in ops:
        try:
            if op[0] == "redeem":
                redemptions.append(redeem(pids[op[1]], items[op[2]], clock, quantity=op[3]))
            elif op[0] == "refund" and redemptions:
                refund(redemptions[op[1] % len(redemptions)]["id"], clock)
            elif op[0] == "verify" and redemptions:
                codes = redemptions[op[1] % len(redemptions)]["coupons"]
                if codes:
                    verify(codes[op[1] % len(codes)]["code"], clock)
            elif op[0] == "offset":
                fee_offsets.append(offset(pids[op[1]], f"{op[2] / 100:.2f}", clock, key=uuid.uuid4().hex)["id"])
            elif op[0] == "settle" and fee_offsets:
                settle(op[2], fee_offsets[op[1] % len(fee_offsets)], clock)
            elif op[0] == "pool":
                redemptions.append(redeem(pids[op[1]], items[op[2]], clock, quantity=op[3], household=True))
            elif op[0] == "earn":
                ingest_one(clock, event(pids[op[1]], "referral.visit", clock,
                                        {"referral_id": uuid.uuid4().hex, "from_institution": "社区中心"}))
            elif op[0] == "leave" and op[1] == 1:
                with write_tx() as session:
                    households.leave(session, ACTOR, hid, pids[1], clock)
            elif op[0] == "wait":
                clock += timedelta(minutes=op[1])
                registry.run("expire-holds", clock)
        except AppError:
            pass  # a refusal (no points, no stock, over a limit, a used code, a closed hold) changes nothing
        _counters_agree()
    registry.run("expire-points", clock + timedelta(days=800))
    assert_ledger_intact()
