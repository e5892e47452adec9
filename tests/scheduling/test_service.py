"""Scheduling use cases on a fixed clock, on SQLite and PostgreSQL: what each step
does to the appointment, the slot pool and the patient's points (the default
programme: book ahead +30, on time +10, off-peak ×2, early cancellation +20 at
most twice a month, no-show −50, 停诊 neither earns nor costs)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from carepoints.events.models import Event
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.errors import AppError
from carepoints.kit.outbox import OutboxMessage
from carepoints.scheduling import errors as err_
from carepoints.scheduling import service as sch
from carepoints.scheduling.models import Appointment, ClinicSession, Slot
from carepoints.scheduling.schemas import (
    AppointmentCreate,
    CancelIn,
    CheckInIn,
    ClinicianCreate,
    DepartmentCreate,
    InstitutionCreate,
    ResourceCreate,
    SessionCancel,
    SessionCreate,
    TemplateCreate,
)
from tests.conftest import Db
from tests.helpers import balance, enrol

CST = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 6, 15, 2, 30, tzinfo=UTC)  # Monday 10:30 in Shanghai
FRIDAY = date(2026, 6, 19)


def local(day: date, hhmm: str) -> datetime:
    return datetime.combine(day, time.fromisoformat(hhmm), tzinfo=CST)


class Hospital:
    def __init__(self) -> None:
        with write_tx() as s:
            inst = sch.create_institution(s, InstitutionCreate(code="h1", name_zh="第一医院"), NOW)
            self.department = sch.create_department(
                s, DepartmentCreate(institution_id=inst["id"], code="card", name_zh="心内科"), NOW)["id"]
            self.clinicians = [sch.create_clinician(s, ClinicianCreate(
                department_id=self.department, code=f"d{i}", name=f"医生{i}"), NOW)["id"] for i in range(4)]

    def session(self, day: date = FRIDAY, start: str = "08:00", end: str = "09:00", minutes: int = 10,
                clinician: int = 0, **extra: Any) -> dict[str, Any]:
        extra.setdefault("release_at", NOW - timedelta(days=1))
        extra.setdefault("referral_share", Decimal(0))
        with write_tx() as s:
            return sch.create_session(s, SessionCreate(
                clinician_id=self.clinicians[clinician], date=day, start=time.fromisoformat(start),
                end=time.fromisoformat(end), slot_minutes=minutes, fee_cny=Decimal("15"), **extra), NOW)


@pytest.fixture
def hospital(db: Db) -> Hospital:
    return Hospital()


_keys = iter(range(10**6))


def book(pid: str, session_id: str, at: datetime = NOW, **extra: Any) -> dict[str, Any]:
    extra.setdefault("idempotency_key", f"k{next(_keys)}")
    booked_by = extra.pop("booked_by", "patient")
    with write_tx() as s:
        doc, _created = sch.book(s, AppointmentCreate(patient_id=pid, session_id=session_id, **extra), at,
                                 booked_by=booked_by)
    return doc


def cancel(appt: str, at: datetime, by: str = "patient") -> dict[str, Any]:
    with write_tx() as s:
        return sch.cancel(s, appt, CancelIn.model_validate({"by": by}), at)


def check_in(appt: str, at: datetime, **extra: Any) -> dict[str, Any]:
    with write_tx() as s:
        return sch.check_in(s, appt, CheckInIn(**extra), at)


def attend(appt: str, at: datetime) -> dict[str, Any]:
    with write_tx() as s:
        return sch.attend(s, appt, at, at)


def refused(fn: Any, *args: Any, **kwargs: Any) -> AppError:
    with pytest.raises(AppError) as info:
        fn(*args, **kwargs)
    return info.value


def slot_start(appt: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(appt["start"])


# --- acceptance (issue: "Tests and benchmark") ---------------------------------------------

def test_booked_ahead_and_on_time_earn_30_plus_10(hospital: Hospital) -> None:
    pid = enrol(NOW)
    appt = book(pid, hospital.session()["id"])
    assert (appt["seq"], appt["start"], appt["status"]) == (1, "2026-06-19T08:00:00+08:00", "booked")
    start = slot_start(appt)
    assert check_in(appt["id"], start - timedelta(minutes=5))["late"] is False
    assert attend(appt["id"], start + timedelta(minutes=20))["status"] == "attended"
    assert balance(pid, start + timedelta(hours=1)) == 100 + 30 + 10


def test_off_peak_slot_doubles_to_80(hospital: Hospital) -> None:
    pid = enrol(NOW)
    appt = book(pid, hospital.session(start="10:00", end="11:00")["id"])  # Friday 10:00: off-peak
    start = slot_start(appt)
    check_in(appt["id"], start - timedelta(minutes=1))
    attend(appt["id"], start + timedelta(minutes=10))
    assert balance(pid, start + timedelta(hours=1)) == 100 + 80


def test_booked_less_than_72h_ahead_or_late_earns_less(hospital: Hospital) -> None:
    near, late = enrol(NOW), enrol(NOW)
    soon = hospital.session(day=date(2026, 6, 17))  # Wednesday: 45.5 h ahead
    a = book(near, soon["id"])
    check_in(a["id"], slot_start(a) - timedelta(minutes=3))
    attend(a["id"], slot_start(a) + timedelta(minutes=15))
    assert balance(near, slot_start(a) + timedelta(hours=1)) == 100 + 10  # on time only
    b = book(late, hospital.session(clinician=1)["id"])
    assert check_in(b["id"], slot_start(b) + timedelta(minutes=4))["late"] is True
    attend(b["id"], slot_start(b) + timedelta(minutes=30))
    assert balance(late, slot_start(b) + timedelta(hours=1)) == 100 + 30  # booked ahead only


def test_cancel_25h_ahead_earns_20_at_most_twice_a_month(hospital: Hospital) -> None:
    pid = enrol(NOW)
    got = []
    for i, day in enumerate([date(2026, 6, 19), date(2026, 6, 22), date(2026, 6, 23)]):
        appt = book(pid, hospital.session(day=day, clinician=i)["id"])
        got.append(cancel(appt["id"], slot_start(appt) - timedelta(hours=25)))
        assert got[-1]["status"] == "cancelled"
        assert got[-1]["cancelled_by"] == "patient"
    assert balance(pid, date_time(date(2026, 6, 24))) == 100 + 20 + 20


def date_time(day: date) -> datetime:
    return local(day, "12:00")


def test_late_cancellation_earns_nothing_and_the_cutoff_refuses(hospital: Hospital) -> None:
    pid = enrol(NOW)
    a = book(pid, hospital.session()["id"])
    cancel(a["id"], slot_start(a) - timedelta(hours=23))  # inside 24 h: allowed, no reward
    assert balance(pid, slot_start(a)) == 100
    b = book(pid, hospital.session(clinician=1, start="09:00", end="10:00")["id"])
    err = refused(cancel, b["id"], slot_start(b) - timedelta(hours=1))  # inside the 2 h cut-off
    assert isinstance(err, err_.CancelTooLateError)
    assert err.status_code == 409
    assert cancel(b["id"], slot_start(b) - timedelta(hours=1), by="hospital")["cancelled_by"] == "hospital"


def test_no_show_sweep_costs_50_after_the_grace_period(hospital: Hospital) -> None:
    absent, present = enrol(NOW), enrol(NOW)
    sess = hospital.session()
    a = book(absent, sess["id"])
    b = book(present, sess["id"])
    check_in(b["id"], slot_start(b) - timedelta(minutes=10))
    end = datetime.fromisoformat(sess["end"])
    with write_tx() as s:
        assert sch.sweep_no_shows(s, end + timedelta(minutes=10)) == 0  # within the 30-minute grace
    with write_tx() as s:
        assert sch.sweep_no_shows(s, end + timedelta(minutes=31)) == 1
    with write_tx() as s:
        assert sch.sweep_no_shows(s, end + timedelta(minutes=45)) == 0  # once
    with read_tx() as s:
        assert sch.read_appointment(s, a["id"])["status"] == "no_show"
        assert sch.read_appointment(s, b["id"])["status"] == "checked_in"
    assert balance(absent, end + timedelta(hours=1)) == 100 - 50
    assert balance(present, end + timedelta(hours=1)) == 100
    err = refused(attend, a["id"], end + timedelta(hours=1))
    assert isinstance(err, err_.IllegalTransitionError)


def test_hospital_cancellation_neither_earns_nor_costs_and_notifies(hospital: Hospital) -> None:
    pids = [enrol(NOW) for _ in range(3)]
    sess = hospital.session()
    appts = [book(p, sess["id"]) for p in pids]
    check_in(appts[2]["id"], slot_start(appts[2]) - timedelta(minutes=30))  # came in, then the clinic closed
    with write_tx() as s:
        doc = sch.cancel_session(s, sess["id"], SessionCancel(reason="专家临时停诊"), NOW)
    assert doc["status"] == "cancelled"
    with read_tx() as s:
        states = [sch.read_appointment(s, a["id"]) for a in appts]
        topics = [m.topic for m in s.scalars(select(OutboxMessage).where(OutboxMessage.key.in_(pids)))]
    assert {(x["status"], x["cancelled_by"]) for x in states} == {("cancelled", "hospital")}
    assert topics.count("appointment.cancelled_by_hospital") == 3
    assert [balance(p, NOW + timedelta(days=30)) for p in pids] == [100, 100, 100]
    err = refused(book, enrol(NOW), sess["id"])
    assert isinstance(err, err_.SessionCancelledError)
    with write_tx() as s:  # again: the same, nothing more happens
        assert sch.cancel_session(s, sess["id"], SessionCancel(reason="again"), NOW)["status"] == "cancelled"


# --- lifecycle rules ----------------------------------------------------------------------

def test_illegal_transitions_are_409(hospital: Hospital) -> None:
    pid = enrol(NOW)
    a = book(pid, hospital.session()["id"])
    start = slot_start(a)
    check_in(a["id"], start - timedelta(minutes=5))
    assert isinstance(refused(cancel, a["id"], start - timedelta(minutes=4)), err_.IllegalTransitionError)
    attend(a["id"], start + timedelta(minutes=5))
    err = refused(cancel, a["id"], start + timedelta(minutes=6), by="hospital")
    assert isinstance(err, err_.IllegalTransitionError)
    assert err.code == "scheduling.illegal_transition"
    assert attend(a["id"], start + timedelta(minutes=7))["status"] == "attended"  # a replay, not an error
    b = book(pid, hospital.session(clinician=1)["id"])
    assert cancel(b["id"], NOW)["status"] == cancel(b["id"], NOW + timedelta(minutes=1))["status"] == "cancelled"
    assert isinstance(refused(check_in, b["id"], slot_start(b)), err_.IllegalTransitionError)


def test_check_in_window_and_priority_for_the_elderly(hospital: Hospital) -> None:
    old = enrol(NOW, birth_date="1950-03-01")
    young = enrol(NOW, birth_date="1990-03-01")
    sess = hospital.session(minutes=5)
    a, b = book(old, sess["id"]), book(young, sess["id"])
    start = slot_start(a)
    assert isinstance(refused(check_in, a["id"], start - timedelta(minutes=121)), err_.CheckInNotOpenError)
    assert check_in(a["id"], start - timedelta(minutes=60))["priority"] is True
    assert check_in(b["id"], start - timedelta(minutes=60))["priority"] is False
    c = book(enrol(NOW), sess["id"])
    assert check_in(c["id"], slot_start(c) - timedelta(minutes=1), priority=True)["priority"] is True
    d = book(enrol(NOW), sess["id"])
    err = refused(check_in, d["id"], datetime.fromisoformat(sess["end"]) + timedelta(minutes=1))
    assert isinstance(err, err_.CheckInClosedError)


def test_release_time_and_doctor_booked_follow_up(hospital: Hospital) -> None:
    pid = enrol(NOW)
    sess = hospital.session(release_at=NOW + timedelta(hours=2))
    err = refused(book, pid, sess["id"])
    assert isinstance(err, err_.NotOpenError)
    assert "2026-06-15T12:30:00+08:00" in err.detail
    follow = book(pid, sess["id"], booked_by="clinician")  # 诊间复诊预约: ahead of release
    assert follow["booked_by"] == "clinician"
    start = slot_start(follow)
    check_in(follow["id"], start - timedelta(minutes=5))
    attend(follow["id"], start + timedelta(minutes=5))
    assert balance(pid, start + timedelta(hours=1)) == 100 + 10  # on time, but no booking-ahead points


# --- pools ------------------------------------------------------------------------------

def test_channels_draw_from_their_pools_until_the_day(hospital: Hospital) -> None:
    sess = hospital.session(referral_share=Decimal("0.25"), pattern=["online", "onsite"],
                            referral_release_hours=24)  # 6 slots: referral at seq 2 and 5
    assert sess["free"] == {"online": 2, "onsite": 2, "referral": 2}
    online = [book(enrol(NOW), sess["id"]) for _ in range(2)]
    assert [a["seq"] for a in online] == [1, 4]
    err = refused(book, enrol(NOW), sess["id"])
    assert isinstance(err, err_.SessionFullError)
    assert err.code == "scheduling.session_full"
    onsite = book(enrol(NOW), sess["id"], channel="onsite")
    assert onsite["seq"] == 3
    referral = book(enrol(NOW), sess["id"], channel="referral", referral_id="ref-1")
    assert referral["seq"] == 2
    # from 24 hours before, the referral slots left go to everyone
    eve = local(FRIDAY, "08:00") - timedelta(hours=23)
    assert book(enrol(NOW), sess["id"], at=eve)["seq"] == 5
    with read_tx() as s:
        assert sch.read_session(s, sess["id"], eve)["free"] == {"online": 0, "onsite": 1, "referral": 0}


def test_release_reserved_slots_job(hospital: Hospital) -> None:
    sess = hospital.session(referral_share=Decimal("0.5"), referral_release_hours=24)
    with write_tx() as s:
        assert sch.release_reserved_slots(s, NOW) == 0  # not yet
    eve = local(FRIDAY, "09:00") - timedelta(days=1)
    with write_tx() as s:
        assert sch.release_reserved_slots(s, eve) == 3
    with write_tx() as s:
        assert sch.release_reserved_slots(s, eve) == 0
    with read_tx() as s:
        assert sch.read_session(s, sess["id"], eve)["free"] == {"online": 4, "onsite": 2, "referral": 0}


def test_on_the_day_online_and_onsite_merge(hospital: Hospital) -> None:
    sess = hospital.session(day=date(2026, 6, 15), start="14:00", end="14:40", minutes=10)  # today: 4 slots
    seqs = [book(enrol(NOW), sess["id"])["seq"] for _ in range(4)]
    assert seqs == [1, 3, 2, 4]  # its own pool first, then the other
    assert isinstance(refused(book, enrol(NOW), sess["id"], channel="onsite"), err_.SessionFullError)


def test_a_chosen_slot(hospital: Hospital) -> None:
    sess = hospital.session()
    other = hospital.session(clinician=1)
    with read_tx() as s:
        slots = dict(s.execute(select(Slot.seq, Slot.id).where(Slot.session_id == sess["id"])).all())
        foreign = s.scalars(select(Slot.id).where(Slot.session_id == other["id"])).first()
    assert foreign is not None
    a = book(enrol(NOW), sess["id"], slot_id=slots[3])
    assert (a["seq"], a["start"]) == (3, "2026-06-19T08:20:00+08:00")
    assert isinstance(refused(book, enrol(NOW), sess["id"], slot_id=slots[3]), err_.SlotTakenError)
    assert isinstance(refused(book, enrol(NOW), sess["id"], slot_id=foreign), err_.SlotNotFoundError)
    assert isinstance(refused(book, enrol(NOW), sess["id"], slot_id=slots[2]), err_.SlotNotAvailableError)  # onsite
    assert book(enrol(NOW), sess["id"], slot_id=slots[2], channel="onsite")["seq"] == 2


def test_a_cancelled_slot_returns_to_the_pool(hospital: Hospital) -> None:
    sess = hospital.session(end="08:20")  # 2 slots: online, onsite
    a = book(enrol(NOW), sess["id"])
    assert isinstance(refused(book, enrol(NOW), sess["id"]), err_.SessionFullError)
    cancel(a["id"], NOW)
    again = book(enrol(NOW), sess["id"])
    assert again["seq"] == a["seq"]
    assert again["slot_id"] == a["slot_id"]
    with read_tx() as s:
        held = s.scalars(select(Slot.appointment_id).where(Slot.id == a["slot_id"])).one()
    assert held == again["id"]


# --- limits and idempotency -----------------------------------------------------------------

def test_per_patient_limits(hospital: Hospital) -> None:
    pid = enrol(NOW)
    first = book(pid, hospital.session(clinician=0)["id"])
    err = refused(book, pid, hospital.session(clinician=0, start="09:00", end="10:00")["id"])
    assert isinstance(err, err_.ClinicianDayLimitError)
    assert err.code == "scheduling.clinician_limit"
    book(pid, hospital.session(clinician=1)["id"])
    third = book(pid, hospital.session(clinician=2)["id"])
    err = refused(book, pid, hospital.session(clinician=3)["id"])
    assert isinstance(err, err_.DailyLimitError)
    assert "3" in err.detail
    assert book(pid, hospital.session(clinician=3, day=date(2026, 6, 20))["id"])["status"] == "booked"  # another day
    cancel(third["id"], NOW)
    fourth = book(pid, hospital.session(clinician=3, start="10:00", end="11:00")["id"])
    cancel(first["id"], NOW)
    book(pid, hospital.session(clinician=0, start="11:00", end="12:00")["id"])
    with read_tx() as s:
        live = s.scalars(select(Appointment.day_rank).where(
            Appointment.patient_id == pid, Appointment.day == FRIDAY,
            Appointment.status.in_(("booked", "checked_in")))).all()
    assert sorted(live) == [1, 2, 3]
    assert fourth["status"] == "booked"


def test_idempotency_key(hospital: Hospital) -> None:
    pid = enrol(NOW)
    sess, other = hospital.session(), hospital.session(clinician=1)
    with write_tx() as s:
        a, created = sch.book(s, AppointmentCreate(patient_id=pid, session_id=sess["id"], idempotency_key="x"), NOW)
    with write_tx() as s:
        b, again = sch.book(s, AppointmentCreate(patient_id=pid, session_id=sess["id"], idempotency_key="x"), NOW)
    assert created
    assert not again
    assert a == b
    err = refused(book, pid, other["id"], idempotency_key="x")
    assert isinstance(err, err_.IdempotencyConflictError)
    assert book(enrol(NOW), sess["id"], idempotency_key="x")["id"] != a["id"]  # keys are per patient


def test_booked_event_reaches_the_spine(hospital: Hospital) -> None:
    pid = enrol(NOW)
    a = book(pid, hospital.session()["id"])
    with read_tx() as s:
        type_, patient, attrs = s.execute(select(Event.type, Event.patient_id, Event.attributes).where(
            Event.source_event_id == f"appointment:{a['id']}:booked")).one()
    assert type_ == "appointment.booked"
    assert patient == pid
    assert attrs["booked_by"] == "patient"
    assert attrs["slot_start"].startswith("2026-06-19T00:00")


# --- set-up -------------------------------------------------------------------------------

def test_session_shapes_are_validated(hospital: Hospital) -> None:
    with pytest.raises(AppError) as info:
        hospital.session(capacity=7)  # 6 slots of 10 minutes fit in an hour
    assert info.value.status_code == 422
    sess = hospital.session(capacity=4, minutes=15)
    assert sess["capacity"] == 4
    assert sess["free"]["online"] + sess["free"]["onsite"] == 4
    with pytest.raises(AppError) as info, write_tx() as s:
        sch.create_institution(s, InstitutionCreate(code="h1", name_zh="重复"), NOW)
    assert info.value.code == "scheduling.duplicate_code"


def test_generate_sessions_from_templates(hospital: Hospital) -> None:
    with write_tx() as s:
        sch.create_template(s, TemplateCreate(clinician_id=hospital.clinicians[0], weekday=3, start=time(8),
                                              end=time(12), slot_minutes=15, fee_cny=Decimal("25")), NOW)
    with write_tx() as s:
        assert sch.generate_sessions(s, NOW, 14) == 2  # Wednesdays 17 and 24 June
    with write_tx() as s:
        assert sch.generate_sessions(s, NOW, 14) == 0  # re-runnable
    with read_tx() as s:
        rows = s.scalars(select(ClinicSession).order_by(ClinicSession.day)).all()
        assert [r.day for r in rows] == [date(2026, 6, 17), date(2026, 6, 24)]
        assert rows[0].capacity == 16
        assert rows[0].release_at == local(date(2026, 6, 10), "08:00")
        assert s.scalars(select(Slot).where(Slot.session_id == rows[0].id)).all()[0].starts_at == \
            local(date(2026, 6, 17), "08:00")


def test_a_stopped_template_generates_nothing_more(hospital: Hospital) -> None:
    with write_tx() as s:
        tpl = sch.create_template(s, TemplateCreate(clinician_id=hospital.clinicians[0], weekday=3, start=time(8),
                                                    end=time(12), slot_minutes=15, fee_cny=Decimal("25")), NOW)
    with write_tx() as s:
        assert sch.generate_sessions(s, NOW, 7) == 1
    with write_tx() as s:
        assert sch.deactivate_template(s, tpl["id"]) == {"id": tpl["id"], "active": False}
    with write_tx() as s:
        assert sch.generate_sessions(s, NOW, 14) == 0  # the second Wednesday is not made
        assert [t["id"] for t in sch.templates(s)] == []
    with pytest.raises(AppError) as info, write_tx() as s:
        sch.deactivate_template(s, tpl["id"])
    assert info.value.code == "scheduling.template_not_found"
    with read_tx() as s:
        assert len(s.scalars(select(ClinicSession)).all()) == 1  # the session already made stays


def test_an_exam_on_a_resource_emits_exam_attended(hospital: Hospital) -> None:
    with write_tx() as s:
        ct = sch.create_resource(s, ResourceCreate(department_id=hospital.department, code="ct1", modality="ct",
                                                   name="CT 1"), NOW)
        sess = sch.create_session(s, SessionCreate(resource_id=ct["id"], date=FRIDAY, start=time(14),
                                                   end=time(15), slot_minutes=20, fee_cny=Decimal(200),
                                                   release_at=NOW - timedelta(days=1)), NOW)
    pid = enrol(NOW)
    exam = book(pid, sess["id"])
    start = slot_start(exam)
    attend(exam["id"], start + timedelta(minutes=15))
    with read_tx() as s:
        attrs = s.execute(select(Event.attributes).where(
            Event.type == "exam.attended", Event.patient_id == pid)).scalar_one()
    assert attrs["exam_id"] == exam["id"]
    assert attrs["modality"] == "ct"
    assert balance(pid, start + timedelta(hours=1)) == 100 + 10 * 2  # exam attended, off-peak (Friday 14:00)


def test_a_visit_cannot_be_recorded_days_ahead(hospital: Hospital) -> None:
    pid = enrol(NOW)
    appt = book(pid, hospital.session()["id"])
    err = refused(attend, appt["id"], NOW + timedelta(hours=1))
    assert isinstance(err, err_.AttendTooEarlyError)
    assert balance(pid, NOW + timedelta(hours=2)) == 100  # book_ahead is not paid for a visit not yet made
