"""After a merge, what the duplicate earned, lost or spent before it follows it: revoking an
earning takes the moved lot back from the survivor, a reversed penalty and a refunded spend
come back to the survivor, and the duplicate's emptied wallet stays at zero."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from carepoints.audit.service import Actor
from carepoints.enrolment import merge
from carepoints.events import service as events
from carepoints.kit.db import read_tx, write_tx
from carepoints.ledger import service as ledger
from carepoints.ledger.models import Account
from tests.conftest import Db
from tests.helpers import assert_ledger_intact, balance, bp, enrol, event, ingest_one

STAFF = Actor("staff", "0190a5f0-0000-7000-8000-0000000000cc", "frontdesk")


def _wallet(pid: str) -> tuple[str, int, int]:
    t = Account.__table__
    with read_tx() as s:
        row = s.connection().execute(select(t.c.id, t.c.balance, t.c.debt).where(t.c.patient_id == pid)).one()
    return row[0], row[1], row[2]


def test_revokes_and_refunds_of_the_duplicate_follow_it_to_the_survivor(db: Db, now: datetime) -> None:
    survivor, dup = enrol(now), enrol(now)
    reading = ingest_one(now, event(dup, "health.measurement", now - timedelta(hours=3), bp()))
    assert sum(a["points"] for a in reading["awards"]) == 60
    slot = (now - timedelta(hours=2)).isoformat()
    penalty = ingest_one(now, event(dup, "appointment.no_show", now - timedelta(hours=2),
                                    {"appointment_id": "a-dup-1", "slot_start": slot}))
    assert [a["points"] for a in penalty["awards"]] == [-50]
    wallet, _b, _d = _wallet(dup)
    with write_tx() as s:
        spent = ledger.spend(s, wallet, 20, now)
    assert balance(dup, now) == 90

    with write_tx() as s:
        merge.merge(s, survivor, dup, STAFF, now, reason_code="duplicate_registration")
    assert balance(survivor, now) == 190
    assert _wallet(dup)[1:] == (0, 0)

    later = now + timedelta(minutes=5)
    with write_tx() as s:
        out = events.revoke(s, now=later, reason="test", event_id=reading["event_id"])
    assert sum(p["points"] for p in out["reversed"]) == -60
    assert balance(survivor, later) == 130
    with write_tx() as s:
        events.revoke(s, now=later, reason="appeal", event_id=penalty["event_id"])
    assert balance(survivor, later) == 180
    with write_tx() as s:
        ledger.refund(s, spent.id, later, expires_at=later + timedelta(days=365))
    assert balance(survivor, later) == 200
    assert _wallet(dup)[1:] == (0, 0)  # nothing came back to, or was charged on, the emptied record
    assert_ledger_intact()


def test_a_moved_lot_is_taken_back_from_the_survivor(db: Db, now: datetime) -> None:
    """An earning still unspent at the merge moved as a lot: revoking it takes that lot."""
    survivor, dup = enrol(now), enrol(now)
    reading = ingest_one(now, event(dup, "health.measurement", now - timedelta(hours=3), bp()))
    with write_tx() as s:
        merge.merge(s, survivor, dup, STAFF, now, reason_code="duplicate_registration")
    assert balance(survivor, now) == 260
    with write_tx() as s:
        events.revoke(s, now=now, reason="test", event_id=reading["event_id"])
    assert balance(survivor, now) == 200
    assert _wallet(dup)[1:] == (0, 0)
    assert_ledger_intact()
