"""The notification jobs and the scheduler, on SQLite and PostgreSQL: reminders
the day before (once each), points-expiring notices (once per wallet and expiry
date), `send-notifications` through the job registry, and a scheduler that
never runs a job at start-up."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from carepoints.app import create_app
from carepoints.config import reset_settings
from carepoints.jobs import registry, scheduler
from carepoints.jobs.models import JobRun
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.time import add_months
from carepoints.notifications import service as notifications
from carepoints.scheduling import service as sch
from carepoints.scheduling.schemas import (
    AppointmentCreate,
    CancelIn,
    ClinicianCreate,
    DepartmentCreate,
    InstitutionCreate,
    SessionCreate,
)
from tests.conftest import Db
from tests.helpers import enrol
from tests.notifications.kit import Gateway, delivery_rows, enqueue, inbox_rows, outbox_rows, with_sms

CST = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 6, 15, 2, 30, tzinfo=UTC)  # Monday 10:30 in Shanghai
EVENING = datetime(2026, 6, 15, 10, 0, tzinfo=UTC)  # 18:00
TUESDAY = date(2026, 6, 16)


_codes = iter(range(10**6))


def session_on(day: date, start: str, end: str) -> str:
    with write_tx() as s:
        inst = sch.create_institution(s, InstitutionCreate(code=f"h{next(_codes)}", name_zh="医院"), NOW)
        dep = sch.create_department(s, DepartmentCreate(institution_id=inst["id"], code="d", name_zh="内科"), NOW)
        doc = sch.create_clinician(s, ClinicianCreate(department_id=dep["id"], code="c", name="医生"), NOW)
        return str(sch.create_session(s, SessionCreate(
            clinician_id=doc["id"], date=day, start=time.fromisoformat(start), end=time.fromisoformat(end),
            slot_minutes=10, fee_cny=Decimal("15"), release_at=NOW - timedelta(days=1),
            referral_share=Decimal(0)), NOW)["id"])


def book(pid: str, session_id: str) -> dict[str, Any]:
    with write_tx() as s:
        doc, _ = sch.book(s, AppointmentCreate(patient_id=pid, session_id=session_id, idempotency_key=pid), NOW,
                          booked_by="patient")
    return doc


def reminders() -> list[dict[str, Any]]:
    return [m["payload"] for m in outbox_rows("appointment.reminder")]


def test_tomorrows_live_bookings_are_reminded_once(db: Db) -> None:
    early = book(enrol(NOW), session_on(TUESDAY, "00:00", "00:10"))  # 00:00 tomorrow
    late = book(enrol(NOW), session_on(TUESDAY, "23:49", "23:59"))  # 23:49 tomorrow
    book(enrol(NOW), session_on(date(2026, 6, 15), "23:49", "23:59"))  # today
    book(enrol(NOW), session_on(date(2026, 6, 17), "00:00", "00:10"))  # the day after
    cancelled = book(enrol(NOW), session_on(TUESDAY, "09:00", "09:10"))
    with write_tx() as s:
        sch.cancel(s, cancelled["id"], CancelIn(), NOW)
    assert registry.run("remind-appointments", EVENING) == {"reminders": 2}
    got = {p["appointment_id"]: p for p in reminders()}
    assert set(got) == {early["id"], late["id"]}
    assert got[early["id"]]["slot_start"] == "2026-06-15T16:00:00.000000Z"
    assert set(got[early["id"]]) == {"patient_id", "appointment_id", "slot_start"}
    assert registry.run("remind-appointments", EVENING + timedelta(hours=1)) == {"reminders": 0}
    assert len(reminders()) == 2
    registry.run("send-notifications", EVENING)
    bodies = [m["body_zh"] for m in inbox_rows(topic="appointment.reminder")]
    assert sorted(bodies)[0].startswith("温馨提示:您预约的就诊时间为 2026-06-16 ")


def test_the_local_day_decides_what_tomorrow_is(db: Db) -> None:
    wednesday = book(enrol(NOW), session_on(date(2026, 6, 17), "08:00", "08:10"))
    before_midnight = datetime(2026, 6, 15, 15, 59, tzinfo=UTC)  # 23:59 Monday: tomorrow is Tuesday
    assert registry.run("remind-appointments", before_midnight) == {"reminders": 0}
    after_midnight = datetime(2026, 6, 15, 16, 1, tzinfo=UTC)  # 00:01 Tuesday: tomorrow is Wednesday
    assert registry.run("remind-appointments", after_midnight) == {"reminders": 1}
    assert reminders()[0]["appointment_id"] == wednesday["id"]


def test_once_is_once(db: Db) -> None:
    with write_tx() as s:
        assert notifications.once(s, "k", "r1", NOW)
        assert not notifications.once(s, "k", "r1", NOW)
        assert notifications.once(s, "k2", "r1", NOW)
    with write_tx() as s:
        assert not notifications.once(s, "k", "r1")
    def mark_then_fail() -> None:
        with write_tx() as s:
            assert notifications.once(s, "k", "r2", NOW)
            raise RuntimeError  # rolled back with the caller's transaction

    with pytest.raises(RuntimeError):
        mark_then_fail()
    with write_tx() as s:
        assert notifications.once(s, "k", "r2", NOW)


def expiring() -> list[dict[str, Any]]:
    return [m["payload"] for m in outbox_rows("points.expiring")]


def test_points_expiring_within_the_notice_days_are_announced_once(db: Db) -> None:
    # the welcome lot expires 24 months after enrolment
    inside = enrol(add_months(NOW, -24) + timedelta(days=30))  # expires exactly at now + 30 days
    outside = enrol(add_months(NOW, -24) + timedelta(days=30, seconds=1))
    expired = enrol(add_months(NOW, -24) - timedelta(seconds=1))  # already past expiry (not yet swept)
    assert registry.run("notify-expiring-points", NOW) == {"notices": 1}
    [notice] = expiring()
    assert notice == {"patient_id": inside, "points": 100,
                      "expires_at": (NOW + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%S.000000Z")}
    assert registry.run("notify-expiring-points", NOW + timedelta(hours=1)) == {"notices": 1}  # `outside` enters
    assert {n["patient_id"] for n in expiring()} == {inside, outside}
    assert registry.run("notify-expiring-points", NOW + timedelta(days=1)) == {"notices": 0}
    assert expired not in {n["patient_id"] for n in expiring()}
    registry.run("send-notifications", NOW)
    [msg] = inbox_rows(topic="points.expiring", recipient_id=inside)
    assert msg["body_zh"] == "您有 100 积分将于 2026-07-15 到期,请及时使用。"


def test_lots_of_one_local_day_make_one_notice(db: Db) -> None:
    from tests.helpers import event, ingest_one

    base = add_months(NOW, -24) + timedelta(days=10)  # 10:30 local
    pid = enrol(base)
    ingest_one(base + timedelta(hours=5), event(pid, "health.measurement", base + timedelta(hours=5),
                                                 {"kind": "blood_pressure", "systolic": 120, "diastolic": 80,
                                                  "provenance": "device"}))
    assert registry.run("notify-expiring-points", NOW) == {"notices": 1}
    [notice] = expiring()
    assert notice["points"] > 100  # the welcome and the check-in, same local expiry day
    assert notice["expires_at"].startswith((NOW + timedelta(days=10)).strftime("%Y-%m-%dT%H"))


def test_send_notifications_is_a_registered_job(db: Db) -> None:
    pid = enrol(NOW)
    result = registry.run("send-notifications", NOW)
    assert result == {"outbox": {"dispatched": 1}, "deliveries": {}}
    assert len(inbox_rows(recipient_id=pid)) == 1
    assert set(registry.SCHEDULE) >= {"send-notifications", "remind-appointments", "notify-expiring-points"}
    assert registry.SCHEDULE["send-notifications"] == timedelta(seconds=10)
    assert registry.SCHEDULE["remind-appointments"] == (18, 0)


def job_runs(name: str | None = None) -> int:
    t = JobRun.__table__
    stmt = select(func.count()).select_from(t)
    if name is not None:
        stmt = stmt.where(t.c.job == name)
    with read_tx() as s:
        return int(s.connection().execute(stmt).scalar_one())


def test_the_scheduler_never_runs_at_start_up(db: Db) -> None:
    enrol(NOW)
    start = datetime(2026, 6, 15, 9, 59, 55, tzinfo=UTC)  # 17:59:55 local
    s = scheduler.Scheduler(tick=1)
    s.last = start
    assert s.step(start) == []  # nothing at start-up
    assert outbox_rows()[0]["status"] == "pending"
    assert job_runs() == 0
    assert s.step(start + timedelta(seconds=4)) == []  # no boundary crossed yet
    ran = s.step(start + timedelta(seconds=5))  # 18:00:00: the 10 s boundary and the reminders
    s.wait()
    assert {"remind-appointments", "send-notifications"} <= set(ran)
    assert outbox_rows()[0]["status"] == "dispatched"
    assert job_runs("remind-appointments") == 1
    assert job_runs("send-notifications") == 0  # it claims its own work and leaves no lease row
    other = scheduler.Scheduler(tick=1)  # a second worker at the same instant
    other.last = start
    assert other.step(start + timedelta(seconds=5)) == ["send-notifications"]  # the leased jobs ran once
    other.wait()
    assert job_runs("remind-appointments") == 1


def test_a_slow_gateway_never_delays_the_fixed_time_jobs(db: Db, gateway: Gateway,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    with_sms(monkeypatch, gateway)
    pid = enrol(NOW)
    enqueue(NOW, "appointment.cancelled_by_hospital", {"patient_id": pid, "appointment_id": "a1"})
    gateway.gate = threading.Event()  # the gateway hangs until released
    start = datetime(2026, 6, 15, 9, 59, 45, tzinfo=UTC)  # 17:59:45 local
    s = scheduler.Scheduler(tick=1)
    s.last = start
    try:
        assert s.step(start + timedelta(seconds=5)) == ["send-notifications"]  # 17:59:50
        assert gateway.arrived.wait(timeout=30)  # the sender is stuck in its HTTP call
        ran = s.step(start + timedelta(seconds=15))  # 18:00:00
        assert "remind-appointments" in ran  # ran at once, on this thread
        assert "send-notifications" not in ran  # the previous run is still sending: not a second one
        assert job_runs("remind-appointments") == 1
    finally:
        gateway.gate.set()
        s.wait()
    assert len(gateway.received) == 1
    assert [d["status"] for d in delivery_rows()] == ["sent"]


def scheduler_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "carepoints-scheduler" and t.is_alive()]


@pytest.mark.parametrize("setting", ["off", "on"])
def test_scheduler_setting(db: Db, monkeypatch: pytest.MonkeyPatch, setting: str) -> None:
    monkeypatch.setenv("CAREPOINTS_SCHEDULER", setting)
    reset_settings()
    before = len(scheduler_threads())
    with TestClient(create_app()) as client:
        assert client.get("/healthz").status_code == 200
        # the embedded scheduler: on SQLite unless switched off; PostgreSQL deployments run `carepoints worker`
        assert len(scheduler_threads()) - before == (1 if setting == "on" and not db.is_postgres else 0)
        assert job_runs() == 0  # nothing ran at start-up
    assert len(scheduler_threads()) == before
