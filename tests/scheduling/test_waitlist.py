"""The waitlist (候补) on a fixed clock, on SQLite and PostgreSQL: a freed slot goes to
the first in line (booked at once far ahead, offered for confirmation close to
the slot), never back to the open pool while anyone waits; lapsed or declined
offers pass on and never cost points."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.errors import AppError
from carepoints.kit.outbox import OutboxMessage
from carepoints.scheduling import errors as err_
from carepoints.scheduling import service as sch
from carepoints.scheduling import waitlist
from carepoints.scheduling.models import Slot
from carepoints.scheduling.schemas import SessionCancel, WaitlistJoin
from tests.conftest import Db
from tests.helpers import balance, enrol
from tests.scheduling.test_service import NOW, Hospital, book, cancel, local, refused


@pytest.fixture
def hospital(db: Db) -> Hospital:
    return Hospital()


def join(pid: str, session_id: str, at: datetime = NOW, key: str | None = None, **extra: Any) -> dict[str, Any]:
    with write_tx() as s:
        doc, _created = waitlist.join(s, session_id, WaitlistJoin(
            patient_id=pid, idempotency_key=key or f"w-{pid}-{session_id}", **extra), at)
    return doc


def entry(entry_id: str) -> dict[str, Any]:
    with read_tx() as s:
        return waitlist.read(s, entry_id)


def appointment(appt_id: str) -> dict[str, Any]:
    with read_tx() as s:
        return sch.read_appointment(s, appt_id)


def full_session(hospital: Hospital, **extra: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A two-slot session (one online, one onsite), both booked."""
    sess = hospital.session(end="08:20", **extra)
    return sess, [book(enrol(NOW), sess["id"]), book(enrol(NOW), sess["id"], channel="onsite")]


def test_join_only_when_full_and_in_order(hospital: Hospital) -> None:
    sess = hospital.session(end="08:20")
    err = refused(join, enrol(NOW), sess["id"])
    assert isinstance(err, err_.NotFullError)
    holder = enrol(NOW)
    book(holder, sess["id"])
    assert isinstance(refused(join, holder, sess["id"]), err_.AlreadyBookedError)
    first, second = enrol(NOW), enrol(NOW)
    a = join(first, sess["id"])
    b = join(second, sess["id"], at=NOW + timedelta(minutes=1))
    assert (a["status"], a["position"], b["position"]) == ("waiting", 1, 2)
    assert join(first, sess["id"]) == entry(a["id"])  # the same key again: the same entry
    assert isinstance(refused(join, first, sess["id"], key="other"), err_.AlreadyWaitingError)
    # the onsite slot is still free: onsite patients book it, they do not wait
    assert isinstance(refused(join, enrol(NOW), sess["id"], channel="onsite"), err_.NotFullError)


def test_far_ahead_a_freed_slot_is_booked_for_the_first_in_line(hospital: Hospital) -> None:
    sess, (taken, _other) = full_session(hospital)
    first, second = enrol(NOW), enrol(NOW)
    a = join(first, sess["id"])
    b = join(second, sess["id"], at=NOW + timedelta(minutes=1))
    cancel(taken["id"], NOW + timedelta(hours=1))  # 4 days ahead: booked at once
    got = entry(a["id"])
    assert got["status"] == "booked"
    booked = appointment(got["appointment_id"])
    assert (booked["patient_id"], booked["slot_id"], booked["status"]) == (first, taken["slot_id"], "booked")
    assert entry(b["id"])["position"] == 1
    with read_tx() as s:
        free = sch.read_session(s, sess["id"], NOW)["free"]
        told = s.scalars(select(OutboxMessage.payload).where(OutboxMessage.key == first,
                                                             OutboxMessage.topic == "appointment.waitlist")).all()
    assert free == {"online": 0, "onsite": 0, "referral": 0}  # never back to the pool
    assert [m["event"] for m in told] == ["booked"]


def test_close_to_the_slot_an_offer_must_be_confirmed(hospital: Hospital) -> None:
    sess, (taken, _other) = full_session(hospital)
    pid = enrol(NOW)
    e = join(pid, sess["id"])
    eve = local(date(2026, 6, 19), "08:00") - timedelta(hours=20)  # within 24 h of the slot
    cancel(taken["id"], eve)
    offered = entry(e["id"])
    assert offered["status"] == "offered"
    assert datetime.fromisoformat(offered["offer_expires_at"]) == eve + timedelta(minutes=30)
    with read_tx() as s:
        held = s.scalars(select(Slot.held_for).where(Slot.id == taken["slot_id"])).one()
        assert held == e["id"]
        assert sch.read_session(s, sess["id"], eve)["free"]["online"] == 0  # held, not free
    assert isinstance(refused(book, enrol(NOW), sess["id"], at=eve), err_.SessionFullError)
    with write_tx() as s:
        done = waitlist.confirm(s, e["id"], eve + timedelta(minutes=10))
    assert done["status"] == "booked"
    assert appointment(done["appointment_id"])["slot_id"] == taken["slot_id"]


def test_a_lapsed_offer_passes_on_and_costs_nothing(hospital: Hospital) -> None:
    sess, (taken, _other) = full_session(hospital)
    slow, next_ = enrol(NOW), enrol(NOW)
    a = join(slow, sess["id"])
    b = join(next_, sess["id"], at=NOW + timedelta(minutes=1))
    eve = local(date(2026, 6, 19), "08:00") - timedelta(hours=10)
    cancel(taken["id"], eve)
    with write_tx() as s:
        assert waitlist.expire_offers(s, eve + timedelta(minutes=29)) == 0
    with write_tx() as s:
        assert waitlist.expire_offers(s, eve + timedelta(minutes=30)) == 1
    assert entry(a["id"])["status"] == "lapsed"
    assert entry(b["id"])["status"] == "offered"
    with write_tx() as s:
        err = refused(waitlist.confirm, s, a["id"], eve + timedelta(minutes=31))
    assert isinstance(err, err_.WaitlistStateError)
    # the second declines: nobody else waits, so the slot returns to the pool
    with write_tx() as s:
        assert waitlist.decline(s, b["id"], eve + timedelta(minutes=40))["status"] == "declined"
    with read_tx() as s:
        assert sch.read_session(s, sess["id"], eve + timedelta(minutes=41))["free"]["online"] == 1
    with write_tx() as s:
        assert sch.sweep_no_shows(s, local(date(2026, 6, 19), "12:00")) == 1  # only the other booking
    assert balance(slow, local(date(2026, 6, 20), "12:00")) == 100


def test_an_offer_confirmed_too_late_is_refused(hospital: Hospital) -> None:
    sess, (taken, _other) = full_session(hospital)
    e = join(enrol(NOW), sess["id"])
    eve = local(date(2026, 6, 19), "08:00") - timedelta(hours=2)
    cancel(taken["id"], eve - timedelta(minutes=1), by="hospital")
    with write_tx() as s:
        err = refused(waitlist.confirm, s, e["id"], eve + timedelta(minutes=45))
    assert isinstance(err, err_.OfferExpiredError)
    assert entry(e["id"])["status"] == "offered"  # until the job passes it on


def test_a_waiting_patient_over_a_limit_is_skipped(hospital: Hospital) -> None:
    sess, (taken, _other) = full_session(hospital)
    busy, free = enrol(NOW), enrol(NOW)
    a = join(busy, sess["id"])
    b = join(free, sess["id"], at=NOW + timedelta(minutes=1))
    for clinician in (1, 2, 3):  # three bookings that day: the daily limit
        book(busy, hospital.session(clinician=clinician)["id"])
    cancel(taken["id"], NOW + timedelta(hours=1))
    assert entry(a["id"])["status"] == "skipped"
    got = entry(b["id"])
    assert got["status"] == "booked"
    assert appointment(got["appointment_id"])["patient_id"] == free


def test_stopping_the_session_closes_the_waitlist(hospital: Hospital) -> None:
    sess, _taken = full_session(hospital)
    e = join(enrol(NOW), sess["id"])
    with write_tx() as s:
        sch.cancel_session(s, sess["id"], SessionCancel(reason="停诊"), NOW)
    assert entry(e["id"])["status"] == "cancelled"


def test_unknown_entries(hospital: Hospital) -> None:
    with pytest.raises(AppError) as info, read_tx() as s:
        waitlist.read(s, "nope")
    assert info.value.code == "scheduling.waitlist_not_found"
