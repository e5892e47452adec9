"""Household wallets (家庭积分): pooled earnings with per-member attribution and
per-member caps, spending from the pool, leaving with the attributed unspent
share, reversals that follow the points, and a leave racing the pool."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from carepoints.audit.service import Actor
from carepoints.enrolment import households
from carepoints.events import service as events
from carepoints.kit.db import read_tx, write_tx
from carepoints.ledger import service as ledger
from carepoints.ledger.errors import InsufficientPointsError
from carepoints.ledger.models import Account, Lot, Transfer
from carepoints.patients.errors import (
    AlreadyInHouseholdError,
    HeadMustStayError,
    NotHouseholdMemberError,
    RedeemNotAllowedError,
)
from tests.conftest import Db
from tests.helpers import bp, enrol, event, ingest, ingest_one, points
from tests.ledger.test_concurrency import assert_verified
from tests.locks import errors, oks, race

_acc = Account.__table__
_tr = Transfer.__table__
_lots = Lot.__table__
STAFF = Actor("staff", "0190a5f0-0000-7000-8000-0000000000aa", "frontdesk")


def household(now: datetime, head: str, *members: str, can_redeem: bool = True) -> str:
    with write_tx() as session:
        hid = str(households.create(session, STAFF, "张家", head, now)["id"])
        for pid in members:
            households.add_member(session, STAFF, hid, pid, can_redeem=can_redeem, now=now)
    return hid


def pool(hid: str) -> str:
    with read_tx() as session:
        return ledger.household_wallet(session, hid)


def summary(hid: str) -> dict[str, Any]:
    with read_tx() as session:
        return ledger.household_summary(session, hid)


def leave(hid: str, pid: str, now: datetime) -> dict[str, Any]:
    with write_tx() as session:
        return households.leave(session, STAFF, hid, pid, now)


def spend(wid: str, pts: int, now: datetime) -> Any:
    with write_tx() as session:
        return ledger.spend(session, wid, pts, now)


def referral(pid: str, at: datetime) -> dict[str, Any]:
    return event(pid, "referral.visit", at, {"referral_id": uuid.uuid4().hex, "from_institution": "社区中心"})


def lots_of(wid: str) -> list[dict[str, Any]]:
    with read_tx() as session:
        return [dict(r) for r in session.connection().execute(
            select(_lots).where(_lots.c.wallet_id == wid).order_by(_lots.c.expires_at, _lots.c.id)).mappings()]


def balance(pid: str, now: datetime) -> int:
    return int(points(pid, now)["balance"])


# --- earning into the pool --------------------------------------------------------------

def test_members_earnings_credit_the_pool_attributed_and_capped_per_member(db: Db, now: datetime) -> None:
    head, member = enrol(now), enrol(now)
    hid = household(now, head, member)
    day = now - timedelta(days=1)
    for pid in (head, member):  # three readings each: the daily cap of 20 holds per member
        outs = ingest(now, *[event(pid, "health.measurement", day + timedelta(minutes=i), bp()) for i in range(3)])
        assert [sum(a["points"] for a in o["awards"]) for o in outs] == [60, 10, 0]  # type: ignore[index]
    s = summary(hid)
    assert s["balance"] == 2 * (50 + 20)  # each: first check-in 50 + the cap of 20
    assert s["attributed"] == {head: 70, member: 70}
    with read_tx() as session:
        checkin = session.connection().execute(select(_tr.c.member_id, _tr.c.amount).where(
            _tr.c.wallet_id == pool(hid), _tr.c.rule_code == "health_checkin")).all()
    assert sorted(checkin) == sorted([(head, 10), (head, 10), (member, 10), (member, 10)])
    # their welcome points predate the household and stay their own
    assert (balance(head, now), balance(member, now)) == (100, 100)
    view = points(member, now)["household"]
    assert view == {"id": hid, "balance": 140, "available": 140, "attributed": 70}
    assert points(enrol(now), now)["household"] is None
    with read_tx() as session:  # tiers count what a member earned into the pool as theirs
        earned = ledger.earned_by(session, [head, member], now - timedelta(days=30))
    assert earned == {head: 170, member: 170}
    assert_verified()


def test_the_outcome_balance_is_the_pools(db: Db, now: datetime) -> None:
    head = enrol(now)
    household(now, head)
    out = ingest_one(now, referral(head, now - timedelta(hours=1)))
    assert out["balance"] == 200


# --- spending and redeeming ---------------------------------------------------------------

def test_spending_wallet_needs_an_active_member_allowed_to_redeem(db: Db, now: datetime) -> None:
    head, kid, outsider = enrol(now), enrol(now), enrol(now)
    hid = household(now, head, kid, can_redeem=False)
    with write_tx() as session:
        assert ledger.spending_wallet(session, head, household=True, now=now) == pool(hid)
        assert ledger.spending_wallet(session, kid, household=False, now=now) == ledger.wallet_of(session, kid)
        with pytest.raises(RedeemNotAllowedError) as denied:
            ledger.spending_wallet(session, kid, household=True, now=now)
        assert denied.value.status_code == 403
        with pytest.raises(NotHouseholdMemberError) as stranger:
            ledger.spending_wallet(session, outsider, household=True, now=now)
        assert stranger.value.status_code == 409


def test_a_members_penalty_takes_their_own_lots_first(db: Db, now: datetime) -> None:
    head, member = enrol(now), enrol(now)
    hid = household(now, head, member)
    ingest_one(now, referral(head, now - timedelta(days=9)))  # expires first
    ingest_one(now, referral(member, now - timedelta(days=2)))
    at = now - timedelta(days=1)
    ingest_one(now, event(member, "appointment.no_show", at, {"appointment_id": "A1", "slot_start": at.isoformat()}))
    assert summary(hid)["attributed"] == {head: 200, member: 150}
    assert_verified()


# --- leaving ---------------------------------------------------------------------------------

def test_leaving_takes_back_exactly_the_attributed_unspent_share(db: Db, now: datetime) -> None:
    """Spending consumes the pool first-expiring first whoever earned it: the head's older lot
    goes first, then 50 of the member's; the member leaves with the 150 left of theirs."""
    head, member = enrol(now), enrol(now)
    hid = household(now, head, member)
    wid = pool(hid)
    ingest_one(now, referral(head, now - timedelta(days=10)))
    m_at = now - timedelta(days=5)
    earned = ingest_one(now, referral(member, m_at))
    spend(wid, 250, now)
    assert summary(hid)["attributed"] == {member: 150}
    source = next(lot for lot in lots_of(wid) if lot["member_id"] == member)

    moved = leave(hid, member, now)
    assert (moved["points"], moved["balance"]) == (150, 250)
    assert (balance(member, now), summary(hid)["balance"]) == (250, 0)
    new = [lot for lot in lots_of(ledger_wallet(member)) if lot["moved_from"] is not None]
    assert len(new) == 1
    assert (new[0]["moved_from"], new[0]["amount"], new[0]["remaining"]) == (source["id"], 150, 150)
    assert (new[0]["expires_at"], new[0]["earned_at"]) == (source["expires_at"], source["earned_at"])
    assert points(member, now)["household"] is None
    # from now on the member earns for themselves again
    assert ingest_one(now, referral(member, now - timedelta(hours=1)))["balance"] == 450
    assert summary(hid)["balance"] == 0
    # revoking the pooled earning follows its points: 150 from the member, 50 (spent) as the pool's debt
    with write_tx() as session:
        result = events.revoke(session, now=now, reason="HIS correction", event_id=earned["event_id"])
    assert result["reversed"] == [{"rule": "referral", "points": -200}]
    assert balance(member, now) == 300
    s = summary(hid)
    assert (s["balance"], s["debt"]) == (-50, 50)
    assert_verified()


def test_leaving_leaves_held_points_and_debt_with_the_household(db: Db, now: datetime) -> None:
    head, member = enrol(now), enrol(now)
    hid = household(now, head, member)
    wid = pool(hid)
    ingest_one(now, referral(member, now - timedelta(days=3)))
    with write_tx() as session:
        ledger.hold(session, wid, 120, now, ttl=timedelta(minutes=15))
    assert leave(hid, member, now)["points"] == 80
    s = summary(hid)
    assert (s["balance"], s["held"], s["attributed"]) == (120, 120, {member: 120})
    assert_verified()


def test_the_last_member_out_takes_every_unheld_lot(db: Db, now: datetime) -> None:
    head, member = enrol(now), enrol(now)
    hid = household(now, head, member)
    ingest_one(now, referral(head, now - timedelta(days=3)))
    ingest_one(now, referral(member, now - timedelta(days=2)))
    leave(hid, member, now)
    newcomer = enrol(now)
    with write_tx() as session:
        households.add_member(session, STAFF, hid, newcomer, can_redeem=False, now=now)
    with pytest.raises(HeadMustStayError):
        leave(hid, head, now)
    assert leave(hid, newcomer, now)["points"] == 0
    assert leave(hid, head, now)["points"] == 200
    assert (balance(head, now), summary(hid)["balance"]) == (300, 0)
    assert_verified()


def test_one_household_at_a_time(db: Db, now: datetime) -> None:
    a, b, c = enrol(now), enrol(now), enrol(now)
    first = household(now, a, b)
    with pytest.raises(AlreadyInHouseholdError):
        household(now, c, b)
    with pytest.raises(NotHouseholdMemberError), write_tx() as session:
        households.leave(session, STAFF, first, c, now)
    leave(first, b, now)
    second = household(now, c, b)
    ingest_one(now, referral(b, now - timedelta(hours=2)))
    assert (summary(first)["balance"], summary(second)["attributed"]) == (0, {b: 200})
    assert_verified()


def ledger_wallet(pid: str) -> str:
    with read_tx() as session:
        return ledger.wallet_of(session, pid)


# --- concurrency: a member leaving while the pool is busy -----------------------------------

def test_a_member_leaving_while_others_earn_and_spend_on_the_pool(db: Db, now: datetime) -> None:
    """Real commits, released together (queued behind the pool's row lock on PostgreSQL).
    Whatever the order, the ledger verifies, nothing of the leaver's stays attributed in the
    pool, and every point is where its owner's postings went."""
    for _round in range(3):
        head, member, other = enrol(now), enrol(now), enrol(now)
        hid = household(now, head, member, other)
        wid = pool(hid)
        ingest(now, referral(member, now - timedelta(days=4)), referral(head, now - timedelta(days=6)))
        racers = [lambda: leave(hid, member, now),  # noqa: B023
                  lambda: ingest_one(now, referral(member, now - timedelta(days=1))),  # noqa: B023
                  lambda: ingest_one(now, referral(other, now - timedelta(days=1))),  # noqa: B023
                  lambda: spend(wid, 150, now),  # noqa: B023
                  lambda: spend(wid, 150, now)]  # noqa: B023
        results = race(db, racers, lock=(_acc, [wid]))
        assert all(isinstance(e, InsufficientPointsError) for e in errors(results)), results
        assert [kind for kind, _v in results[:3]] == ["ok"] * 3, results
        spent = 150 * sum(1 for kind, _v in results[3:] if kind == "ok")
        s = summary(hid)
        assert member not in s["attributed"]
        assert s["balance"] + balance(member, now) == 100 + 200 + 200 + 200 + 200 - spent
        assert len(oks(results)) >= 4
        assert_verified()
