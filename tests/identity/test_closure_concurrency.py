"""Closures racing each other and racing ingest for the same patient, from separate connections
that really commit (both databases; on PostgreSQL every racer first queues behind the wallet's
row lock): one closure posts the expiry, and no points survive a closure."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import func, select

from carepoints.audit.service import Actor
from carepoints.enrolment import closure
from carepoints.kit.db import read_tx, table, write_tx
from carepoints.kit.time import utc_now
from carepoints.ledger import service as ledger
from carepoints.ledger.models import Account, Transfer
from tests.conftest import Db
from tests.helpers import assert_ledger_intact, balance, enrol, event, ingest
from tests.locks import errors, oks, race

DESK = Actor("staff", "0190a5f0-0000-7000-8000-0000000000d1", "frontdesk")
_t = table(Transfer)


def close(pid: str) -> dict[str, object]:
    with write_tx() as session:
        return closure.change_status(session, pid, "closed", "patient_request", DESK, utc_now())


def wallet(pid: str) -> str:
    with read_tx() as session:
        return ledger.wallet_of(session, pid)


def total(wid: str, kind: str) -> int:
    with read_tx() as session:
        return int(session.connection().execute(select(func.coalesce(func.sum(_t.c.amount), 0)).where(
            _t.c.wallet_id == wid, _t.c.kind == kind)).scalar() or 0)


def count(wid: str, kind: str) -> int:
    with read_tx() as session:
        return int(session.connection().execute(select(func.count()).select_from(_t).where(
            _t.c.wallet_id == wid, _t.c.kind == kind)).scalar() or 0)


def test_parallel_closures_expire_once(racing: Db, now: datetime) -> None:
    pid = enrol(utc_now())
    wid = wallet(pid)
    results = race(racing, [lambda: close(pid) for _ in range(6)], lock=(table(Account), [wid]))
    assert errors(results) == []
    changed = sorted(bool(r["changed"]) for r in oks(results))
    assert changed == [False] * 5 + [True]
    assert (count(wid, "expiry"), total(wid, "expiry")) == (1, 100)
    assert balance(pid, utc_now()) == 0
    assert_ledger_intact()


def test_a_closure_racing_ingest_leaves_no_points(racing: Db, now: datetime) -> None:
    pid = enrol(utc_now())
    wid = wallet(pid)

    def earn() -> object:
        at = utc_now()
        return ingest(at, event(pid, "referral.visit", at - timedelta(minutes=5),
                                {"referral_id": uuid.uuid4().hex, "from_institution": "社区中心"}))[0]

    results = race(racing, [lambda: close(pid), earn, earn, earn, earn], lock=(table(Account), [wid]))
    assert errors(results) == []
    doc = oks(results)[0]
    assert isinstance(doc, dict)
    assert doc["changed"] is True
    earned = total(wid, "earn")  # the welcome and every referral credited before the closure
    awarded = sum(a["points"] for r in oks(results)[1:] for a in r["awards"])  # type: ignore[index]
    assert earned == 100 + awarded
    # whatever was credited before the closure committed expired with it; nothing came after
    assert doc["outcome"]["points_expired"] == earned  # type: ignore[index]
    assert (count(wid, "expiry"), total(wid, "expiry")) == (1, earned)
    assert balance(pid, utc_now()) == 0
    assert_ledger_intact()
