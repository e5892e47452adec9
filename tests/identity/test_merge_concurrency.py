"""Merges under real concurrency (threads with their own connections that commit): a merge
racing an ingest for the duplicate, and two merges of one duplicate into different
survivors. Queued behind the duplicate's wallet lock on PostgreSQL; serialised by BEGIN
IMMEDIATE on SQLite."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from carepoints.enrolment.errors import MergeAlreadyMergedError
from carepoints.events.models import Event
from carepoints.kit.db import read_tx
from carepoints.ledger import service as ledger
from carepoints.ledger.models import Account
from tests.conftest import Db
from tests.helpers import assert_ledger_intact, balance, bp, enrol, event, ingest_one
from tests.identity.test_merge import EXT, do_merge, patient
from tests.locks import errors, oks, race


def wallet(pid: str) -> str:
    with read_tx() as s:
        return ledger.wallet_of(s, pid)


def test_merge_racing_ingest_for_the_duplicate(racing: Db, now: datetime) -> None:
    s = enrol(now)
    d = enrol(now, external_ids=[EXT])
    at = now + timedelta(minutes=1)
    ev = {**event(d, "health.measurement", now, bp(), key="race-1"), "patient": EXT}
    results = race(racing, [lambda: do_merge(s, d, at), lambda: ingest_one(at, ev)],
                   lock=(Account.__table__, [wallet(d)]))
    assert not errors(results), errors(results)
    merged, outcome = oks(results)
    earned = sum(a["points"] for a in outcome["awards"])
    assert earned == 60  # first check-in 50 + check-in 10, whichever record it landed on first
    # whoever went first, the points end with the survivor and the duplicate's wallet is empty
    assert balance(s, at) == 200 + earned
    assert balance(d, at) == 0
    with read_tx() as sx:
        owner = sx.connection().execute(select(Event.__table__.c.patient_id).where(
            Event.__table__.c.id == outcome["event_id"])).scalar()
    assert owner == s
    assert merged[0]["moved"]["points"] in (100, 160)
    assert patient(d) == {"status": "merged", "merged_into": s}
    assert_ledger_intact()


def test_two_merges_of_one_duplicate_exactly_one_wins(racing: Db, now: datetime) -> None:
    a, b, d = enrol(now), enrol(now), enrol(now)
    results = race(racing, [lambda: do_merge(a, d, now), lambda: do_merge(b, d, now)],
                   lock=(Account.__table__, [wallet(d)]))
    won, lost = oks(results), errors(results)
    assert len(won) == 1
    assert len(lost) == 1
    assert isinstance(lost[0], MergeAlreadyMergedError)
    winner = won[0][0]["survivor_id"]
    loser = b if winner == a else a
    assert lost[0].params == {"merged_into": winner}
    assert patient(d) == {"status": "merged", "merged_into": winner}
    assert balance(winner, now) == 200
    assert balance(loser, now) == 100
    assert balance(d, now) == 0
    assert_ledger_intact()
