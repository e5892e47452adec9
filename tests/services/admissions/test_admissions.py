"""Admission booking (住院预约) over HTTP on SQLite and PostgreSQL: an order issued, the patient's
bookable days with the beds left, choosing, moving and cancelling a date (instructions, the online
cut-off, the reschedule limit), the ward's day view and the confirmation of arrival on the day,
full days and day capacities, every bad input a 4xx with nothing stored, audit rows with ids only
and the patient's messages."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from carepoints.config import get_settings
from carepoints.notifications import templates
from carepoints.services.admissions.models import AdmissionOrder, WardDay
from tests.helpers import error, staff_token
from tests.services.admissions.world import (
    INSTRUCTIONS,
    Hospital,
    audit,
    count,
    local_today,
    order_body,
    outbox,
    patient_token,
)

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Set CAREPOINTS_* settings for one test (the settings cache cleared around it)."""
    def put(**values: object) -> None:
        for k, v in values.items():
            monkeypatch.setenv(f"CAREPOINTS_{k.upper()}", str(v))
        get_settings.cache_clear()

    yield put
    get_settings.cache_clear()


def _issue(api: Api, h: Hospital, pid: str, **extra: Any) -> dict[str, Any]:
    r = api.post("/admission-orders", order_body(pid, h.ward, **extra))
    assert r.status_code == 201, r.text
    return dict(r.json())


def _day(offset: int) -> str:
    return (local_today() + timedelta(days=offset)).isoformat()


def test_issue_choose_move_and_cancel_a_date(api: Api) -> None:
    h = Hospital(beds=2)
    pid = api.enrol()
    order = _issue(api, h, pid)
    oid = order["id"]
    assert (order["status"], order["window"]["first"], order["admission_date"]) == ("issued", _day(0), None)
    assert order["valid_until"] == _day(29)
    token = patient_token(pid)
    overview = api.get(f"/patients/{pid}/admissions", key=token).json()
    assert [o["id"] for o in overview["admissions"]] == [oid]
    assert overview["admissions"][0]["ward"]["names"]["zh"] == "普外一病区"

    days = api.get(f"/admission-orders/{oid}/dates", key=token).json()["days"]
    assert days[0]["date"] == _day(0)
    assert days[0]["bookable"] is False  # today is inside the patient's cut-off
    assert days[3] == {"date": _day(3), "weekday": date.fromisoformat(_day(3)).isoweekday(), "capacity": 2,
                       "booked": 0, "free": 2, "bookable": True, "current": False}
    staff_days = api.get(f"/admission-orders/{oid}/dates").json()["days"]
    assert staff_days[0]["bookable"] is True  # the ward books today

    r = api.post(f"/admission-orders/{oid}/date", {"date": _day(3)}, key=token)
    assert r.status_code == 200, r.text
    booked = r.json()
    assert (booked["status"], booked["admission_date"], booked["reschedules"]) == ("booked", _day(3), 0)
    assert booked["instructions"]["zh"] == INSTRUCTIONS
    assert booked["arrival_at"].startswith(f"{_day(3)}T08:30:00+08:00")
    assert booked["change_until"].startswith(f"{_day(2)}T08:30:00+08:00")
    assert booked["patient_may_change"] is True
    again = api.post(f"/admission-orders/{oid}/date", {"date": _day(3)}, key=token).json()
    assert (again["status"], again["reschedules"]) == ("booked", 0)
    ward_day = api.get(f"/wards/{h.ward}/days/{_day(3)}").json()
    assert (ward_day["booked"], ward_day["free"], [o["order_id"] for o in ward_day["orders"]]) == (1, 1, [oid])
    assert "*" in ward_day["orders"][0]["name"]  # masked

    moved = api.post(f"/admission-orders/{oid}/date", {"date": _day(4)}, key=token).json()
    assert (moved["admission_date"], moved["reschedules"], moved["reschedules_left"]) == (_day(4), 1, 1)
    assert api.get(f"/wards/{h.ward}/days/{_day(3)}").json()["booked"] == 0
    assert api.get(f"/wards/{h.ward}/days/{_day(4)}").json()["booked"] == 1

    cancelled = api.post(f"/admission-orders/{oid}/cancel", {"reason": "patient_request"}, key=token).json()
    assert (cancelled["status"], cancelled["cancelled_by"]) == ("cancelled", "patient")
    assert api.get(f"/wards/{h.ward}/days/{_day(4)}").json()["booked"] == 0
    assert api.post(f"/admission-orders/{oid}/cancel", key=token).json()["status"] == "cancelled"
    error(api.post(f"/admission-orders/{oid}/date", {"date": _day(5)}, key=token), 409,
          "admissions.illegal_transition")

    trail = audit(oid)
    assert [a for a, _ in trail] == ["admissions:order:issue", "admissions:order:book",
                                     "admissions:order:reschedule", "admissions:order:cancel"]
    assert trail[2][1] == {"ward_id": h.ward, "day": _day(4), "from_day": _day(3)}
    assert trail[3][1] == {"ward_id": h.ward, "by": "patient", "reason": "patient_request"}
    assert outbox("admissions.order_issued", pid) == [{"patient_id": pid, "order_id": oid}]
    msgs = outbox("admissions.booked", pid)
    assert [m.get("variant") for m in msgs] == [None, "moved"]
    assert msgs[1]["admission_date"] == _day(4)
    assert outbox("admissions.cancelled", pid) == [{"patient_id": pid, "order_id": oid}]


def test_the_messages_name_no_ward_or_procedure() -> None:
    reg = templates.registry()
    for key, payload in [("admissions.order_issued", {}), ("admissions.booked", {"admission_date": "2026-06-18",
                                                                                 "arrival_time": "08:30"}),
                         ("admissions.booked.moved", {"admission_date": "2026-06-19", "arrival_time": "08:30"}),
                         ("admissions.cancelled", {}), ("admissions.cancelled.hospital", {}),
                         ("surgery.scheduled", {"surgery_date": "2026-06-22"}), ("surgery.cancelled", {}),
                         ("previsit.booked", {"exam_time": "2026-06-16 08:00", "followup_time": "2026-06-16 10:30"})]:
        t = reg[key]
        assert "sms" not in t.channels
        out = templates.render(t, templates.params_of({"patient_id": "p", **payload}, get_settings().tz))
        for word in ("科", "病区", "胆囊", "CT", "诊断"):
            assert word not in out.body_zh, (key, word)
        assert "{" not in out.body_zh + out.body_en


def test_the_cut_off_binds_the_patient_not_the_ward(api: Api, settings_env: Any) -> None:
    settings_env(admissions_cutoff_hours=24 * 5)
    h = Hospital()
    pid = api.enrol()
    oid = _issue(api, h, pid)["id"]
    token = patient_token(pid)
    error(api.post(f"/admission-orders/{oid}/date", {"date": _day(3)}, key=token), 409, "admissions.change_too_late")
    assert api.get(f"/admission-orders/{oid}", key=token).json()["status"] == "issued"
    booked = api.post(f"/admission-orders/{oid}/date", {"date": _day(3)}).json()  # the ward books it
    assert booked["status"] == "booked"
    assert booked["patient_may_change"] is False
    error(api.post(f"/admission-orders/{oid}/date", {"date": _day(8)}, key=token), 409, "admissions.change_too_late")
    error(api.post(f"/admission-orders/{oid}/cancel", key=token), 409, "admissions.change_too_late")
    assert api.get(f"/wards/{h.ward}/days/{_day(3)}").json()["booked"] == 1
    cancelled = api.post(f"/admission-orders/{oid}/cancel").json()
    assert (cancelled["status"], cancelled["cancelled_by"]) == ("cancelled", "hospital")
    assert outbox("admissions.cancelled", pid) == [{"patient_id": pid, "order_id": oid, "variant": "hospital"}]


def test_the_reschedule_limit_binds_the_patient(api: Api, settings_env: Any) -> None:
    settings_env(admissions_max_reschedules=1)
    h = Hospital()
    pid = api.enrol()
    oid = _issue(api, h, pid)["id"]
    token = patient_token(pid)
    api.post(f"/admission-orders/{oid}/date", {"date": _day(3)}, key=token)
    assert api.post(f"/admission-orders/{oid}/date", {"date": _day(4)}, key=token).json()["reschedules"] == 1
    error(api.post(f"/admission-orders/{oid}/date", {"date": _day(5)}, key=token), 409, "admissions.reschedule_limit")
    assert api.get(f"/admission-orders/{oid}", key=token).json()["admission_date"] == _day(4)
    assert api.post(f"/admission-orders/{oid}/date", {"date": _day(5)}).json()["admission_date"] == _day(5)


def test_a_full_day_and_day_capacities(api: Api) -> None:
    h = Hospital(beds=1)
    first, second = api.enrol(), api.enrol()
    a, b = _issue(api, h, first)["id"], _issue(api, h, second)["id"]
    assert api.post(f"/admission-orders/{a}/date", {"date": _day(3)}).json()["status"] == "booked"
    error(api.post(f"/admission-orders/{b}/date", {"date": _day(3)}), 409, "admissions.day_full")
    assert api.get(f"/admission-orders/{b}").json()["status"] == "issued"
    error(api.request("PUT", f"/wards/{h.ward}/days/{_day(3)}", {"capacity": 0}), 409,
          "admissions.capacity_below_booked")
    opened = api.request("PUT", f"/wards/{h.ward}/days/{_day(3)}", {"capacity": 2})
    assert opened.json() == {"ward_id": h.ward, "date": _day(3), "capacity": 2, "booked": 1, "free": 1}
    assert api.post(f"/admission-orders/{b}/date", {"date": _day(3)}).json()["status"] == "booked"
    closed = api.request("PUT", f"/wards/{h.ward}/days/{_day(6)}", {"capacity": 0}).json()
    assert closed["capacity"] == 0
    days = {d["date"]: d for d in api.get(f"/admission-orders/{a}/dates").json()["days"]}
    assert (days[_day(3)]["current"], days[_day(3)]["free"]) == (True, 0)  # a booked order's days: to move it
    c = _issue(api, h, api.enrol())["id"]
    days = {d["date"]: d for d in api.get(f"/admission-orders/{c}/dates").json()["days"]}
    assert (days[_day(3)]["free"], days[_day(6)]["bookable"], days[_day(7)]["capacity"]) == (0, False, 1)
    error(api.post(f"/admission-orders/{c}/date", {"date": _day(6)}), 409, "admissions.day_full")


def test_admission_is_confirmed_on_its_day_only(api: Api) -> None:
    h = Hospital()
    pid = api.enrol()
    nurse = staff_token(api, "ward.nurse", "nurse")
    today_order = _issue(api, h, pid)["id"]
    later = _issue(api, h, api.enrol())["id"]
    error(api.post(f"/admission-orders/{today_order}/admit", key=nurse), 409, "admissions.illegal_transition")
    api.post(f"/admission-orders/{today_order}/date", {"date": _day(0)}, key=nurse)
    api.post(f"/admission-orders/{later}/date", {"date": _day(2)}, key=nurse)
    error(api.post(f"/admission-orders/{later}/admit", key=nurse), 409, "admissions.not_admission_day")
    admitted = api.post(f"/admission-orders/{today_order}/admit", key=nurse).json()
    assert admitted["status"] == "admitted"
    assert admitted["admitted_at"] is not None
    again = api.post(f"/admission-orders/{today_order}/admit", key=nurse).json()
    assert again["admitted_at"] == admitted["admitted_at"]
    error(api.post(f"/admission-orders/{today_order}/cancel", key=nurse), 409, "admissions.illegal_transition")
    day = api.get(f"/wards/{h.ward}/days/{_day(0)}", key=nurse).json()
    assert [(o["order_id"], o["status"]) for o in day["orders"]] == [(today_order, "admitted")]
    assert day["is_today"] is True
    assert [a for a, _ in audit(today_order)][-1] == "admissions:order:admit"
    # a second open order for the same ward waits until this one is done: admitted, so a new one is fine
    assert api.post("/admission-orders", order_body(pid, h.ward)).status_code == 201


def test_bad_input_is_4xx_and_nothing_is_stored(api: Api) -> None:
    h = Hospital()
    pid = api.enrol()
    before = count(AdmissionOrder)
    error(api.post("/admission-orders", order_body(pid, "0" * 36)), 404, "admissions.ward_not_found")
    error(api.post("/admission-orders", order_body("nope", h.ward)), 404, "patients.not_found")
    error(api.post("/admission-orders", order_body(pid, h.ward, earliest_date=_day(-1))), 422,
          "admissions.date_outside_window")
    error(api.post("/admission-orders", order_body(pid, h.ward, valid_days=0)), 422, "request.invalid")
    error(api.post("/admission-orders", {**order_body(pid, h.ward), "diagnosis": "x"}), 422, "request.invalid")
    assert count(AdmissionOrder) == before
    body = order_body(pid, h.ward, earliest_date=_day(2), valid_days=5)
    first = api.post("/admission-orders", body)
    assert first.status_code == 201
    assert first.json()["valid_until"] == _day(6)
    replay = api.post("/admission-orders", body)
    assert (replay.status_code, replay.json()["id"]) == (200, first.json()["id"])
    error(api.post("/admission-orders", order_body(pid, h.ward)), 409, "admissions.order_exists")
    other = Hospital()
    error(api.post("/admission-orders", {**body, "ward_id": other.ward}), 409, "admissions.idempotency_conflict")
    assert count(AdmissionOrder) == before + 1
    oid = first.json()["id"]
    token = patient_token(pid)
    for day, code in [(_day(1), "admissions.date_outside_window"), (_day(7), "admissions.date_outside_window")]:
        error(api.post(f"/admission-orders/{oid}/date", {"date": day}, key=token), 422, code)
    error(api.post(f"/admission-orders/{oid}/date", {"date": "next week"}, key=token), 422, "request.invalid")
    error(api.post(f"/admission-orders/{oid}/cancel", {"reason": "bored"}, key=token), 422, "request.invalid")
    error(api.post("/admission-orders/not-an-id/date", {"date": _day(3)}), 404, "admissions.order_not_found")
    assert count(WardDay) == 0
    error(api.post("/wards", {"department_id": "0" * 36, "code": "x", "name_zh": "病区", "daily_admissions": 3,
                              "instructions_zh": "须知"}), 404, "admissions.department_not_found")
    error(api.post("/wards", {"department_id": h.department, "code": "bad code", "name_zh": "病区",
                              "daily_admissions": 0, "instructions_zh": "须知"}), 422, "request.invalid")
    error(api.request("PUT", f"/wards/{h.ward}/days/{_day(3)}", {"capacity": -1}), 422, "request.invalid")
    assert all("张" not in str(d) for _, d in audit(oid))


def test_expired_orders_cannot_be_booked(api: Api) -> None:
    h = Hospital()
    pid = api.enrol()
    oid = _issue(api, h, pid, valid_days=1)["id"]
    from carepoints.kit.db import write_tx
    from carepoints.services.admissions import repository as repo
    with write_tx() as s:  # the order was issued days ago and has lapsed
        repo.set_row(s.connection(), repo.orders, oid, {}, earliest_date=local_today() - timedelta(days=5),
                     valid_until=local_today() - timedelta(days=1))
    doc = api.get(f"/admission-orders/{oid}").json()
    assert (doc["status"], doc["window"], doc["patient_may_change"]) == ("expired", None, False)
    error(api.post(f"/admission-orders/{oid}/date", {"date": _day(0)}), 409, "admissions.order_expired")
