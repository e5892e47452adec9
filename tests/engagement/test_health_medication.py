"""Medication plans: check-ins against planned local times (nearest within the window,
one award per planned time, a second check-in a duplicate), reminders once per planned
dose and never for stopped or ended plans, audited staff steps, and 4xx for bad input.
The service tests run on the fixed test clock (Monday 2026-06-15, 10:30 Shanghai)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest

from carepoints.audit import service as audit
from carepoints.engagement.health import medication, service
from carepoints.engagement.health.errors import (
    DoseNotPlannedError,
    DoseOutOfWindowError,
    NoDoseDueError,
    PlanNotFoundError,
    PlanStoppedError,
    TakenInFutureError,
)
from carepoints.engagement.health.schemas import DoseCheckIn, PlanCreate
from carepoints.jobs import registry
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.errors import AppError
from tests.engagement.test_health_kit import NURSE, UNKNOWN, outbox
from tests.helpers import balance, enrol, error

if TYPE_CHECKING:
    from tests.api_client import Api
    from tests.conftest import Db

pytest_plugins = ["tests.api_client"]
CST = ZoneInfo("Asia/Shanghai")


def local(h: int, m: int = 0, day: int = 15) -> datetime:
    return datetime(2026, 6, day, h, m, tzinfo=CST)


def new_plan(pid: str, now: datetime, times: list[str], start: date = date(2026, 6, 15),
             end: date | None = None) -> str:
    with write_tx() as session:
        return str(medication.create_plan(session, pid, PlanCreate(medicine_name="氨氯地平", times=times,
                                                                    start_date=start, end_date=end),
                                          NURSE, now)["id"])


def take(plan_id: str, now: datetime, scheduled: datetime | None = None,
         taken: datetime | None = None) -> dict[str, Any]:
    with write_tx() as session:
        return medication.check_in(session, plan_id, DoseCheckIn(scheduled_for=scheduled, taken_at=taken), NURSE,
                                   now)[0]


def fails(kind: type[AppError], plan_id: str, now: datetime, scheduled: datetime | None = None,
          taken: datetime | None = None) -> None:
    with pytest.raises(kind):
        take(plan_id, now, scheduled, taken)


def test_a_check_in_takes_the_nearest_planned_time_and_pays_once(db: Db, now: datetime) -> None:
    pid = enrol(now)
    plan = new_plan(pid, now, ["08:00", "10:00", "20:00"])
    first = take(plan, now)  # 10:30 → the 10:00 dose (08:00 is 2.5 h away)
    assert first["scheduled_for"] == local(10).isoformat()
    assert [(a["rule"], a["points"]) for a in first["awards"]] == [("medication", 10)]
    again = take(plan, now + timedelta(minutes=5))
    assert again["duplicate"] is True
    assert again["awards"] == first["awards"]
    assert again["event_id"] == first["event_id"]
    assert again["taken_at"] == first["taken_at"]  # the first check-in's time stands
    early = take(plan, now, scheduled=local(8), taken=local(8, 5))
    assert [a["points"] for a in early["awards"]] == [10]
    assert balance(pid, now) == 120
    with read_tx() as session:
        actions = [e["action"] for e in audit.entries(session, patient_id=pid)]
    assert actions.count("health:dose:check_in") == 2
    assert "health:medication_plan:create" in actions


def test_the_window_is_inclusive_and_planned_times_only(db: Db, now: datetime) -> None:
    pid = enrol(now)
    plan = new_plan(pid, now, ["08:00", "20:00"], end=date(2026, 6, 16))
    at = local(10)  # 08:00 exactly two hours ago
    assert take(plan, at + timedelta(seconds=1), taken=at)["scheduled_for"] == local(8).isoformat()
    fails(NoDoseDueError, plan, local(10, 1), taken=local(10, 1))  # 2 h 1 min: no dose near
    fails(NoDoseDueError, plan, local(14, 30))
    fails(DoseNotPlannedError, plan, now, scheduled=local(9))
    fails(DoseNotPlannedError, plan, now, scheduled=local(8, day=14))  # before start_date
    fails(DoseNotPlannedError, plan, local(8, day=17), scheduled=local(8, day=17))  # after end_date
    fails(DoseNotPlannedError, plan, now, scheduled=local(8) + timedelta(seconds=30))
    fails(DoseOutOfWindowError, plan, now, scheduled=local(20))  # planned, but far from now
    fails(TakenInFutureError, plan, now, taken=now + timedelta(minutes=2))
    fails(PlanNotFoundError, UNKNOWN, now)
    fails(PlanNotFoundError, "not-an-id", now)
    with write_tx() as session:
        medication.stop_plan(session, plan, NURSE, now)
    fails(PlanStoppedError, plan, local(20), scheduled=local(20))


def test_a_dose_planned_at_midnight_and_the_daily_cap(db: Db, now: datetime) -> None:
    pid = enrol(now)
    plan = new_plan(pid, now, ["00:00", "06:00", "12:00", "18:00"], start=date(2026, 6, 14))
    days = [take(plan, local(h, 1, day=15), scheduled=local(h, 0, day=15)) for h in (0, 6, 12, 18)]
    assert [sum(a["points"] for a in d["awards"]) for d in days] == [10, 10, 10, 0]  # daily cap 30
    late = take(plan, local(19, 59), taken=local(19, 59))  # nearest: 18:00, already taken
    assert late["scheduled_for"] == local(18).isoformat()
    assert late["duplicate"] is True
    fails(NoDoseDueError, plan, local(23, 59), taken=local(23, 59))  # 00:00 is tomorrow's dose


def test_reminders_once_per_planned_dose(db: Db, now: datetime) -> None:
    pid = enrol(now)
    plan = new_plan(pid, now, ["08:00", "10:00", "12:00"])
    taken_early = new_plan(pid, now, ["10:00"])
    take(taken_early, local(9, 55), scheduled=local(10))
    stopped = new_plan(pid, now, ["10:00"])
    with write_tx() as session:
        medication.stop_plan(session, stopped, NURSE, now)
    new_plan(pid, now, ["10:00"], start=date(2026, 6, 1), end=date(2026, 6, 14))  # ended yesterday
    new_plan(pid, now, ["10:00"], start=date(2026, 6, 16))  # not started
    assert registry.run("remind-medication", local(9, 59)) == {"reminders": 1}  # 08:00, 1 h 59 min ago
    sent = outbox("medication.reminder", pid)
    assert sent == [{"patient_id": pid, "plan_id": plan, "scheduled_for": "2026-06-15T00:00:00.000000Z"}]
    assert registry.run("remind-medication", local(10)) == {"reminders": 1}
    assert registry.run("remind-medication", local(10, 5)) == {"reminders": 0}
    reminded = [(m["plan_id"], m["scheduled_for"]) for m in outbox("medication.reminder", pid)]
    assert reminded == [(plan, "2026-06-15T00:00:00.000000Z"), (plan, "2026-06-15T02:00:00.000000Z")]
    # a reminded dose can still be checked in, once
    assert [a["points"] for a in take(plan, local(10, 20))["awards"]] == [10]
    assert take(plan, local(10, 25))["duplicate"] is True


def test_no_reminder_for_a_dose_long_past(db: Db, now: datetime) -> None:
    pid = enrol(now)
    new_plan(pid, now, ["08:00"])
    assert registry.run("remind-medication", local(10)) == {"reminders": 0}  # exactly 2 h late: stale
    assert outbox("medication.reminder", pid) == []


def test_tasks_of_a_day_follow_conditions_and_plans(db: Db, now: datetime) -> None:
    from carepoints.engagement.health import conditions
    from carepoints.engagement.health.schemas import ConditionCode, ConditionSet

    pid = enrol(now)
    with write_tx() as session:
        conditions.set_condition(session, pid, ConditionCode.hypertension, ConditionSet(), NURSE, now)
        conditions.set_condition(session, pid, ConditionCode.copd, ConditionSet(), NURSE, now)
    plan = new_plan(pid, now, ["08:00", "20:00"])
    take(plan, now, scheduled=local(8), taken=local(8, 10))
    with read_tx() as session:
        doc = service.tasks_for(session, pid, date(2026, 6, 15))
    assert doc["conditions"] == ["copd", "hypertension"]
    assert [(i["kind"], i["done"]) for i in doc["items"]] == [
        ("measure_bp", False), ("medication", True), ("medication", False)]
    assert doc["items"][2]["scheduled_for"] == local(20).isoformat()
    with read_tx() as session:
        before = service.tasks_for(session, pid, date(2026, 6, 14))
    assert [i["kind"] for i in before["items"]] == ["measure_bp"]  # the plan starts on the 15th


# --- over HTTP ----------------------------------------------------------------------------

def _plan_body(**extra: Any) -> dict[str, Any]:
    return {"medicine_name": "二甲双胍", "dose_text": "每次1片", "times": ["20:00", "08:00"],
            "start_date": "2026-06-01", **extra}


def test_plans_over_http(api: Api) -> None:
    pid = api.enrol()
    r = api.post(f"/patients/{pid}/medication-plans", _plan_body())
    assert r.status_code == 201, r.text
    plan = r.json()
    assert plan["times"] == ["08:00", "20:00"]
    assert plan["status"] == "active"
    assert [p["id"] for p in api.get(f"/patients/{pid}/medication-plans").json()["items"]] == [plan["id"]]
    stopped = api.post(f"/medication-plans/{plan['id']}/stop")
    assert stopped.status_code == 200
    assert stopped.json()["status"] == "stopped"
    assert api.post(f"/medication-plans/{plan['id']}/stop").json() == stopped.json()  # again: the same
    error(api.post(f"/medication-plans/{plan['id']}/doses", {}), 409, "health.plan_stopped")
    with read_tx() as session:
        actions = [e["action"] for e in audit.entries(session, subject_id=plan["id"])]
    assert actions == ["health:medication_plan:stop", "health:medication_plan:create"]


def test_a_dose_check_in_over_http(api: Api) -> None:
    pid = api.enrol()
    at = api.now().replace(second=0, microsecond=0) - timedelta(minutes=5)
    start = (at - timedelta(days=1)).date().isoformat()
    plan = api.post(f"/patients/{pid}/medication-plans", _plan_body(times=[at.strftime("%H:%M")],
                                                                    start_date=start)).json()
    body = {"scheduled_for": at.isoformat()}
    first = api.post(f"/medication-plans/{plan['id']}/doses", body)
    assert first.status_code == 201, first.text
    assert [a["points"] for a in first.json()["awards"]] == [10]
    second = api.post(f"/medication-plans/{plan['id']}/doses", body)
    assert second.status_code == 200
    assert second.json()["duplicate"] is True
    assert api.balance(pid) == 110
    tasks = api.get(f"/patients/{pid}/tasks", params={"date": at.date().isoformat()}).json()
    assert [(i["kind"], i["done"]) for i in tasks["items"]] == [("medication", True)]
    error(api.post(f"/medication-plans/{plan['id']}/doses", {"scheduled_for": "2026-06-15T08:00:00"}),
          422, "request.invalid")
    error(api.post(f"/medication-plans/{plan['id']}/doses", {"extra": 1}), 422, "request.invalid")
    error(api.post(f"/medication-plans/{UNKNOWN}/doses", {}), 404, "health.plan_not_found")
    error(api.post(f"/medication-plans/{UNKNOWN}/stop"), 404, "health.plan_not_found")


@pytest.mark.parametrize("change", [
    {"times": []}, {"times": ["8:00"]}, {"times": ["24:00"]}, {"times": ["08:60"]}, {"times": ["08:00", "08:00"]},
    {"times": ["01:00", "02:00", "03:00", "04:00", "05:00", "06:00", "07:00"]}, {"times": "08:00"},
    {"medicine_name": ""}, {"medicine_name": "   "}, {"medicine_name": "药" * 101}, {"dose_text": "x" * 101},
    {"start_date": "2026-13-01"}, {"end_date": "2026-05-31"}, {"colour": "red"}, {"medicine_name": None},
])
def test_bad_plans_are_422(api: Api, change: dict[str, Any]) -> None:
    pid = api.enrol()
    body = {k: v for k, v in {**_plan_body(), **change}.items() if v is not None}
    error(api.post(f"/patients/{pid}/medication-plans", body), 422, "request.invalid")
    assert api.get(f"/patients/{pid}/medication-plans").json()["items"] == []


def test_plans_of_unknown_patients(api: Api) -> None:
    error(api.post(f"/patients/{UNKNOWN}/medication-plans", _plan_body()), 404, "patients.not_found")
    error(api.get(f"/patients/{UNKNOWN}/medication-plans"), 404, "patients.not_found")
    error(api.get(f"/patients/{UNKNOWN}/tasks"), 404, "patients.not_found")
    pid = api.enrol()
    error(api.get(f"/patients/{pid}/tasks", params={"date": "tomorrow"}), 422, "request.invalid")
    assert api.get(f"/patients/{pid}/tasks").json()["items"] == []
