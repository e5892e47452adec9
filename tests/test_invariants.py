"""The ledger invariants of DESIGN.md, checked by hypothesis on SQLite and
PostgreSQL after random sequences of real use cases.

The `db` fixture is function-scoped, so every example of a test shares one
database: each example enrols its own patients and the checks cover the
whole ledger (all examples so far), not just the example's wallets."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hypothesis import event as note
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from carepoints.audit.service import Actor
from carepoints.config import get_settings
from carepoints.enrolment import households as household_cases
from carepoints.events import service as events
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.errors import AppError
from carepoints.ledger import integrity
from carepoints.ledger import service as ledger
from carepoints.ledger.accounts import SYSTEM_IDS
from carepoints.ledger.errors import HoldClosedError, InsufficientPointsError, NotRefundableError
from carepoints.ledger.models import Account, Allocation, Hold, HoldLot, Lot, Transfer
from carepoints.patients import households as membership
from carepoints.patients.errors import RedeemNotAllowedError
from carepoints.patients.models import HouseholdMember
from tests.conftest import Db
from tests.helpers import bp, enrol, event, ingest, ingest_one

_acc = Account.__table__
_tr = Transfer.__table__
_lots = Lot.__table__
_alloc = Allocation.__table__
_holds = Hold.__table__
_hold_lots = HoldLot.__table__

MAX_OPS = 25
ACTOR = Actor("system", "tests.invariants")


# --- operations -------------------------------------------------------------------------

patient = st.integers(min_value=0, max_value=7)  # an index into the example's patients (mod their number)
pick = st.integers(min_value=0, max_value=1000)  # an index into earlier spends / holds / events
days_back = st.integers(min_value=0, max_value=900)

OPERATION = st.one_of(
    st.tuples(st.just("enrol")),
    st.tuples(st.just("reading"), patient, st.sampled_from(["self_reported", "device", "clinic"]),
              st.integers(min_value=0, max_value=20), st.integers(min_value=0, max_value=23)),
    st.tuples(st.just("referral"), patient, days_back),
    st.tuples(st.just("no_show"), patient, st.integers(min_value=0, max_value=120)),
    st.tuples(st.just("review"), patient, st.booleans()),
    st.tuples(st.just("batch"), patient, days_back),
    st.tuples(st.just("spend"), patient, st.integers(min_value=1, max_value=400)),
    st.tuples(st.just("hold"), patient, st.integers(min_value=1, max_value=300),
              st.sampled_from(["commit", "void", "keep"])),
    st.tuples(st.just("settle"), pick, st.sampled_from(["commit", "void"])),
    st.tuples(st.just("refund"), pick, st.sampled_from(["spend", "spend", "other"])),
    st.tuples(st.just("revoke"), pick),
    st.tuples(st.just("expire"), st.integers(min_value=0, max_value=800)),
    # households: found one, join another patient's, leave, spend from the pool
    st.tuples(st.just("household"), patient),
    st.tuples(st.just("join"), patient, patient, st.booleans()),
    st.tuples(st.just("leave"), patient),
    st.tuples(st.just("pool_spend"), patient, st.integers(min_value=1, max_value=400)),
)


@dataclass
class World:
    clock: datetime
    patients: list[str] = field(default_factory=list)
    wallets: dict[str, str] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)  # raw payloads of accepted events
    event_ids: list[str] = field(default_factory=list)
    spends: list[str] = field(default_factory=list)  # spend transfers (committed holds included)
    refunds: dict[str, str] = field(default_factory=dict)  # spend transfer -> its refund
    open_holds: list[str] = field(default_factory=list)

    def who(self, i: int) -> str:
        return self.patients[i % len(self.patients)]

    def add_patient(self) -> None:
        pid = enrol(self.clock)
        self.patients.append(pid)
        with read_tx() as session:
            self.wallets[pid] = ledger.wallet_of(session, pid)

    def ingest(self, raw: dict[str, Any]) -> None:
        out = ingest_one(self.clock, raw)
        assert out["duplicate"] is False
        note(f"{raw['type']}: " + ("penalty" if any(a["points"] < 0 for a in out["awards"])
                                   else "earned" if out["awards"] else "nothing"))
        self.events.append(raw)
        self.event_ids.append(out["event_id"])


def run(world: World, op: tuple[Any, ...]) -> None:
    name = op[0]
    clock = world.clock
    if name == "enrol":
        world.add_patient()
    elif name == "reading":
        _, i, provenance, d, h = op
        at = clock - timedelta(days=d, hours=h)
        world.ingest(event(world.who(i), "health.measurement", at, bp(provenance)))
    elif name == "referral":
        _, i, d = op
        world.ingest(event(world.who(i), "referral.visit", clock - timedelta(days=d, minutes=1),
                           {"referral_id": uuid.uuid4().hex, "from_institution": "社区中心"}))
    elif name == "no_show":
        _, i, d = op
        at = clock - timedelta(days=d, minutes=1)
        world.ingest(event(world.who(i), "appointment.no_show", at,
                           {"appointment_id": uuid.uuid4().hex, "slot_start": at.isoformat()}))
    elif name == "review":
        _, i, long_enough = op
        text = "医生非常耐心细致地解答了我的问题,候诊时间也不长。" * (3 if long_enough else 1)
        world.ingest(event(world.who(i), "review.submitted", clock - timedelta(hours=1),
                           {"appointment_id": uuid.uuid4().hex, "rating": 5, "text": text}))
    elif name == "batch":  # one request: an earning, a penalty and a reading, evaluated together
        _, i, d = op
        pid, at = world.who(i), clock - timedelta(days=d, minutes=5)
        raws = [event(pid, "referral.visit", at, {"referral_id": uuid.uuid4().hex, "from_institution": "社区中心"}),
                event(pid, "appointment.no_show", at, {"appointment_id": uuid.uuid4().hex,
                                                       "slot_start": at.isoformat()}),
                event(pid, "health.measurement", clock - timedelta(minutes=3), bp())]
        outs = ingest(clock, *raws)
        for raw, out in zip(raws, outs, strict=True):
            assert isinstance(out, dict), out
            world.events.append(raw)
            world.event_ids.append(out["event_id"])
        note("batch")
    elif name == "spend":
        _, i, pts = op
        try:
            with write_tx() as session:
                posted = ledger.spend(session, world.wallets[world.who(i)], pts, clock)
            world.spends.append(posted.id)
            note("spend: ok")
        except InsufficientPointsError:
            note("spend: insufficient")
    elif name == "hold":
        _, i, pts, then = op
        try:
            with write_tx() as session:
                h = ledger.hold(session, world.wallets[world.who(i)], pts, clock, ttl=timedelta(minutes=30))
        except InsufficientPointsError:
            note("hold: insufficient")
            return
        note("hold: ok")
        world.open_holds.append(h["id"])
        if then != "keep":
            settle(world, len(world.open_holds) - 1, then)
    elif name == "settle" and world.open_holds:
        settle(world, op[1], op[2])
    elif name == "refund" and op[2] == "other":  # an entry that is not a spend is never refunded
        with read_tx() as session:
            tid = session.connection().execute(
                select(_tr.c.id).where(_tr.c.wallet_id.in_(list(world.wallets.values())),
                                       _tr.c.kind != "redeem").order_by(_tr.c.id)).scalars().all()
        before = snapshot(world)
        try:
            with write_tx() as session:
                ledger.refund(session, tid[op[1] % len(tid)], clock, expires_at=clock + timedelta(days=730))
        except NotRefundableError:
            pass
        else:
            raise AssertionError("a non-spend entry was refunded")
        assert snapshot(world) == before
    elif name == "refund" and world.spends:
        tid = world.spends[op[1] % len(world.spends)]
        before = snapshot(world)
        with write_tx() as session:
            back = ledger.refund(session, tid, clock, expires_at=clock + timedelta(days=730))
        if tid in world.refunds:  # a second refund answers the first and changes nothing
            assert back.id == world.refunds[tid]
            assert snapshot(world) == before
            note("refund: again")
        else:
            world.refunds[tid] = back.id
            note("refund")
    elif name == "revoke" and world.event_ids:
        eid = world.event_ids[op[1] % len(world.event_ids)]
        with write_tx() as session:
            first = events.revoke(session, now=clock, reason="HIS correction", event_id=eid)
        with write_tx() as session:
            assert events.revoke(session, now=clock, reason="again", event_id=eid) == first
        note("revoke: reversed entries" if first["reversed"] else "revoke: nothing to reverse")
    elif name in ("household", "join", "leave", "pool_spend"):
        run_household(world, op)
    elif name == "expire":
        world.clock = clock = clock + timedelta(days=op[1])
        while True:
            with write_tx() as session:
                wallets, expired = ledger.expire_points(session, clock, limit=3)
            if wallets == 0:
                break
            note("expire: points expired" if expired else "expire: run")
        with write_tx() as session:
            ledger.expire_holds(session, clock)
        world.open_holds.clear()  # expired holds are closed; unexpired ones may still be settled below
        with read_tx() as session:
            world.open_holds.extend(session.connection().execute(
                select(_holds.c.id).where(_holds.c.status == "open",
                                          _holds.c.wallet_id.in_(list(world.wallets.values())))).scalars())


def settle(world: World, index: int, how: str) -> None:
    hid = world.open_holds.pop(index % len(world.open_holds))
    try:
        with write_tx() as session:
            if how == "commit":
                done = ledger.commit_hold(session, hid, world.clock)
                world.spends.append(done["transfer_id"])
            else:
                ledger.void_hold(session, hid, world.clock)
        note(f"hold: {how}")
    except HoldClosedError:
        note("hold: closed")


# --- the invariants -------------------------------------------------------------------------

def run_household(world: World, op: tuple[Any, ...]) -> None:
    """Household steps; each does nothing when it does not apply (e.g. joining while a member)."""
    name, clock, pid = op[0], world.clock, world.who(op[1])
    with read_tx() as session:
        mine = membership.membership(session, pid)
    if name == "household" and mine is None:
        with write_tx() as session:
            household_cases.create(session, ACTOR, "家", pid, clock)
        note("household: founded")
    elif name == "join" and mine is None:
        with read_tx() as session:
            theirs = membership.membership(session, world.who(op[2]))
        if theirs is not None:
            with write_tx() as session:
                household_cases.add_member(session, ACTOR, theirs["household_id"], pid, can_redeem=op[3], now=clock)
            note("household: joined")
    elif name == "leave" and mine is not None:
        hid = mine["household_id"]
        with write_tx() as session:
            if mine["role"] == "head" and membership.active_count(session, hid) > 1:
                other = next(m["patient_id"] for m in membership.read(session, hid)["members"]
                             if m["patient_id"] != pid)
                household_cases.transfer_head(session, ACTOR, hid, other, clock)
            moved = household_cases.leave(session, ACTOR, hid, pid, clock)
        note("household: left with points" if moved["points"] else "household: left")
    elif name == "pool_spend" and mine is not None:
        try:
            with write_tx() as session:
                wid = ledger.spending_wallet(session, pid, household=True, now=clock)
                world.spends.append(ledger.spend(session, wid, op[2], clock, member=pid).id)
            note("household: spent")
        except (InsufficientPointsError, RedeemNotAllowedError):
            note("household: not spent")


def check_pools() -> None:
    """A patient's own wallet points at their household's wallet exactly while they are a member."""
    hm, hw = HouseholdMember.__table__, _acc.alias("pool")
    with read_tx() as session:
        conn = session.connection()
        expected = dict(conn.execute(select(hm.c.patient_id, hw.c.id).join(hw, hw.c.household_id == hm.c.household_id)
                                     .where(hm.c.left_at.is_(None))).all())
        actual = dict(conn.execute(select(_acc.c.patient_id, _acc.c.pool_id).where(_acc.c.pool_id.is_not(None))).all())
    assert actual == expected


def check_invariants() -> None:
    with read_tx() as session:
        conn = session.connection()
        wallets = {r.id: r for r in conn.execute(select(_acc).where(_acc.c.kind == "wallet"))}
        flows: dict[str, int] = defaultdict(int)
        for frm, to, amount in conn.execute(
                select(_tr.c.from_account_id, _tr.c.to_account_id, func.sum(_tr.c.amount))
                .group_by(_tr.c.from_account_id, _tr.c.to_account_id)):
            flows[frm] -= int(amount)
            flows[to] += int(amount)
        lots = conn.execute(select(_lots)).mappings().all()
        allocated = dict(conn.execute(select(_alloc.c.lot_id, func.sum(_alloc.c.amount)).group_by(_alloc.c.lot_id))
                         .all())
        open_held = dict(conn.execute(
            select(_holds.c.wallet_id, func.sum(_hold_lots.c.amount))
            .join(_holds, _holds.c.id == _hold_lots.c.hold_id).where(_holds.c.status == "open")
            .group_by(_holds.c.wallet_id)).all())
        report = integrity.verify(session, get_settings().checkpoint_key)

    # 1. Σ all account balances = 0 (system balances derived from transfers)
    system_total = sum(flows[sid] for sid in SYSTEM_IDS.values())
    assert sum(w.balance for w in wallets.values()) + system_total == 0
    for wid, w in wallets.items():
        assert w.balance == flows[wid], f"wallet {wid}: cached balance != its transfers"

    # 2. balance = Σ remaining − debt; held = Σ lots held = Σ open holds ≤ Σ remaining
    remaining: dict[str, int] = defaultdict(int)
    held: dict[str, int] = defaultdict(int)
    for lot in lots:
        remaining[lot["wallet_id"]] += lot["remaining"]
        held[lot["wallet_id"]] += lot["held"]
        # 3. 0 ≤ remaining ≤ amount (and 0 ≤ held ≤ remaining)
        assert 0 <= lot["remaining"] <= lot["amount"], lot
        assert 0 <= lot["held"] <= lot["remaining"], lot
        # each lot's remaining is its amount less what its allocations consumed
        assert lot["remaining"] == lot["amount"] - int(allocated.get(lot["id"], 0)), lot
    for wid, w in wallets.items():
        assert w.debt >= 0
        assert w.balance == remaining[wid] - w.debt, f"wallet {wid}"
        assert w.held == held[wid] == int(open_held.get(wid, 0)), f"wallet {wid}"
        assert w.held <= remaining[wid]

    assert report.ok, report.problem


def snapshot(world: World) -> tuple[Any, ...]:
    with read_tx() as session:
        conn = session.connection()
        accs = conn.execute(select(_acc.c.id, _acc.c.balance, _acc.c.debt, _acc.c.held, _acc.c.chain_seq)
                            .where(_acc.c.id.in_(list(world.wallets.values()))).order_by(_acc.c.id)).all()
        n = conn.execute(select(func.count()).select_from(_tr)).scalar()
    return tuple(tuple(a) for a in accs), n


def check_replay(world: World) -> None:
    """4. Replaying any event (even a revoked one) changes nothing."""
    if not world.events:
        return
    before = snapshot(world)
    outs = ingest(world.clock, *world.events)
    assert all(isinstance(o, dict) and o["duplicate"] is True for o in outs), outs
    assert [o["event_id"] for o in outs] == world.event_ids  # type: ignore[index]
    assert snapshot(world) == before


@given(ops=st.lists(OPERATION, min_size=12, max_size=MAX_OPS))
def test_ledger_invariants_hold_after_any_sequence(db: Db, now: datetime, ops: list[tuple[Any, ...]]) -> None:
    world = World(clock=now)
    world.add_patient()
    world.add_patient()
    for op in ops:
        run(world, op)
    check_invariants()
    check_pools()
    check_replay(world)


HOUSEHOLD_OPERATION = st.one_of(
    st.tuples(st.just("join"), patient, patient, st.booleans()),
    st.tuples(st.just("leave"), patient),
    st.tuples(st.just("pool_spend"), patient, st.integers(min_value=1, max_value=400)),
    st.tuples(st.just("household"), patient),
    st.tuples(st.just("referral"), patient, days_back),
    st.tuples(st.just("no_show"), patient, st.integers(min_value=0, max_value=120)),
    st.tuples(st.just("batch"), patient, days_back),
    st.tuples(st.just("spend"), patient, st.integers(min_value=1, max_value=400)),
    st.tuples(st.just("hold"), patient, st.integers(min_value=1, max_value=300),
              st.sampled_from(["commit", "void", "keep"])),
    st.tuples(st.just("refund"), pick, st.just("spend")),
    st.tuples(st.just("revoke"), pick),
    st.tuples(st.just("expire"), st.integers(min_value=0, max_value=800)),
)


@given(ops=st.lists(HOUSEHOLD_OPERATION, min_size=12, max_size=MAX_OPS))
def test_ledger_invariants_hold_with_households(db: Db, now: datetime, ops: list[tuple[Any, ...]]) -> None:
    """The same invariants while patients found, join and leave households and earn,
    spend, are penalised and have earnings revoked around it (a household of two to start)."""
    world = World(clock=now)
    for _ in range(3):
        world.add_patient()
    run_household(world, ("household", 0))
    run_household(world, ("join", 1, 0, True))
    for op in ops:
        run(world, op)
    check_invariants()
    check_pools()
    check_replay(world)


# --- 5. order independence (suspension excepted: no no-shows here) ---------------------------

EARNING = st.one_of(
    st.tuples(st.just("reading"), st.integers(min_value=0, max_value=16), st.integers(min_value=0, max_value=2),
              st.sampled_from(["self_reported", "device", "clinic"])),
    st.tuples(st.just("referral"), st.integers(min_value=0, max_value=16), st.integers(min_value=0, max_value=3)),
    st.tuples(st.just("review"), st.integers(min_value=0, max_value=16), st.integers(min_value=0, max_value=2)),
    st.tuples(st.just("education"), st.integers(min_value=0, max_value=3), st.integers(min_value=0, max_value=3)),
    st.tuples(st.just("cancel"), st.integers(min_value=0, max_value=40), st.integers(min_value=0, max_value=3)),
    st.tuples(st.just("invite"), st.integers(min_value=0, max_value=3), st.integers(min_value=0, max_value=12)),
    st.tuples(st.just("medication"), st.integers(min_value=0, max_value=2), st.integers(min_value=0, max_value=1)),
)


def _payload(pid: str, spec: tuple[Any, ...], base: datetime, n: int) -> dict[str, Any]:
    kind, day, k = spec[0], spec[1], spec[2]
    at = base - timedelta(days=day, minutes=n)
    if kind == "reading":
        return event(pid, "health.measurement", at, bp(spec[3]))
    if kind == "referral":  # k: the referral id, so repeats of one referral exercise once-per limits
        return event(pid, "referral.visit", at, {"referral_id": f"R{k}", "from_institution": "社区中心"})
    if kind == "education":  # once per content item and a daily cap of 40: order-sensitive
        return event(pid, "education.completed", at, {"content_id": f"C{k}", "score": 90, "pass_mark": 60})
    if kind == "cancel":  # once per appointment and at most 2 a month: order-sensitive
        slot = at + timedelta(days=3)
        return event(pid, "appointment.cancelled", at, {"appointment_id": f"X{k}", "slot_start": slot.isoformat(),
                                                        "cancelled_at": at.isoformat(), "by": "patient"})
    if kind == "invite":  # once per invitee and at most 10 a year: order-sensitive
        return event(pid, "invite.completed", at, {"invitee_id": f"I{k}"})
    if kind == "medication":  # daily cap 30
        return event(pid, "medication.taken", at, {"plan_id": f"M{k}"})
    text = "这次就诊体验很好,挂号、候诊、检查都很顺利,医生讲解清楚,护士也很热情。" * 2
    return event(pid, "review.submitted", at, {"appointment_id": f"A{k}", "rating": 4, "text": text})


def _earned_by_rule(pid: str) -> dict[str, int]:
    """Net points per rule: earnings less their reversals (an event re-evaluated in time
    order has its first award reversed and the new one posted)."""
    with read_tx() as session:
        wid = ledger.wallet_of(session, pid)
        rows = session.connection().execute(
            select(_tr.c.rule_code, _tr.c.kind, _tr.c.to_account_id, _tr.c.amount)
            .where(_tr.c.wallet_id == wid, _tr.c.kind.in_(("earn", "reversal")))).all()
    out: dict[str, int] = {}
    for rule, _kind, to, amount in rows:
        out[rule] = out.get(rule, 0) + (amount if to == wid else -amount)
    return {rule: points for rule, points in out.items() if points}


@given(specs=st.lists(EARNING, min_size=1, max_size=20), seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_totals_do_not_depend_on_arrival_order(db: Db, now: datetime, specs: list[tuple[Any, ...]],
                                               seed: int) -> None:
    a, b = enrol(now), enrol(now)
    base = now - timedelta(hours=1)
    order = list(range(len(specs)))
    random.Random(seed).shuffle(order)
    for i, spec in enumerate(specs):
        ingest_one(now, _payload(a, spec, base, i))
    for i in order:
        result = ingest(now, _payload(b, specs[i], base, i))[0]
        assert not isinstance(result, AppError), result
    assert _earned_by_rule(a) == _earned_by_rule(b)


def _lesson(pid: str, at: datetime, content: str) -> dict[str, Any]:
    return event(pid, "education.completed", at, {"content_id": content, "score": 90, "pass_mark": 60})


def _cancel(pid: str, at: datetime, appointment: str) -> dict[str, Any]:
    return event(pid, "appointment.cancelled", at, {"appointment_id": appointment, "by": "patient",
                                                    "slot_start": (at + timedelta(days=3)).isoformat(),
                                                    "cancelled_at": at.isoformat()})


def test_once_per_item_and_a_daily_cap_do_not_depend_on_arrival_order(db: Db, now: datetime) -> None:
    day1 = now - timedelta(days=2)
    day2 = now - timedelta(days=1)
    evs = [(day1, "C0"), (day2, "C0"), (day2, "C1"), (day2, "C2")]
    a, b = enrol(now), enrol(now)
    for at, content in evs:  # in time order: 20 (day 1) + 0 (C0 again) + 20 + 20 (day 2)
        ingest_one(now, _lesson(a, at, content))
    for at, content in [evs[1], evs[2], evs[3], evs[0]]:  # day 2 first, the day-1 lesson arrives late
        ingest_one(now, _lesson(b, at, content))
    assert _earned_by_rule(a)["education"] == 60
    assert _earned_by_rule(b)["education"] == _earned_by_rule(a)["education"]


def test_once_per_appointment_and_a_monthly_limit_do_not_depend_on_arrival_order(db: Db, now: datetime) -> None:
    may = now - timedelta(days=40)  # 2026-05-06
    june = now - timedelta(days=10)  # 2026-06-05
    evs = [(may, "X0"), (june, "X0"), (june, "X1"), (june, "X2")]
    a, b = enrol(now), enrol(now)
    for at, appointment in evs:
        ingest_one(now, _cancel(a, at, appointment))
    for at, appointment in [evs[1], evs[2], evs[3], evs[0]]:
        ingest_one(now, _cancel(b, at, appointment))
    assert _earned_by_rule(a)["cancel_early"] == 60
    assert _earned_by_rule(b)["cancel_early"] == _earned_by_rule(a)["cancel_early"]
