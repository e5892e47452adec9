"""Concurrent grants and erasures of one patient from separate connections that really
commit: one active grant per purpose, one erasure (both databases)."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from sqlalchemy import select

from carepoints.audit.service import Actor
from carepoints.enrolment import privacy
from carepoints.kit.db import read_tx, table, write_tx
from carepoints.kit.time import utc_now
from carepoints.patients.models import Consent
from tests.conftest import Db
from tests.helpers import assert_ledger_intact, enrol

RACERS = 8
DESK = Actor("staff", "desk", "frontdesk")


def race(fn: Any) -> tuple[list[Any], list[BaseException]]:
    results: list[Any] = []
    errors: list[BaseException] = []
    gate = threading.Barrier(RACERS)
    lock = threading.Lock()

    def run() -> None:
        gate.wait()
        try:
            with write_tx() as session:
                out = fn(session, utc_now())
            with lock:
                results.append(out)
        except BaseException as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(RACERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results, errors


def test_parallel_grants_leave_one_active_consent(racing: Db, now: datetime) -> None:
    pid = enrol(now)
    results, errors = race(lambda s, n: privacy.grant(s, pid, "research", "1.0", DESK, n))
    assert errors == []
    assert sorted(created for _doc, created in results) == [False] * (RACERS - 1) + [True]
    assert len({doc["id"] for doc, _created in results}) == 1
    c = table(Consent)
    with read_tx() as session:
        rows = session.connection().execute(select(c.c.id).where(c.c.patient_id == pid, c.c.purpose == "research")
                                            ).all()
    assert len(rows) == 1


def test_parallel_erasures_erase_once(racing: Db, now: datetime) -> None:
    pid = enrol(now)
    results, errors = race(lambda s, n: privacy.erase(s, pid, DESK, n, reason="patient_request"))
    assert errors == []
    assert sorted(r.created for r in results) == [False] * (RACERS - 1) + [True]
    assert len({str(r.doc["erased_at"]) for r in results}) == 1
    assert_ledger_intact()
