"""Real concurrency in booking: every racer is a thread with its own connection
and its own `write_tx()` that really commits.

On SQLite the writers serialise through BEGIN IMMEDIATE and the busy timeout.
On PostgreSQL the racers are released together by a barrier and, to make sure
they really contend, the main thread first holds the row lock each of them
needs (their patient rows, or the slot they all want) until every racer is
queued behind it (visible in pg_stat_activity), and then lets them go at once.
Racers that find no free slot never wait for one (SKIP LOCKED): whoever is
still claiming when the slots run out loses."""

from __future__ import annotations

import threading
from datetime import date, timedelta
from datetime import time as clock
from typing import Any

from sqlalchemy import Table, func, select

from carepoints.config import get_settings
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.time import utc_now
from carepoints.patients.models import Patient
from carepoints.scheduling import repository as repo
from carepoints.scheduling import service
from carepoints.scheduling.errors import (
    ClinicianDayLimitError,
    DailyLimitError,
    SessionCancelledError,
    SessionFullError,
    SlotTakenError,
)
from carepoints.scheduling.models import LIVE
from carepoints.scheduling.schemas import (
    AppointmentCreate,
    ClinicianCreate,
    DepartmentCreate,
    InstitutionCreate,
    SessionCancel,
    SessionCreate,
)
from tests.conftest import Db
from tests.helpers import enrol
from tests.locks import Outcome, RowLocks, errors, oks, race

_patients: Table = Patient.__table__  # type: ignore[assignment]
_appts = repo.appointments
_slots = repo.slots

Booked = tuple[dict[str, Any], bool]


# --- the race harness ---------------------------------------------------------------

def assert_all(errs: list[BaseException], kind: type[Exception], code: str) -> None:
    assert all(type(e) is kind for e in errs), [repr(e) for e in errs if type(e) is not kind]
    assert all(getattr(e, "code", None) == code for e in errs)


# --- set-up through the service --------------------------------------------------------

def ahead(days: int) -> date:
    """A local date `days` ahead of the real clock (bookings use the real clock)."""
    return (utc_now().astimezone(get_settings().tz) + timedelta(days=days)).date()


def department() -> str:
    now = utc_now()
    with write_tx() as session:
        inst = service.create_institution(session, InstitutionCreate(code="H1", name_zh="第一医院"), now)
        dept = service.create_department(
            session, DepartmentCreate(institution_id=inst["id"], code="CARD", name_zh="心内科"), now)
    return str(dept["id"])


def clinicians(dept: str, n: int) -> list[str]:
    now = utc_now()
    with write_tx() as session:
        return [str(service.create_clinician(session, ClinicianCreate(department_id=dept, code=f"D{i}",
                                                                      name=f"医生{i}"), now)["id"])
                for i in range(n)]


def clinic_session(clinician: str, day: date, start: clock, end: clock, slot_minutes: int,
                   capacity: int | None = None) -> dict[str, Any]:
    """A released session whose slots are all online (no referral share)."""
    now = utc_now()
    body = SessionCreate.model_validate({
        "clinician_id": clinician, "date": day.isoformat(), "start": start.isoformat(), "end": end.isoformat(),
        "slot_minutes": slot_minutes, "capacity": capacity, "fee_cny": "50.00",
        "release_at": (now - timedelta(days=1)).isoformat(), "pattern": ["online"], "referral_share": "0"})
    with write_tx() as session:
        return service.create_session(session, body, now)


def book(pid: str, session_id: str, key: str, slot_id: str | None = None) -> Booked:
    data = AppointmentCreate(patient_id=pid, session_id=session_id, slot_id=slot_id, idempotency_key=key)
    with write_tx() as session:
        return service.book(session, data, utc_now())


def patients(n: int) -> list[str]:
    now = utc_now()
    return [enrol(now) for _ in range(n)]


def slots_of(session_id: str) -> list[dict[str, Any]]:
    with read_tx() as session:
        return [dict(r) for r in session.connection().execute(
            select(_slots).where(_slots.c.session_id == session_id).order_by(_slots.c.seq)).mappings()]


def appointments(**where: Any) -> list[dict[str, Any]]:
    with read_tx() as session:
        stmt = select(_appts)
        for col, value in where.items():
            stmt = stmt.where(_appts.c[col] == value)
        return [dict(r) for r in session.connection().execute(stmt.order_by(_appts.c.seq)).mappings()]


def live(**where: Any) -> list[dict[str, Any]]:
    return [a for a in appointments(**where) if a["status"] in LIVE]


def assert_one_holder_per_slot(session_id: str) -> None:
    """Every held slot names exactly the one live appointment that holds it, and back."""
    with read_tx() as session:
        per_slot: dict[str, int] = dict(session.connection().execute(
            select(_appts.c.slot_id, func.count()).where(_appts.c.session_id == session_id,
                                                         _appts.c.status.in_(LIVE))
            .group_by(_appts.c.slot_id)).all())
    assert all(n == 1 for n in per_slot.values()), per_slot
    holders = {a["slot_id"]: a["id"] for a in live(session_id=session_id)}
    assert {s["id"]: s["appointment_id"] for s in slots_of(session_id) if s["appointment_id"]} == holders


# --- one slot left, fifty patients ------------------------------------------------------

def test_fifty_patients_racing_for_the_last_slot_one_wins(racing: Db) -> None:
    dept = department()
    (doc,) = clinicians(dept, 1)
    sess = clinic_session(doc, ahead(4), clock(9), clock(10), 15)  # 4 slots
    sid = sess["id"]
    assert sess["free"] == {"online": 4, "onsite": 0, "referral": 0}
    for pid in patients(3):
        book(pid, sid, "early")
    last = slots_of(sid)[-1]
    assert (last["seq"], last["appointment_id"]) == (4, None)

    racers = patients(50)
    results = race(racing, [lambda pid=pid: book(pid, sid, "last") for pid in racers],  # type: ignore[misc]
                   lock=(_patients, racers))
    won: list[Booked] = oks(results)
    assert len(won) == 1, [repr(e) for e in errors(results)][:3]
    assert_all(errors(results), SessionFullError, "scheduling.session_full")
    assert len(errors(results)) == 49
    appt, created = won[0]
    assert created is True
    assert (appt["slot_id"], appt["seq"], appt["status"]) == (last["id"], 4, "booked")
    winner = racers[[kind for kind, _ in results].index("ok")]
    assert appt["patient_id"] == winner

    on_last = live(slot_id=last["id"])
    assert [a["id"] for a in on_last] == [appt["id"]]
    assert on_last[0]["patient_id"] == winner
    assert next(s for s in slots_of(sid) if s["seq"] == 4)["appointment_id"] == appt["id"]
    assert len(appointments(session_id=sid)) == 4  # the losers left no row behind
    assert_one_holder_per_slot(sid)
    with read_tx() as session:
        assert service.read_session(session, sid, utc_now())["free"] == {"online": 0, "onsite": 0, "referral": 0}


def test_more_racers_than_slots_fill_every_slot_exactly_once(racing: Db) -> None:
    dept = department()
    (doc,) = clinicians(dept, 1)
    sid = clinic_session(doc, ahead(3), clock(14), clock(15), 5)["id"]  # 12 slots
    racers = patients(30)
    results = race(racing, [lambda pid=pid: book(pid, sid, "k") for pid in racers],  # type: ignore[misc]
                   lock=(_patients, racers))
    won: list[Booked] = oks(results)
    assert len(won) == 12, [repr(e) for e in errors(results)][:3]
    assert len(errors(results)) == 18
    assert_all(errors(results), SessionFullError, "scheduling.session_full")
    assert sorted(a["seq"] for a, _ in won) == list(range(1, 13))
    assert len({a["slot_id"] for a, _ in won}) == 12

    rows = appointments(session_id=sid)
    assert len(rows) == 12
    assert {r["id"] for r in rows} == {a["id"] for a, _ in won}
    winners = {racers[i] for i, (kind, _) in enumerate(results) if kind == "ok"}
    assert {r["patient_id"] for r in rows} == winners
    slot_rows = slots_of(sid)
    assert len(slot_rows) == 12
    assert all(s["appointment_id"] is not None for s in slot_rows)
    assert len({s["appointment_id"] for s in slot_rows}) == 12  # no appointment holds two slots
    assert_one_holder_per_slot(sid)
    by_id = {r["id"]: r for r in rows}
    assert all(by_id[s["appointment_id"]]["seq"] == s["seq"] for s in slot_rows)


# --- one patient, many threads: the per-patient limits -----------------------------------

def test_one_patient_in_ten_sessions_of_one_day_gets_the_daily_limit(racing: Db) -> None:
    limit = get_settings().booking_max_per_day
    assert limit == 3
    dept = department()
    day = ahead(5)
    sids = [clinic_session(doc, day, clock(8), clock(12), 30)["id"] for doc in clinicians(dept, 10)]
    (pid,) = patients(1)
    results = race(racing, [lambda i=i, sid=sid: book(pid, sid, f"day-{i}")  # type: ignore[misc]
                            for i, sid in enumerate(sids)], lock=(_patients, [pid]))
    won: list[Booked] = oks(results)
    assert len(won) == limit, [repr(e) for e in errors(results)]
    assert_all(errors(results), DailyLimitError, "scheduling.daily_limit")
    assert len(errors(results)) == 10 - limit
    assert all(created for _, created in won)

    held = live(patient_id=pid, day=day)
    assert len(held) == limit
    assert {a["id"] for a in held} == {a["id"] for a, _ in won}
    assert sorted(a["day_rank"] for a in held) == [1, 2, 3]
    assert len({a["session_id"] for a in held}) == limit
    assert len(appointments(patient_id=pid)) == limit


def test_one_patient_in_ten_sessions_of_one_clinician_gets_one(racing: Db) -> None:
    dept = department()
    (doc,) = clinicians(dept, 1)
    day = ahead(5)
    sids = [clinic_session(doc, day, clock(8 + i), clock(8 + i, 30), 10)["id"] for i in range(10)]
    (pid,) = patients(1)
    results = race(racing, [lambda i=i, sid=sid: book(pid, sid, f"doc-{i}")  # type: ignore[misc]
                            for i, sid in enumerate(sids)], lock=(_patients, [pid]))
    won: list[Booked] = oks(results)
    assert len(won) == 1, [repr(e) for e in errors(results)]
    assert len(errors(results)) == 9
    assert_all(errors(results), ClinicianDayLimitError, "scheduling.clinician_limit")

    held = live(patient_id=pid, day=day)
    assert [a["id"] for a in held] == [won[0][0]["id"]]
    assert held[0]["clinician_guard"] == doc
    assert len(appointments(patient_id=pid)) == 1


def test_one_idempotency_key_from_ten_threads_books_once(racing: Db) -> None:
    dept = department()
    (doc,) = clinicians(dept, 1)
    sid = clinic_session(doc, ahead(3), clock(9), clock(11), 10)["id"]
    (pid,) = patients(1)
    results = race(racing, [lambda: book(pid, sid, "app-retry-7")] * 10, lock=(_patients, [pid]))
    assert errors(results) == []
    answers: list[Booked] = oks(results)
    assert len({a["id"] for a, _ in answers}) == 1
    assert sorted(created for _, created in answers) == [False] * 9 + [True]
    first = next(a for a, created in answers if created)
    assert all(a == first for a, _ in answers)  # a replay answers the very same appointment

    rows = appointments(patient_id=pid)
    assert [r["id"] for r in rows] == [first["id"]]
    assert rows[0]["idempotency_key"] == "app-retry-7"
    assert [s["appointment_id"] for s in slots_of(sid) if s["appointment_id"]] == [first["id"]]


def test_ten_patients_choosing_the_same_slot_one_gets_it(racing: Db) -> None:
    dept = department()
    (doc,) = clinicians(dept, 1)
    sid = clinic_session(doc, ahead(3), clock(9), clock(10), 10)["id"]
    chosen = slots_of(sid)[2]
    racers = patients(10)
    results = race(racing, [lambda pid=pid: book(pid, sid, "pick", slot_id=chosen["id"])  # type: ignore[misc]
                            for pid in racers], lock=(_slots, [chosen["id"]]))
    won: list[Booked] = oks(results)
    assert len(won) == 1, [repr(e) for e in errors(results)]
    assert len(errors(results)) == 9
    assert_all(errors(results), SlotTakenError, "scheduling.slot_taken")
    appt, created = won[0]
    assert created is True
    assert (appt["slot_id"], appt["seq"]) == (chosen["id"], 3)

    rows = appointments(session_id=sid)
    assert [r["id"] for r in rows] == [appt["id"]]
    assert rows[0]["patient_id"] == racers[[kind for kind, _ in results].index("ok")]
    held = {s["seq"]: s["appointment_id"] for s in slots_of(sid) if s["appointment_id"]}
    assert held == {3: appt["id"]}
    assert_one_holder_per_slot(sid)


# --- 停诊 while a booking is in flight -------------------------------------------------------

def cancel_session(session_id: str) -> dict[str, Any]:
    with write_tx() as session:
        return service.cancel_session(session, session_id, SessionCancel(reason="医生临时停诊"), utc_now())


def test_a_booking_in_flight_when_the_session_is_cancelled_does_not_survive(racing: Db) -> None:
    """停诊 cancels every live booking of the session; a booking racing with it must either
    be refused (session_cancelled) or be among those cancelled, never stay live."""
    dept = department()
    (doc,) = clinicians(dept, 1)
    sid = clinic_session(doc, ahead(3), clock(9), clock(10), 15)["id"]
    early, late = patients(2)
    first, _ = book(early, sid, "k")
    chosen = slots_of(sid)[2]
    outcome: dict[str, Outcome] = {}

    def booking() -> None:
        try:
            outcome["book"] = ("ok", book(late, sid, "k", slot_id=chosen["id"]))
        except Exception as exc:  # collected and asserted below
            outcome["book"] = ("err", exc)

    thread = threading.Thread(target=booking, daemon=True)
    stopped: dict[str, dict[str, Any]] = {}
    stopper = threading.Thread(target=lambda: stopped.update(doc=cancel_session(sid)), daemon=True)
    if racing.is_postgres:
        # the booking reads the open session, then waits for the chosen slot (held here);
        # the 停诊 starts meanwhile and must wait for the booking, not overtake it
        with RowLocks(racing, _slots, [chosen["id"]]) as held:
            thread.start()
            held.wait_for(1)
            stopper.start()
            held.wait_for(2)
    else:  # BEGIN IMMEDIATE: the booking runs whole before or after the 停诊
        thread.start()
        stopper.start()
    thread.join(timeout=60)
    stopper.join(timeout=60)
    assert not thread.is_alive(), "the booking hung"
    assert not stopper.is_alive(), "the 停诊 hung"
    cancelled = stopped["doc"]

    assert cancelled["status"] == "cancelled"
    rows = {a["patient_id"]: a for a in appointments(session_id=sid)}
    assert (rows[early]["id"], rows[early]["status"], rows[early]["cancelled_by"]) == (
        first["id"], "cancelled", "hospital")
    kind, value = outcome["book"]
    if kind == "err":
        assert isinstance(value, SessionCancelledError), repr(value)
        assert late not in rows
    assert [(a["patient_id"], a["status"]) for a in live(session_id=sid)] == []
    assert [s["seq"] for s in slots_of(sid) if s["appointment_id"] is not None] == []
