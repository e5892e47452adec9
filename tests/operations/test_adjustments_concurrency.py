"""Adjustments under real concurrency (threads, own connections, real commits; both databases):
many adjustments of one operator at once never pass the daily cap; two approvers of one
pending adjustment at once — exactly one posts it; the same idempotency key at once — one
adjustment. The ledger verifies after each."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import func, select

from carepoints.audit.service import Actor
from carepoints.events.schemas import PatientRef
from carepoints.kit.db import read_tx, table, write_tx
from carepoints.kit.errors import AppError
from carepoints.ledger.models import Transfer
from carepoints.operations import adjustments
from carepoints.operations.models import Adjustment, AdjustmentOperatorDay
from tests.conftest import Db
from tests.helpers import assert_ledger_intact, balance, enrol
from tests.locks import errors, oks, race

DESKS = [Actor("staff", f"0190a5f0-0000-7000-8000-0000000001{i:02d}", "frontdesk") for i in range(10, 16)]


def _create(actor: Actor, pid: str, points: int, now: datetime, key: str | None = None) -> dict[str, Any]:
    with write_tx() as s:
        doc, _created = adjustments.create(s, actor, now, ref=PatientRef(id=pid), points=points,
                                           reason_code="goodwill", note="n", idempotency_key=key)
        return doc


def _approve(adjustment_id: str, actor: Actor, now: datetime) -> dict[str, Any]:
    with write_tx() as s:
        return adjustments.approve(s, adjustment_id, actor, now)


def _adjust_transfers(pid: str) -> int:
    with read_tx() as s:
        return int(s.execute(select(func.count()).select_from(Transfer).where(Transfer.kind == "adjust")).scalar()
                   or 0)


def test_one_operator_in_parallel_never_passes_the_daily_cap(racing: Db, now: datetime) -> None:
    pids = [enrol(now) for _ in range(3)]
    desk = DESKS[0]
    _create(desk, pids[0], 100, now)  # the counter row exists: racers queue on it
    results = race(racing, [partial(_create, desk, pids[i % 3], 150, now) for i in range(8)])
    won, lost = oks(results), errors(results)
    assert len(won) == 6  # 100 + 6 × 150 = 1000, the cap
    assert len(lost) == 2
    assert all(isinstance(e, AppError) and e.code == "adjustments.daily_cap_reached" for e in lost)
    with read_tx() as s:
        used = s.execute(select(AdjustmentOperatorDay.used).where(
            AdjustmentOperatorDay.operator_id == desk.id)).scalar_one()
        made = s.execute(select(func.count()).select_from(Adjustment)).scalar_one()
    assert (used, made) == (1000, 7)
    assert sum(balance(p, now) for p in pids) == 300 + 100 + 6 * 150
    assert_ledger_intact()


def test_two_operators_racing_keep_their_own_caps(racing: Db, now: datetime) -> None:
    pid = enrol(now)
    fns = [partial(_create, DESKS[i % 2], pid, 190, now) for i in range(12)]
    results = race(racing, fns)
    lost = errors(results)
    assert len(oks(results)) == 10  # 5 × 190 = 950 each; a sixth would pass 1000
    assert [getattr(e, "code", None) for e in lost] == ["adjustments.daily_cap_reached"] * 2
    assert balance(pid, now) == 100 + 10 * 190
    assert_ledger_intact()


def test_two_approvers_at_once_post_it_once(racing: Db, now: datetime) -> None:
    pid = enrol(now)
    doc = _create(DESKS[0], pid, 500, now)
    assert doc["status"] == "pending"
    results = race(racing, [partial(_approve, doc["id"], a, now) for a in DESKS[1:5]],
                   lock=(table(Adjustment), [doc["id"]]))
    [won] = oks(results)
    assert won["status"] == "posted"
    assert [getattr(e, "code", None) for e in errors(results)] == ["adjustments.not_pending"] * 3
    assert balance(pid, now) == 600
    assert _adjust_transfers(pid) == 1
    assert_ledger_intact()


def test_the_same_idempotency_key_at_once_makes_one_adjustment(racing: Db, now: datetime) -> None:
    pid = enrol(now)
    results = race(racing, [partial(_create, DESKS[0], pid, 50, now, "same-key") for _ in range(5)])
    docs = oks(results)
    assert len(docs) == 5
    assert len({d["id"] for d in docs}) == 1
    assert balance(pid, now) == 150
    with read_tx() as s:
        used = s.execute(select(AdjustmentOperatorDay.used)).scalar_one()
    assert used == 50
    assert_ledger_intact()
