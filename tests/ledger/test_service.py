"""Ledger use cases on a real database: FIFO lots, debt, holds, expiry,
refunds, revocations and the entries view."""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from carepoints.events import service as events
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.errors import AppError, ConflictError
from carepoints.ledger import service as ledger
from carepoints.ledger.accounts import SYSTEM_IDS, System
from carepoints.ledger.errors import (
    HoldClosedError,
    HoldNotFoundError,
    InsufficientPointsError,
    InvalidAmountError,
    WalletNotFoundError,
)
from carepoints.ledger.models import Account, Allocation, Hold, Lot, Transfer
from carepoints.ledger.posting import Posted
from tests.conftest import Db
from tests.helpers import assert_ledger_intact as assert_verified
from tests.helpers import balance, bp, enrol, event, ingest, ingest_one, points

_lots = Lot.__table__
_alloc = Allocation.__table__
_tr = Transfer.__table__
_acc = Account.__table__
_holds = Hold.__table__

TTL = timedelta(minutes=15)


# --- helpers ----------------------------------------------------------------------

def wallet(pid: str) -> str:
    with read_tx() as session:
        return ledger.wallet_of(session, pid)


def account(pid: str) -> dict[str, Any]:
    with read_tx() as session:
        row = session.connection().execute(select(_acc).where(_acc.c.patient_id == pid)).mappings().one()
        return dict(row)


def lots(pid: str) -> list[dict[str, Any]]:
    """The wallet's lots, first-expiring first."""
    wid = wallet(pid)
    with read_tx() as session:
        rows = session.connection().execute(
            select(_lots).where(_lots.c.wallet_id == wid).order_by(_lots.c.expires_at, _lots.c.id)).mappings()
        return [dict(r) for r in rows]


def lot_of(transfer_id: str) -> dict[str, Any]:
    """The lot a transfer created (a lot has the id of its transfer)."""
    with read_tx() as session:
        return dict(session.connection().execute(
            select(_lots).where(_lots.c.id == transfer_id)).mappings().one())


def allocations(transfer_id: str) -> list[tuple[str, int]]:
    with read_tx() as session:
        rows = session.connection().execute(
            select(_alloc.c.lot_id, _alloc.c.amount).where(_alloc.c.transfer_id == transfer_id)
            .order_by(_alloc.c.id))
        return [(r[0], r[1]) for r in rows]


def transfers(pid: str) -> list[dict[str, Any]]:
    """The wallet's transfers in chain order."""
    wid = wallet(pid)
    with read_tx() as session:
        rows = session.connection().execute(
            select(_tr).where(_tr.c.wallet_id == wid).order_by(_tr.c.seq)).mappings()
        return [dict(r) for r in rows]


def earn_transfer(event_id: str) -> dict[str, Any]:
    with read_tx() as session:
        return dict(session.connection().execute(
            select(_tr).where(_tr.c.event_id == event_id, _tr.c.kind == "earn")).mappings().one())


def summary(pid: str, now: datetime) -> dict[str, Any]:
    with read_tx() as session:
        return ledger.summary(session, pid, now, 30)


def spend(pid: str, pts: int, now: datetime) -> Posted:
    with write_tx() as session:
        return ledger.spend(session, ledger.wallet_of(session, pid), pts, now)


def hold(pid: str, pts: int, now: datetime, **kw: Any) -> dict[str, Any]:
    with write_tx() as session:
        return ledger.hold(session, ledger.wallet_of(session, pid), pts, now, ttl=kw.pop("ttl", TTL), **kw)


def commit(hold_id: str, now: datetime) -> dict[str, Any]:
    with write_tx() as session:
        return ledger.commit_hold(session, hold_id, now)


def void(hold_id: str, now: datetime) -> dict[str, Any]:
    with write_tx() as session:
        return ledger.void_hold(session, hold_id, now)


def refund(transfer_id: str, now: datetime) -> Posted:
    with write_tx() as session:
        return ledger.refund(session, transfer_id, now, expires_at=now + timedelta(days=730))


def expire(now: datetime) -> tuple[int, int]:
    with write_tx() as session:
        return ledger.expire_points(session, now)


def revoke(now: datetime, **key: str) -> dict[str, Any]:
    with write_tx() as session:
        return events.revoke(session, now=now, reason="HIS correction", **key)


def referral(pid: str, at: datetime, key: str | None = None) -> dict[str, Any]:
    return event(pid, "referral.visit", at, {"referral_id": uuid.uuid4().hex, "from_institution": "社区中心"},
                 key=key)


def no_show(pid: str, at: datetime) -> dict[str, Any]:
    return event(pid, "appointment.no_show", at, {"appointment_id": uuid.uuid4().hex, "slot_start": at.isoformat()})


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


# --- FIFO lots ----------------------------------------------------------------------

def test_lot_expires_24_calendar_months_after_occurred_at(db: Db, now: datetime) -> None:
    pid = enrol(now)
    at = utc(2025, 3, 31, 2, 30)
    out = ingest_one(now, referral(pid, at))
    lot = lot_of(earn_transfer(out["event_id"])["id"])
    assert (lot["amount"], lot["remaining"], lot["held"]) == (200, 200, 0)
    assert lot["earned_at"] == at
    assert lot["expires_at"] == utc(2027, 3, 31, 2, 30)
    welcome = lots(pid)[-1]
    assert welcome["expires_at"] == utc(2028, 6, 15, 2, 30)


def test_lot_expiry_uses_the_hospital_calendar_whatever_the_offset(db: Db, now: datetime) -> None:
    # 2024-02-29 07:00 in Shanghai is 2024-02-28 23:00 UTC: one instant, one local day (29 Feb).
    pid_local, pid_utc = enrol(now), enrol(now)
    local = datetime.fromisoformat("2024-02-29T07:00:00+08:00")
    a = ingest_one(now, referral(pid_local, local))
    b = ingest_one(now, referral(pid_utc, local.astimezone(UTC)))
    lot_a = lot_of(earn_transfer(a["event_id"])["id"])
    lot_b = lot_of(earn_transfer(b["event_id"])["id"])
    # 29 Feb 2024 (local) + 24 calendar months = 28 Feb 2026 07:00 local, for either spelling of the instant
    assert lot_a["expires_at"] == datetime.fromisoformat("2026-02-28T07:00:00+08:00")
    assert lot_b["expires_at"] == lot_a["expires_at"]


def test_spend_consumes_lots_first_expiring_first_and_records_allocations(db: Db, now: datetime) -> None:
    pid = enrol(now)
    # arrival order differs from expiry order
    ingest(now, referral(pid, utc(2026, 1, 10, 2, 30)), referral(pid, utc(2024, 9, 10, 2, 30)),
           referral(pid, utc(2025, 3, 10, 2, 30)))
    assert balance(pid, now) == 700
    old, mid, new, welcome = lots(pid)
    assert [lot["expires_at"] for lot in (old, mid, new, welcome)] == [
        utc(2026, 9, 10, 2, 30), utc(2027, 3, 10, 2, 30), utc(2028, 1, 10, 2, 30), utc(2028, 6, 15, 2, 30)]

    first = spend(pid, 450, now)
    assert (first.points, first.balance_after) == (-450, 250)
    assert allocations(first.id) == [(old["id"], 200), (mid["id"], 200), (new["id"], 50)]
    assert [lot["remaining"] for lot in lots(pid)] == [0, 0, 150, 100]

    second = spend(pid, 200, now)
    assert allocations(second.id) == [(new["id"], 150), (welcome["id"], 50)]
    assert [lot["remaining"] for lot in lots(pid)] == [0, 0, 0, 50]
    last = transfers(pid)[-1]
    assert last["id"] == second.id
    assert (last["from_account_id"], last["to_account_id"]) == (wallet(pid), SYSTEM_IDS[System.redemptions])
    assert (last["kind"], last["amount"], last["balance_after"]) == ("redeem", 200, 50)

    with pytest.raises(InsufficientPointsError):
        spend(pid, 51, now)
    assert balance(pid, now) == 50
    assert_verified()


def test_spend_on_unknown_wallet(db: Db, now: datetime) -> None:
    with write_tx() as session, pytest.raises(WalletNotFoundError):
        ledger.spend(session, str(uuid.uuid4()), 10, now)


@pytest.mark.parametrize("pts", [0, -5])
def test_spend_of_non_positive_points_is_a_typed_error(db: Db, now: datetime, pts: int) -> None:
    pid = enrol(now)
    with pytest.raises(AppError):
        spend(pid, pts, now)
    assert balance(pid, now) == 100


# --- debt -----------------------------------------------------------------------------

def test_penalty_beyond_the_lots_leaves_debt_that_later_earnings_repay_first(db: Db, now: datetime) -> None:
    pid = enrol(now)
    spend(pid, 80, now)
    welcome = lots(pid)[0]
    ingest_one(now, no_show(pid, now - timedelta(days=2)))
    assert [lot["remaining"] for lot in lots(pid)] == [0]
    assert (account(pid)["balance"], account(pid)["debt"]) == (-30, 30)
    out = ingest_one(now, no_show(pid, now - timedelta(days=1)))
    assert out["balance"] == -80
    view = points(pid, now)
    assert (view["balance"], view["available"], view["debt"], view["held"]) == (-80, 0, 80, 0)
    penalty = transfers(pid)[-1]
    assert (penalty["kind"], penalty["to_account_id"]) == ("penalty", SYSTEM_IDS[System.penalties])
    assert allocations(penalty["id"]) == []  # nothing left to consume: all debt
    assert welcome["remaining"] == 20

    with pytest.raises(InsufficientPointsError):
        spend(pid, 1, now)
    earned = ingest_one(now, referral(pid, now - timedelta(hours=1)))
    assert earned["balance"] == 120
    tr = earn_transfer(earned["event_id"])
    lot = lot_of(tr["id"])
    assert (lot["amount"], lot["remaining"]) == (200, 120)
    assert allocations(tr["id"]) == [(lot["id"], 80)]  # the repayment is recorded against the new lot
    assert account(pid)["debt"] == 0
    assert_verified()


def test_penalty_skips_held_lots(db: Db, now: datetime) -> None:
    pid = enrol(now)
    ingest_one(now, referral(pid, now - timedelta(days=3)))
    h = hold(pid, 280, now)
    ingest_one(now, no_show(pid, now - timedelta(days=1)))
    acc = account(pid)
    assert (acc["balance"], acc["held"], acc["debt"]) == (250, 280, 30)
    assert [(lot["remaining"], lot["held"]) for lot in lots(pid)] == [(200, 200), (80, 80)]
    assert summary(pid, now)["available"] == 0
    commit(h["id"], now)
    acc = account(pid)
    assert (acc["balance"], acc["held"], acc["debt"]) == (-30, 0, 30)
    assert_verified()


def test_reversing_an_earning_whose_lot_was_spent_creates_debt(db: Db, now: datetime) -> None:
    """The reversal takes what is left in other lots first; only the rest becomes debt."""
    pid = enrol(now)
    out = ingest_one(now, referral(pid, now - timedelta(days=10)))
    spend(pid, 250, now)  # the referral lot (first to expire) and 50 of the welcome lot
    result = revoke(now, event_id=out["event_id"])
    assert result["reversed"] == [{"rule": "referral", "points": -200}]
    assert result["balance"] == -150
    acc = account(pid)
    assert (acc["balance"], acc["debt"]) == (-150, 150)
    assert [lot["remaining"] for lot in lots(pid)] == [0, 0]
    reversal = transfers(pid)[-1]
    assert (reversal["kind"], reversal["reverses_id"]) == ("reversal", earn_transfer(out["event_id"])["id"])
    assert (reversal["to_account_id"], reversal["amount"]) == (SYSTEM_IDS[System.issuance], 200)
    assert_verified()


def test_reversing_an_unspent_earning_takes_back_its_own_lot(db: Db, now: datetime) -> None:
    pid = enrol(now)
    out = ingest_one(now, referral(pid, now - timedelta(days=10)))
    lot = lot_of(earn_transfer(out["event_id"])["id"])
    revoke(now, event_id=out["event_id"])
    assert balance(pid, now) == 100
    assert account(pid)["debt"] == 0
    assert lot_of(earn_transfer(out["event_id"])["id"])["remaining"] == 0
    assert allocations(transfers(pid)[-1]["id"]) == [(lot["id"], 200)]
    assert_verified()


def test_reversing_an_expired_earning_takes_back_only_what_expiry_did_not(db: Db, now: datetime) -> None:
    pid = enrol(now)
    out = ingest_one(now, referral(pid, utc(2024, 6, 20, 2, 30)))  # 200, expires 2026-06-20
    spend(pid, 50, now)  # from the expiring lot
    later = now + timedelta(days=10)
    assert expire(later) == (1, 150)
    result = revoke(later, event_id=out["event_id"])
    assert result["reversed"] == [{"rule": "referral", "points": -50}]  # the spent part; expiry took the rest
    acc = account(pid)
    assert (acc["balance"], acc["debt"]) == (50, 0)  # taken from the welcome lot, no debt beside it
    assert [lot["remaining"] for lot in lots(pid)] == [0, 50]
    assert_verified()


def test_reversing_a_wholly_expired_earning_posts_nothing(db: Db, now: datetime) -> None:
    pid = enrol(now)
    out = ingest_one(now, referral(pid, utc(2024, 6, 20, 2, 30)))
    later = now + timedelta(days=10)
    expire(later)
    n = len(transfers(pid))
    assert revoke(later, event_id=out["event_id"])["reversed"] == []
    assert len(transfers(pid)) == n
    assert balance(pid, later) == 100
    assert_verified()


# --- holds ------------------------------------------------------------------------------

def test_hold_allocates_lots_and_commit_moves_them_to_redemptions(db: Db, now: datetime) -> None:
    pid = enrol(now)
    ingest_one(now, referral(pid, now - timedelta(days=3)))
    h = hold(pid, 250, now, reference="HIS-INV-1")
    assert (h["status"], h["amount"], h["expires_at"]) == ("open", 250, now + TTL)
    ref_lot, welcome = lots(pid)
    assert (ref_lot["held"], welcome["held"]) == (200, 50)
    assert (ref_lot["remaining"], welcome["remaining"]) == (200, 100)  # nothing moved yet
    view = summary(pid, now)
    assert (view["balance"], view["held"], view["available"]) == (300, 250, 50)
    n_entries = len(transfers(pid))

    with pytest.raises(InsufficientPointsError):
        spend(pid, 51, now)
    with pytest.raises(InsufficientPointsError):
        hold(pid, 51, now)
    spend(pid, 50, now)  # exactly the available part: taken from the unheld remainder
    assert [(lot["remaining"], lot["held"]) for lot in lots(pid)] == [(200, 200), (50, 50)]

    done = commit(h["id"], now + timedelta(minutes=1))
    assert done["status"] == "committed"
    assert done["settled_at"] == now + timedelta(minutes=1)
    entry = transfers(pid)[-1]
    assert len(transfers(pid)) == n_entries + 2
    assert (entry["id"], entry["kind"], entry["amount"], entry["hold_id"]) == (done["transfer_id"], "redeem", 250,
                                                                               h["id"])
    assert entry["to_account_id"] == SYSTEM_IDS[System.redemptions]
    assert sorted(allocations(entry["id"])) == sorted([(ref_lot["id"], 200), (welcome["id"], 50)])
    assert [(lot["remaining"], lot["held"]) for lot in lots(pid)] == [(0, 0), (0, 0)]
    acc = account(pid)
    assert (acc["balance"], acc["held"]) == (0, 0)

    again = commit(h["id"], now + timedelta(minutes=2))  # idempotent: the stored answer, no new entry
    assert (again["status"], again["transfer_id"]) == ("committed", done["transfer_id"])
    assert len(transfers(pid)) == n_entries + 2
    with pytest.raises(HoldClosedError) as exc:
        void(h["id"], now)
    assert exc.value.params["status"] == "committed"
    assert_verified()


def test_void_releases_the_lots_and_commit_after_void_is_refused(db: Db, now: datetime) -> None:
    pid = enrol(now)
    h = hold(pid, 70, now)
    assert summary(pid, now)["available"] == 30
    voided = void(h["id"], now)
    assert voided["status"] == "voided"
    assert [(lot["remaining"], lot["held"]) for lot in lots(pid)] == [(100, 0)]
    acc = account(pid)
    assert (acc["balance"], acc["held"]) == (100, 0)
    assert len(transfers(pid)) == 1  # a hold and its void post nothing
    assert void(h["id"], now)["status"] == "voided"  # idempotent
    with pytest.raises(HoldClosedError) as exc:
        commit(h["id"], now)
    assert exc.value.params["status"] == "voided"
    assert balance(pid, now) == 100
    spend(pid, 100, now)
    assert_verified()


def test_hold_errors(db: Db, now: datetime) -> None:
    pid = enrol(now)
    with pytest.raises(InsufficientPointsError):
        hold(pid, 101, now)
    with pytest.raises(InvalidAmountError):
        hold(pid, 0, now)
    with pytest.raises(HoldNotFoundError):
        commit(str(uuid.uuid4()), now)
    with pytest.raises(HoldNotFoundError):
        void("not-an-id", now)
    assert account(pid)["held"] == 0


def test_hold_idempotency_key_returns_the_same_hold(db: Db, now: datetime) -> None:
    pid = enrol(now)
    first = hold(pid, 40, now, idempotency_key="cashier-1")
    again = hold(pid, 40, now, idempotency_key="cashier-1")
    assert again["id"] == first["id"]
    assert account(pid)["held"] == 40


def test_hold_idempotency_key_with_a_different_request_is_a_conflict(db: Db, now: datetime) -> None:
    pid = enrol(now)
    hold(pid, 40, now, idempotency_key="cashier-2")
    with pytest.raises(ConflictError):
        hold(pid, 50, now, idempotency_key="cashier-2")


def test_commit_after_the_hold_expired_is_refused_and_expire_holds_releases(db: Db, now: datetime) -> None:
    pid = enrol(now)
    h = hold(pid, 60, now)
    keep = hold(pid, 10, now, ttl=timedelta(hours=2))
    later = now + TTL
    with pytest.raises(HoldClosedError) as exc:
        commit(h["id"], later)
    assert exc.value.params["status"] == "expired"
    with write_tx() as session:
        assert ledger.expire_holds(session, later) == 1
    with read_tx() as session:
        statuses = dict(session.connection().execute(select(_holds.c.id, _holds.c.status)).all())
    assert statuses == {h["id"]: "expired", keep["id"]: "open"}
    acc = account(pid)
    assert (acc["held"], acc["balance"]) == (10, 100)
    assert [lot["held"] for lot in lots(pid)] == [10]
    with write_tx() as session:
        assert ledger.expire_holds(session, later) == 0
    assert void(h["id"], later)["status"] == "expired"
    assert commit(keep["id"], later)["status"] == "committed"
    assert balance(pid, later) == 90
    assert_verified()


# --- expiry ---------------------------------------------------------------------------

def test_expired_lots_count_until_the_expiry_job_posts_them(db: Db, now: datetime) -> None:
    pid = enrol(now)
    at = utc(2024, 6, 20, 2, 30)  # expires 2026-06-20, five days after `now`
    ingest_one(now, referral(pid, at))
    spend(pid, 30, now)  # FIFO: from the expiring lot
    expiring = summary(pid, now)["expiring"]
    assert expiring == [{"points": 170, "expires_at": utc(2026, 6, 20, 2, 30)}]

    later = now + timedelta(days=10)
    assert balance(pid, later) == 270  # past expires_at, still in the balance until the job runs
    assert expire(later) == (1, 170)
    entry = transfers(pid)[-1]
    assert (entry["kind"], entry["amount"], entry["to_account_id"]) == ("expiry", 170, SYSTEM_IDS[System.expiry])
    assert entry["balance_after"] == 100
    assert [lot["remaining"] for lot in lots(pid)] == [0, 100]
    assert balance(pid, later) == 100
    assert expire(later) == (0, 0)  # nothing twice
    assert summary(pid, later)["expiring"] == []
    assert_verified()


def test_summary_lists_only_lots_expiring_within_30_days(db: Db, now: datetime) -> None:
    pid = enrol(now)
    ingest(now, referral(pid, utc(2024, 7, 10, 2, 30)),  # expires in 25 days
           referral(pid, utc(2024, 7, 20, 2, 30)),  # in 35 days
           referral(pid, utc(2024, 6, 30, 2, 30)))  # in 15 days
    h = hold(pid, 50, now)  # held part is not "expiring" for the patient's warning
    view = summary(pid, now)
    assert view["expiring"] == [{"points": 150, "expires_at": utc(2026, 6, 30, 2, 30)},
                                {"points": 200, "expires_at": utc(2026, 7, 10, 2, 30)}]
    void(h["id"], now)
    assert [e["points"] for e in summary(pid, now)["expiring"]] == [200, 200]
    assert [e["points"] for e in summary(pid, now + timedelta(days=6))["expiring"]] == [200, 200, 200]


def test_held_lots_are_skipped_by_expiry_and_expire_after_release(db: Db, now: datetime) -> None:
    pid = enrol(now)
    ingest_one(now, referral(pid, utc(2024, 6, 20, 2, 30)))
    h = hold(pid, 150, now, ttl=timedelta(days=30))
    later = now + timedelta(days=10)
    assert expire(later) == (1, 50)  # only the unheld part
    assert [(lot["remaining"], lot["held"]) for lot in lots(pid)] == [(150, 150), (100, 0)]
    assert expire(later) == (0, 0)
    void(h["id"], later)
    assert expire(later + timedelta(minutes=1)) == (1, 150)  # the next run after release
    assert [lot["remaining"] for lot in lots(pid)] == [0, 100]
    assert balance(pid, later) == 100
    assert_verified()


def test_committing_a_hold_on_an_expired_lot_still_redeems_it(db: Db, now: datetime) -> None:
    pid = enrol(now)
    ingest_one(now, referral(pid, utc(2024, 6, 20, 2, 30)))
    h = hold(pid, 200, now, ttl=timedelta(days=30))
    later = now + timedelta(days=10)
    assert expire(later) == (0, 0)
    commit(h["id"], later)
    assert balance(pid, later) == 100
    assert expire(later) == (0, 0)
    assert_verified()


# --- refunds ---------------------------------------------------------------------------

def test_refund_restores_the_consumed_lots(db: Db, now: datetime) -> None:
    pid = enrol(now)
    ingest_one(now, referral(pid, now - timedelta(days=5)))
    ref_lot, welcome = lots(pid)
    spent = spend(pid, 250, now)
    back = refund(spent.id, now + timedelta(hours=1))
    assert (back.points, back.balance_after) == (250, 300)
    assert [lot["remaining"] for lot in lots(pid)] == [200, 100]
    assert allocations(back.id) == [(ref_lot["id"], -200), (welcome["id"], -50)]
    entry = transfers(pid)[-1]
    assert (entry["kind"], entry["reverses_id"], entry["from_account_id"]) == (
        "refund", spent.id, SYSTEM_IDS[System.redemptions])
    assert len(lots(pid)) == 2  # no new lot: the points went back where they came from
    assert_verified()


def test_refund_sends_the_expired_part_straight_to_expiry(db: Db, now: datetime) -> None:
    pid = enrol(now)
    ingest_one(now, referral(pid, utc(2024, 6, 20, 2, 30)))  # expires 2026-06-20
    spent = spend(pid, 250, now)  # 200 from the expiring lot, 50 from the welcome lot
    later = now + timedelta(days=10)
    back = refund(spent.id, later)
    assert back.points == 250
    tail = transfers(pid)[-2:]
    assert [(t["kind"], t["amount"], t["balance_after"]) for t in tail] == [("refund", 250, 300),
                                                                           ("expiry", 200, 100)]
    assert tail[1]["to_account_id"] == SYSTEM_IDS[System.expiry]
    assert [lot["remaining"] for lot in lots(pid)] == [0, 100]
    assert balance(pid, later) == 100
    assert expire(later) == (0, 0)
    assert_verified()


def test_refund_of_an_expired_spend_does_not_repay_debt(db: Db, now: datetime) -> None:
    """The expired part goes to expiry; only the unexpired part returns (and repays debt)."""
    pid = enrol(now)
    spend(pid, 100, now)
    ingest_one(now, referral(pid, utc(2024, 6, 20, 2, 30)))  # 200, expires 2026-06-20
    spent = spend(pid, 200, now)
    ingest_one(now, no_show(pid, now - timedelta(days=1)))  # no lots left: debt 50
    assert (account(pid)["balance"], account(pid)["debt"]) == (-50, 50)
    refund(spent.id, now + timedelta(days=10))  # all 200 came from a lot that has expired meanwhile
    acc = account(pid)
    assert (acc["balance"], acc["debt"]) == (-50, 50)
    assert_verified()


def test_refunding_the_same_spend_twice_changes_nothing(db: Db, now: datetime) -> None:
    pid = enrol(now)
    spent = spend(pid, 60, now)
    refund(spent.id, now)
    with contextlib.suppress(AppError):  # a typed refusal or the stored answer: either is fine
        refund(spent.id, now)
    assert balance(pid, now) == 100
    assert_verified()


def test_only_a_spend_can_be_refunded(db: Db, now: datetime) -> None:
    pid = enrol(now)
    welcome = transfers(pid)[0]
    assert welcome["kind"] == "earn"
    with contextlib.suppress(AppError):  # a typed refusal is the expected answer
        refund(welcome["id"], now)
    assert balance(pid, now) == 100
    assert_verified()


def test_refund_of_a_committed_hold(db: Db, now: datetime) -> None:
    pid = enrol(now)
    h = hold(pid, 80, now)
    done = commit(h["id"], now)
    refund(done["transfer_id"], now)
    assert balance(pid, now) == 100
    assert [lot["remaining"] for lot in lots(pid)] == [100]
    assert_verified()


# --- revocation ----------------------------------------------------------------------------

def test_revoke_reverses_exactly_the_events_entries(db: Db, now: datetime) -> None:
    pid = enrol(now)
    day = now - timedelta(days=1)
    first = ingest_one(now, event(pid, "health.measurement", day, bp()))
    assert {a["rule"]: a["points"] for a in first["awards"]} == {"first_checkin": 50, "health_checkin": 10}
    other = ingest_one(now, referral(pid, now - timedelta(days=2)))
    before = len(transfers(pid))
    result = revoke(now, event_id=first["event_id"])
    assert result["revoked"] is True
    assert sorted((r["rule"], r["points"]) for r in result["reversed"]) == [("first_checkin", -50),
                                                                            ("health_checkin", -10)]
    assert result["balance"] == 300
    entries = transfers(pid)
    assert len(entries) == before + 2
    assert {e["event_id"] for e in entries[before:]} == {first["event_id"]}
    assert all(e["kind"] == "reversal" for e in entries[before:])
    assert other["balance"] == 360
    again = revoke(now + timedelta(minutes=5), event_id=first["event_id"])
    assert again == result
    assert len(transfers(pid)) == before + 2
    assert balance(pid, now) == 300
    assert_verified()


def test_revoke_frees_the_daily_cap_room(db: Db, now: datetime) -> None:
    pid = enrol(now)
    day = now - timedelta(days=1)
    r1 = ingest_one(now, event(pid, "health.measurement", day, bp()))
    r2 = ingest_one(now, event(pid, "health.measurement", day + timedelta(hours=1), bp()))
    r3 = ingest_one(now, event(pid, "health.measurement", day + timedelta(hours=2), bp()))
    assert [a["points"] for a in r1["awards"]] == [50, 10]
    assert [a["points"] for a in r2["awards"]] == [10]
    assert r3["awards"] == []
    assert [n["code"] for n in r3["notices"]] == ["rules.daily_cap"]
    out = revoke(now, event_id=r2["event_id"])
    assert out["reversed"] == [{"rule": "health_checkin", "points": -10}]
    r4 = ingest_one(now, event(pid, "health.measurement", day + timedelta(hours=3), bp()))
    assert [(a["rule"], a["points"]) for a in r4["awards"]] == [("health_checkin", 10)]
    r5 = ingest_one(now, event(pid, "health.measurement", day + timedelta(hours=4), bp()))
    assert r5["awards"] == []
    assert balance(pid, now) == 170
    assert_verified()


def test_revoke_frees_annual_cap_room(db: Db, now: datetime) -> None:
    pid = enrol(now)
    base = utc(2026, 3, 1, 2, 30)
    outs = ingest(now, *[referral(pid, base + timedelta(days=i)) for i in range(50)])
    assert sum(a["points"] for o in outs for a in o["awards"]) == 9900  # type: ignore[index]
    assert points(pid, now)["earned_this_year"] == 10000
    capped = ingest_one(now, referral(pid, base + timedelta(days=60)))
    assert capped["awards"] == []
    assert [n["code"] for n in capped["notices"]] == ["rules.annual_cap"]
    revoke(now, event_id=outs[0]["event_id"])  # type: ignore[index]
    assert points(pid, now)["earned_this_year"] == 9800
    again = ingest_one(now, referral(pid, base + timedelta(days=61)))
    assert [a["points"] for a in again["awards"]] == [200]
    assert points(pid, now)["earned_this_year"] == 10000
    assert_verified()


def test_revoking_a_no_show_penalty_restores_the_points(db: Db, now: datetime) -> None:
    pid = enrol(now)
    ev = no_show(pid, now - timedelta(days=1))
    out = ingest_one(now, ev)
    assert out["awards"] == [{"rule": "no_show", "points": -50, "message": out["awards"][0]["message"]}]
    assert balance(pid, now) == 50
    result = revoke(now, source="test", source_event_id=ev["source_event_id"])
    assert result["reversed"] == [{"rule": "no_show", "points": 50}]
    assert balance(pid, now) == 100
    assert [lot["remaining"] for lot in lots(pid)] == [100]  # back into the lot it came from
    assert len(lots(pid)) == 1
    assert revoke(now, event_id=out["event_id"]) == result
    assert balance(pid, now) == 100
    assert_verified()


def test_revoking_a_no_show_that_left_debt_repays_the_debt_first(db: Db, now: datetime) -> None:
    pid = enrol(now)
    spend(pid, 80, now)
    out = ingest_one(now, no_show(pid, now - timedelta(days=1)))
    assert (account(pid)["balance"], account(pid)["debt"]) == (-30, 30)
    revoke(now, event_id=out["event_id"])
    acc = account(pid)
    assert (acc["balance"], acc["debt"]) == (20, 0)
    assert [lot["remaining"] for lot in lots(pid)] == [20]
    assert_verified()


def test_replaying_an_event_changes_nothing(db: Db, now: datetime) -> None:
    pid = enrol(now)
    ev = referral(pid, now - timedelta(days=1))
    first = ingest_one(now, ev)
    n = len(transfers(pid))
    again = ingest_one(now, ev)
    assert again == {**first, "duplicate": True}
    assert len(transfers(pid)) == n
    assert balance(pid, now) == 300


# --- entries ---------------------------------------------------------------------------------

def test_entries_newest_first_with_a_cursor_and_balance_after(db: Db, now: datetime) -> None:
    pid = enrol(now)
    ingest_one(now, referral(pid, now - timedelta(days=3)))
    ingest_one(now, no_show(pid, now - timedelta(days=2)))
    spend(pid, 30, now)
    ingest_one(now, event(pid, "health.measurement", now - timedelta(days=1), bp()))
    expected = [("earn", 100, 100), ("earn", 200, 300), ("penalty", -50, 250), ("redeem", -30, 220),
                ("earn", 50, 270), ("earn", 10, 280)]

    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        with read_tx() as session:
            page = ledger.entries(session, pid, limit=4, before=cursor)
        pages += 1
        seen.extend(page["items"])
        cursor = page["next"]
        if cursor is None:
            break
    assert pages == 2
    assert [(e["kind"], e["points"], e["balance_after"]) for e in reversed(seen)] == expected
    assert len({e["id"] for e in seen}) == len(expected)
    assert seen[0]["rule"] == "health_checkin"
    assert seen[-1]["rule"] == "welcome"

    with read_tx() as session:
        exact = ledger.entries(session, pid, limit=6, before=None)
        more = ledger.entries(session, pid, limit=5, before=None)
    assert exact["next"] is None
    assert more["next"] is not None
    with read_tx() as session:
        tail = ledger.entries(session, pid, limit=5, before=more["next"])
    assert [e["kind"] for e in tail["items"]] == ["earn"]
    assert tail["next"] is None


def test_entries_unknown_patient(db: Db, now: datetime) -> None:
    with read_tx() as session, pytest.raises(WalletNotFoundError):
        ledger.entries(session, str(uuid.uuid4()), limit=10, before=None)


def test_system_balances_are_derived_from_transfers(db: Db, now: datetime) -> None:
    pid = enrol(now)
    spend(pid, 10, now)
    with read_tx() as session:
        systems = session.connection().execute(
            select(_acc.c.balance).where(_acc.c.kind == "system")).scalars().all()
    assert set(systems) == {0}  # never updated per event
    assert_verified()


def test_a_penalty_after_an_earning_consumes_the_new_lot(db: Db, now: datetime) -> None:
    pid = enrol(now)
    spend(pid, 100, now)  # nothing left
    ingest_one(now, referral(pid, now - timedelta(days=2)))
    ingest_one(now, no_show(pid, now - timedelta(days=1)))
    acc = account(pid)
    assert (acc["balance"], acc["debt"]) == (150, 0)
    assert [lot["remaining"] for lot in lots(pid)] == [150, 0]


def test_a_penalty_in_the_same_batch_as_an_earning_consumes_the_new_lot(db: Db, now: datetime) -> None:
    pid = enrol(now)
    spend(pid, 100, now)  # nothing left
    outs = ingest(now, referral(pid, now - timedelta(days=2)), no_show(pid, now - timedelta(days=1)))
    assert [o["balance"] for o in outs] == [200, 150]  # type: ignore[index]
    acc = account(pid)
    assert acc["balance"] == 150
    assert acc["debt"] == 0
    assert [lot["remaining"] for lot in lots(pid)] == [150, 0]
    assert_verified()


def test_a_reversal_never_leaves_debt_beside_unspent_points(db: Db, now: datetime) -> None:
    """Review finding: debt next to an unspent lot was charged again when that lot expired."""
    pid = enrol(now)
    late = ingest_one(now, event(pid, "medication.taken", now - timedelta(days=700), {"plan_id": "P1"}))
    spend(pid, 10, now)  # first-expiring first: the medication lot
    revoke(now, event_id=late["event_id"])
    acc = account(pid)
    assert (acc["balance"], acc["debt"]) == (90, 0)
    expire(now + timedelta(days=800))  # the welcome lot expires with exactly what is left
    assert balance(pid, now + timedelta(days=800)) == 0
    assert_verified()


def test_revoking_an_earning_refunded_after_its_lot_expired_charges_nothing_twice(db: Db, now: datetime) -> None:
    """Review finding: the expired part of a refund was not recorded against its lot."""
    pid = enrol(now)
    out = ingest_one(now, event(pid, "medication.taken", now - timedelta(days=700), {"plan_id": "P1"}))
    spent = spend(pid, 10, now)  # takes the medication lot, which expires in about a month
    later = now + timedelta(days=40)
    refund(spent.id, later)  # its lot has expired: the 10 go to expiry
    assert balance(pid, later) == 100
    revoke(later, event_id=out["event_id"])
    assert balance(pid, later) == 100  # nothing of it was left to take back
    assert account(pid)["debt"] == 0
    assert_verified()
