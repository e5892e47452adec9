"""Real concurrency on SQLite and PostgreSQL: racers in threads, each with its own connection and
transaction that really commits (tests.locks). Ten patients racing for a ward day of three beds:
exactly three get one and the day's counter says three; five surgeries of 120 minutes racing for a
300-minute room day: exactly two; one order booked from eight threads at once on different days:
one date, one bed taken."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import select

from carepoints.audit.service import Actor
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.time import utc_now
from carepoints.services.admissions import repository as repo
from carepoints.services.admissions import service, surgery
from carepoints.services.admissions.errors import DayFullError, RoomFullError
from carepoints.services.admissions.schemas import OrderCreate, SurgeryCreate, SurgerySchedule
from tests.conftest import Db
from tests.helpers import enrol
from tests.locks import errors, oks, race
from tests.services.admissions.world import ADMIN, Hospital, local_today, working_day

NURSE = Actor("staff", "race-nurse", "nurse")


def _order(h: Hospital, i: int) -> str:
    pid = enrol(utc_now())
    with write_tx() as s:
        doc, _ = service.issue_order(s, OrderCreate(patient_id=pid, ward_id=h.ward, idempotency_key=f"race-{i}"),
                                     ADMIN, utc_now())
    return str(doc["id"])


def _book(order_id: str, day: date) -> dict[str, Any]:
    with write_tx() as s:
        return service.book_date(s, order_id, day, NURSE, utc_now())


def _counter(h: Hospital, day: date) -> int:
    with read_tx() as s:
        return int(s.connection().execute(select(repo.ward_days.c.booked).where(
            repo.ward_days.c.ward_id == h.ward, repo.ward_days.c.day == day)).scalar_one())


def test_ten_patients_racing_for_three_beds(racing: Db) -> None:
    h = Hospital(beds=3)
    orders = [_order(h, i) for i in range(10)]
    day = local_today() + timedelta(days=3)
    results = race(racing, [lambda oid=oid: _book(oid, day) for oid in orders],  # type: ignore[misc]
                   lock=(repo.orders, orders))
    won = oks(results)
    assert len(won) == 3, [repr(e) for e in errors(results)]
    assert all(type(e) is DayFullError for e in errors(results)), [repr(e) for e in errors(results)]
    assert _counter(h, day) == 3
    with read_tx() as s:
        booked = s.connection().execute(select(repo.orders.c.id).where(repo.orders.c.status == "booked")).scalars()
        assert sorted(booked) == sorted(d["id"] for d in won)


def test_one_order_from_eight_threads_takes_one_bed(racing: Db) -> None:
    h = Hospital(beds=5)
    oid = _order(h, 99)
    days = [local_today() + timedelta(days=3 + i) for i in range(8)]
    results = race(racing, [lambda d=d: _book(oid, d) for d in days],  # type: ignore[misc]
                   lock=(repo.orders, [oid]))
    assert not errors(results), [repr(e) for e in errors(results)]
    with read_tx() as s:
        row = repo.get(s.connection(), repo.orders, oid)
        assert row is not None
        counts = dict(s.connection().execute(select(repo.ward_days.c.day, repo.ward_days.c.booked)
                                             .where(repo.ward_days.c.ward_id == h.ward)).all())
    assert sum(counts.values()) == 1  # each move gave the previous day's bed back
    assert counts[row["admission_date"]] == 1
    assert row["reschedules"] == 7


def test_five_surgeries_racing_for_a_room_day(racing: Db) -> None:
    h = Hospital(room_minutes=300, room_cases=10)
    ids = []
    for i in range(5):
        pid = enrol(utc_now())
        with write_tx() as s:
            doc, _ = surgery.request(s, SurgeryCreate(patient_id=pid, department_id=h.department, procedure="手术",
                                                      kind="elective", expected_minutes=120,
                                                      idempotency_key=f"race-s{i}"), ADMIN, utc_now())
        ids.append(str(doc["id"]))
    day = working_day(local_today(), 3)

    def schedule(sid: str) -> dict[str, Any]:
        with write_tx() as s:
            return surgery.schedule(s, sid, SurgerySchedule(room_id=h.room, date=day), NURSE, utc_now())

    results = race(racing, [lambda sid=sid: schedule(sid) for sid in ids],  # type: ignore[misc]
                   lock=(repo.surgeries, ids))
    assert len(oks(results)) == 2, [repr(e) for e in errors(results)]
    assert all(type(e) is RoomFullError for e in errors(results))
    with read_tx() as s:
        counter = repo.room_day(s.connection(), h.room, day)
    assert counter is not None
    assert (counter["minutes_booked"], counter["cases_booked"]) == (240, 2)
