"""Appeals under real concurrency (threads, own connections, real commits; both databases):
two staff deciding one appeal at once — exactly one wins and the event is revoked once; two
appeals of one penalty at once — exactly one is open. On PostgreSQL the racers queue behind
the patient's row lock, held until they all wait, then let go together."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import func, select

from carepoints.audit.service import Actor
from carepoints.events.schemas import PatientRef
from carepoints.kit.db import read_tx, table, write_tx
from carepoints.kit.errors import AppError
from carepoints.ledger.models import Transfer
from carepoints.operations import appeals
from carepoints.operations.models import Appeal
from carepoints.patients.models import Patient
from tests.conftest import Db
from tests.helpers import assert_ledger_intact, balance, enrol, event, ingest_one, points
from tests.locks import errors, oks, race

DESKS = [Actor("staff", f"0190a5f0-0000-7000-8000-0000000000{i:02d}", "frontdesk") for i in range(10, 16)]


def _penalty(pid: str, now: datetime, days_ago: int) -> str:
    slot = now - timedelta(days=days_ago)
    out = ingest_one(now, event(pid, "appointment.no_show", slot + timedelta(minutes=30),
                                {"appointment_id": f"r-{pid[-6:]}-{days_ago}", "slot_start": slot.isoformat()}))
    return str(out["event_id"])


def _file(actor: Actor, pid: str, eid: str, now: datetime) -> str:
    with write_tx() as s:
        return str(appeals.file(s, actor, now, patient_id=None, ref=PatientRef(id=pid), reason="hospitalised",
                                event_id=eid)["id"])


def _decide(appeal_id: str, outcome: str, actor: Actor, now: datetime) -> str:
    with write_tx() as s:
        return str(appeals.decide(s, appeal_id, outcome, actor, now, note="n")["status"])


def test_two_staff_deciding_at_once_one_wins_and_the_event_is_revoked_once(racing: Db, now: datetime) -> None:
    pid = enrol(now)
    _penalty(pid, now, 5)
    _penalty(pid, now, 4)
    third = _penalty(pid, now, 3)
    assert points(pid, now)["suspended_until"] is not None
    appeal_id = _file(Actor("patient", pid, "patient"), pid, third, now)

    deciders = DESKS[:4]
    results = race(racing, [partial(_decide, appeal_id, "reversed", a, now) for a in deciders],
                   lock=(table(Patient), [pid]))
    assert oks(results) == ["reversed"]
    errs = errors(results)
    assert len(errs) == 3
    assert all(isinstance(e, AppError) and e.code == "appeals.already_decided" for e in errs), errs
    t = table(Transfer)
    with read_tx() as s:
        n = s.connection().execute(select(func.count()).select_from(t).where(
            t.c.event_id == third, t.c.kind == "reversal")).scalar()
        row = s.connection().execute(select(table(Appeal)).where(table(Appeal).c.id == appeal_id)).mappings().one()
    assert n == 1
    winner = next(a for a, (kind, _v) in zip(deciders, results, strict=True) if kind == "ok")
    assert row["decided_by_id"] == winner.id
    assert balance(pid, now) == 0  # 100 - 150 + 50, once
    assert points(pid, now)["suspended_until"] is None
    assert_ledger_intact()


def test_an_upheld_and_a_reversed_decision_at_once_exactly_one_lands(racing: Db, now: datetime) -> None:
    pid = enrol(now)
    eid = _penalty(pid, now, 1)
    appeal_id = _file(DESKS[0], pid, eid, now)
    results = race(racing, [lambda: _decide(appeal_id, "upheld", DESKS[1], now),
                            lambda: _decide(appeal_id, "reversed", DESKS[2], now)], lock=(table(Patient), [pid]))
    [won] = oks(results)
    [err] = errors(results)
    assert isinstance(err, AppError)
    assert err.code == "appeals.already_decided"
    assert balance(pid, now) == (100 if won == "reversed" else 50)
    assert_ledger_intact()


def test_appeals_of_one_penalty_racing_leave_exactly_one_open(racing: Db, now: datetime) -> None:
    pid = enrol(now)
    eid = _penalty(pid, now, 1)
    filers = [Actor("patient", pid, "patient"), *DESKS[:4]]
    results = race(racing, [partial(_file, a, pid, eid, now) for a in filers], lock=(table(Patient), [pid]))
    [won] = oks(results)
    errs = errors(results)
    assert len(errs) == 4
    assert all(isinstance(e, AppError) and e.code == "appeals.already_open" for e in errs), errs
    t = table(Appeal)
    with read_tx() as s:
        rows = s.connection().execute(select(t.c.id, t.c.status).where(t.c.subject_id == eid)).all()
    assert [tuple(r) for r in rows] == [(won, "open")]
