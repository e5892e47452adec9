"""Parallel earnings for one patient, each from its own connection and really
committing: the tier ends where the earned points say, with exactly one
tier_changes row per change (tests/locks.py: on PostgreSQL the racers queue behind
the wallet's row lock and are let go at once)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from carepoints.jobs import registry
from carepoints.kit.db import read_tx
from carepoints.kit.time import add_months
from carepoints.ledger import service as ledger
from carepoints.ledger.models import Account
from carepoints.tiers.models import TierChange
from tests.conftest import Db
from tests.helpers import enrol, event, ingest, ingest_one, points
from tests.locks import errors, oks, race

_acc = Account.__table__
_changes = TierChange.__table__


def referral(pid: str, at: datetime) -> dict[str, Any]:
    return event(pid, "referral.visit", at, {"referral_id": uuid.uuid4().hex, "from_institution": "社区中心"})


def wallet(pid: str) -> str:
    with read_tx() as session:
        return ledger.wallet_of(session, pid)


def changes(pid: str) -> list[tuple[str, str, str]]:
    with read_tx() as session:
        rows = session.connection().execute(select(_changes.c.from_tier, _changes.c.to_tier, _changes.c.reason)
                                            .where(_changes.c.patient_id == pid).order_by(_changes.c.at,
                                                                                          _changes.c.earned))
        return [(r[0], r[1], r[2]) for r in rows]


def test_parallel_earnings_end_with_the_right_tier_and_one_row_per_change(db: Db, now: datetime) -> None:
    pid = enrol(now)
    ingest(now, *[referral(pid, now - timedelta(minutes=i)) for i in range(8)])  # 1700
    results = race(db, [lambda: ingest_one(now, referral(pid, now))] * 18,  # +3600: 5300
                   lock=(_acc, [wallet(pid)]))
    assert not errors(results), errors(results)
    assert len(oks(results)) == 18
    view = points(pid, now)
    assert (view["balance"], view["tier"]) == (5300, "gold")
    assert changes(pid) == [("standard", "silver", "upgrade"), ("silver", "gold", "upgrade")]


def test_earnings_racing_the_nightly_recompute(db: Db, now: datetime) -> None:
    """The job lowers a tier from old earnings while new ones arrive: it waits for the
    earnings in flight and counts them, so the end state is what the points say."""
    then = add_months(now, -13)
    pid = enrol(then)
    ingest(then, *[referral(pid, then - timedelta(minutes=i)) for i in range(30)])  # gold, 13 months ago
    assert points(pid, now)["tier"] == "gold"
    racers = [lambda: ingest_one(now, referral(pid, now))] * 12  # +2400 now: silver
    racers.append(lambda: registry.run("recompute-tiers", now))
    results = race(db, racers, lock=(_acc, [wallet(pid)]))
    assert not errors(results), errors(results)
    assert points(pid, now)["tier"] == "silver"
    history = changes(pid)
    assert history[0] == ("standard", "gold", "upgrade")
    # the job went gold → silver (counting the earnings it waited for) or, if it ran
    # first, gold → standard and the earnings raised the tier to silver again
    assert history[1:] in ([("gold", "silver", "recompute")],
                           [("gold", "standard", "recompute"), ("standard", "silver", "upgrade")])
