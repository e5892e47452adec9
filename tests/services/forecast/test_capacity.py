"""Changing a session's or template's capacity through the scheduling service (scheduling.capacity),
on SQLite and PostgreSQL: more slots are appended where they fit and go to the waitlist first, fewer
remove free slots (never a booked one, preferring slots without a cancelled booking's history),
below the booked count is a 409, beyond what fits a 422, and a started or cancelled session is
refused; nothing is stored by a refusal."""

from __future__ import annotations

from datetime import time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.errors import AppError
from carepoints.kit.time import utc_now
from carepoints.scheduling import capacity, waitlist
from carepoints.scheduling import repository as sched
from carepoints.scheduling import service as sch
from carepoints.scheduling.schemas import AppointmentCreate, CancelIn, SessionCancel, TemplateCreate, WaitlistJoin
from tests.conftest import Db
from tests.helpers import enrol
from tests.pages.test_patient_booking import Hospital
from tests.services.forecast.world import ADMIN, capacity_of

_n = iter(range(10**6))


def _session(h: Hospital, cap: int) -> dict[str, Any]:
    day = (utc_now() + timedelta(days=5)).date()
    return h.session(day, time(8), time(9), minutes=15, capacity=cap)


def _book(session_id: str, slot_id: str | None = None) -> dict[str, Any]:
    pid = enrol(utc_now() - timedelta(days=2))
    with write_tx() as s:
        doc, _ = sch.book(s, AppointmentCreate(patient_id=pid, session_id=session_id, slot_id=slot_id,
                                               idempotency_key=f"c{next(_n)}"), utc_now())
    return doc


def _set(session_id: str, n: int) -> dict[str, Any]:
    with write_tx() as s:
        return capacity.set_session_capacity(s, session_id, n, ADMIN, utc_now())


def _refused(session_id: str, n: int, status: int, code: str) -> None:
    with pytest.raises(AppError) as err:
        _set(session_id, n)
    assert (err.value.status_code, err.value.code) == (status, code), err.value.detail


def _slots(session_id: str) -> list[tuple[int, str]]:
    with read_tx() as s:
        rows = s.connection().execute(select(sched.slots.c.seq, sched.slots.c.starts_at)
                                      .where(sched.slots.c.session_id == session_id)
                                      .order_by(sched.slots.c.seq)).all()
    return [(int(seq), str(at)) for seq, at in rows]


def test_more_slots_go_to_the_waitlist_first(db: Db) -> None:
    h = Hospital()
    sess = _session(h, 2)
    _book(sess["id"])
    _book(sess["id"])
    waiter = enrol(utc_now() - timedelta(days=2))
    with write_tx() as s:
        entry, _ = waitlist.join(s, sess["id"], WaitlistJoin(patient_id=waiter, idempotency_key="w1"), utc_now())
    out = _set(sess["id"], 4)
    assert (out["previous"], out["added"], out["removed"], out["waitlist_served"]) == (2, 2, 0, 1)
    assert capacity_of(sess["id"]) == (4, 4)
    with read_tx() as s:
        assert waitlist.read(s, entry["id"])["status"] == "booked"  # five days ahead: booked at once
        doc = sch.read_session(s, sess["id"], utc_now())
    assert doc["free"]["online"] + doc["free"]["onsite"] == 1
    assert [seq for seq, _ in _slots(sess["id"])] == [1, 2, 3, 4]
    _refused(sess["id"], 5, 422, "request.invalid")  # four 15-minute slots fill 08:00-09:00
    assert capacity_of(sess["id"]) == (4, 4)
    again = _set(sess["id"], 4)
    assert (again["added"], again["removed"]) == (0, 0)


def test_fewer_slots_remove_free_ones_never_below_the_booked(db: Db) -> None:
    h = Hospital()
    sess = _session(h, 4)
    with read_tx() as s:
        last = s.connection().execute(select(sched.slots.c.id).where(sched.slots.c.session_id == sess["id"],
                                                                    sched.slots.c.seq == 4)).scalar_one()
    gone = _book(sess["id"], slot_id=last)
    with write_tx() as s:
        sch.cancel(s, gone["id"], CancelIn(by="patient"), utc_now())  # slot 4 is free but names a booking
    kept = _book(sess["id"])  # slot 1
    out = _set(sess["id"], 2)
    assert out["removed"] == 2
    assert [seq for seq, _ in _slots(sess["id"])] == [1, 4]  # 3 and 2 went: 4 keeps its booking history
    _refused(sess["id"], 1, 409, "scheduling.capacity_slots_in_use")
    _book(sess["id"])  # slot 4 taken again: two booked
    _refused(sess["id"], 1, 409, "scheduling.capacity_below_booked")
    _refused(sess["id"], 0, 422, "request.invalid")
    assert capacity_of(sess["id"]) == (2, 2)
    assert kept["status"] == "booked"


def test_started_and_cancelled_sessions_are_refused(db: Db) -> None:
    h = Hospital()
    soon = h.soon()
    with write_tx() as s, pytest.raises(AppError) as err:
        capacity.set_session_capacity(s, soon["id"], 1, ADMIN, utc_now() + timedelta(hours=3))
    assert err.value.code == "scheduling.capacity_session_started"
    sess = _session(h, 2)
    with write_tx() as s:
        sch.cancel_session(s, sess["id"], SessionCancel(reason="停诊"), utc_now())
    _refused(sess["id"], 3, 409, "scheduling.session_cancelled")
    _refused("not-an-id", 3, 404, "scheduling.session_not_found")


def test_a_template_capacity_applies_to_the_sessions_made_from_then_on(db: Db) -> None:
    h = Hospital()
    with write_tx() as s:
        tpl = sch.create_template(s, TemplateCreate(clinician_id=h.clinicians[0], weekday=3, start=time(8),
                                                    end=time(9), slot_minutes=15, fee_cny=Decimal("10"),
                                                    level="general"), utc_now())
    with write_tx() as s:
        assert capacity.set_template_capacity(s, tpl["id"], 3, ADMIN, utc_now()) == {
            "id": tpl["id"], "capacity": 3, "previous": 4}
    with write_tx() as s, pytest.raises(AppError) as err:
        capacity.set_template_capacity(s, tpl["id"], 5, ADMIN, utc_now())
    assert err.value.status_code == 422
    with write_tx() as s:
        sch.generate_sessions(s, utc_now(), 7)
    with read_tx() as s:
        caps = s.connection().execute(select(sched.sessions.c.capacity)
                                      .where(sched.sessions.c.template_id == tpl["id"])).scalars().all()
    assert caps == [3]
    with write_tx() as s:
        sch.deactivate_template(s, tpl["id"])
    with write_tx() as s, pytest.raises(AppError) as err:
        capacity.set_template_capacity(s, tpl["id"], 2, ADMIN, utc_now())
    assert err.value.code == "scheduling.template_not_found"
