"""Elective and day surgery over HTTP on SQLite and PostgreSQL: requests with their earliest date,
day surgery's own rules (duration, pre-op exam and anaesthesia assessment first, its own rooms,
same-day discharge), working days only, a room's minutes and cases per day never overbooked and
given back when a surgery moves or is cancelled, done from its day, the linked admission date."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from carepoints.services.admissions.models import SurgeryRequest
from tests.helpers import error
from tests.services.admissions.world import Hospital, audit, count, local_today, outbox, surgery_body, working_day

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]


def _saturday_after(days: int) -> str:
    d = local_today() + timedelta(days=days)
    while d.isoweekday() != 6:
        d += timedelta(days=1)
    return d.isoformat()


def test_elective_surgery_is_scheduled_moved_and_cancelled(api: Api) -> None:
    h = Hospital(room_minutes=300, room_cases=4)
    pid, other = api.enrol(), api.enrol()
    r = api.post("/surgery-requests", surgery_body(pid, h.department, expected_minutes=180))
    assert r.status_code == 201, r.text
    s = r.json()
    earliest = working_day(local_today(), 1).isoformat()
    assert (s["status"], s["kind"], s["earliest_date"]) == ("requested", "elective", earliest)
    assert s["discharge"] == "per_ward"
    assert api.post("/surgery-requests", {**surgery_body(pid, h.department, expected_minutes=180),
                                          "idempotency_key": "x"}).status_code == 201  # a second one is fine
    day = working_day(local_today(), 3).isoformat()
    error(api.post(f"/surgery-requests/{s['id']}/schedule", {"room_id": h.room, "date": _saturday_after(2)}), 422,
          "admissions.not_working_day")
    error(api.post(f"/surgery-requests/{s['id']}/schedule", {"room_id": h.room, "date": local_today().isoformat()}),
          422, "admissions.not_working_day" if local_today().isoweekday() > 5 else "admissions.surgery_too_early")
    error(api.post(f"/surgery-requests/{s['id']}/schedule", {"room_id": h.day_room, "date": day}), 409,
          "admissions.room_kind")
    error(api.post(f"/surgery-requests/{s['id']}/schedule", {"room_id": "0" * 36, "date": day}), 404,
          "admissions.room_not_found")
    scheduled = api.post(f"/surgery-requests/{s['id']}/schedule", {"room_id": h.room, "date": day}).json()
    assert (scheduled["status"], scheduled["surgery_date"], scheduled["room"]["id"]) == ("scheduled", day, h.room)
    assert api.post(f"/surgery-requests/{s['id']}/schedule", {"room_id": h.room, "date": day}).json() == scheduled
    room = api.get(f"/operating-rooms/{h.room}/days/{day}").json()
    assert (room["minutes"], room["cases"]) == ({"booked": 180, "capacity": 300}, {"booked": 1, "capacity": 4})

    second = api.post("/surgery-requests", surgery_body(other, h.department, expected_minutes=150)).json()
    error(api.post(f"/surgery-requests/{second['id']}/schedule", {"room_id": h.room, "date": day}), 409,
          "admissions.room_full")  # 180 + 150 > 300 minutes
    assert api.get(f"/surgery-requests/{second['id']}").json()["status"] == "requested"
    later = working_day(local_today(), 4)
    if later.isoformat() == day:
        later = working_day(later, 1)
    moved = api.post(f"/surgery-requests/{s['id']}/schedule", {"room_id": h.room, "date": later.isoformat()}).json()
    assert moved["surgery_date"] == later.isoformat()
    assert api.get(f"/operating-rooms/{h.room}/days/{day}").json()["minutes"]["booked"] == 0
    assert api.post(f"/surgery-requests/{second['id']}/schedule",
                    {"room_id": h.room, "date": day}).json()["status"] == "scheduled"
    error(api.post(f"/surgery-requests/{second['id']}/done"), 409, "admissions.not_surgery_day")
    cancelled = api.post(f"/surgery-requests/{s['id']}/cancel", {"reason": "clinical"}).json()
    assert (cancelled["status"], cancelled["surgery_date"]) == ("cancelled", None)
    assert api.get(f"/operating-rooms/{h.room}/days/{later.isoformat()}").json()["minutes"]["booked"] == 0
    error(api.post(f"/surgery-requests/{s['id']}/schedule", {"room_id": h.room, "date": day}), 409,
          "admissions.illegal_transition")
    assert [a for a, _ in audit(s["id"])] == ["admissions:surgery:request", "admissions:surgery:schedule",
                                              "admissions:surgery:reschedule", "admissions:surgery:cancel"]
    assert all("胆囊" not in str(d) for _, d in audit(s["id"]))  # the procedure never in the audit
    assert [m["surgery_date"] for m in outbox("surgery.scheduled", pid)] == [day, later.isoformat()]
    assert outbox("surgery.cancelled", pid) == [{"patient_id": pid, "surgery_id": s["id"]}]
    waiting = [x["id"] for x in api.get("/surgery-requests").json()["items"]]
    assert s["id"] not in waiting
    assert second["id"] not in waiting


def test_day_surgery_has_its_own_rules(api: Api) -> None:
    h = Hospital()
    pid = api.enrol()
    before = count(SurgeryRequest)
    error(api.post("/surgery-requests", surgery_body(pid, h.department, kind="day", expected_minutes=121)), 422,
          "admissions.day_surgery_too_long")
    error(api.post("/surgery-requests", surgery_body(pid, h.department, kind="same_day")), 422, "request.invalid")
    error(api.post("/surgery-requests", surgery_body(pid, h.department, procedure="   ")), 422, "request.invalid")
    error(api.post("/surgery-requests", surgery_body(pid, "0" * 36)), 404, "admissions.department_not_found")
    error(api.post("/surgery-requests", surgery_body(pid, h.department, admission_order_id="0" * 36)), 404,
          "admissions.order_not_found")
    assert count(SurgeryRequest) == before
    body = surgery_body(pid, h.department, kind="day", expected_minutes=60)
    s = api.post("/surgery-requests", body).json()
    assert api.post("/surgery-requests", body).json()["id"] == s["id"]
    error(api.post("/surgery-requests", {**body, "expected_minutes": 90}), 409, "admissions.idempotency_conflict")
    assert (s["discharge"], s["earliest_date"]) == ("same_day", working_day(local_today(), 2).isoformat())
    day = s["earliest_date"]
    error(api.post(f"/surgery-requests/{s['id']}/schedule", {"room_id": h.room, "date": day}), 409,
          "admissions.room_kind")
    error(api.post(f"/surgery-requests/{s['id']}/schedule", {"room_id": h.day_room, "date": day}), 409,
          "admissions.checks_missing")
    api.post(f"/surgery-requests/{s['id']}/checks", {"check": "preop_exam"})
    error(api.post(f"/surgery-requests/{s['id']}/schedule", {"room_id": h.day_room, "date": day}), 409,
          "admissions.checks_missing")
    error(api.post(f"/surgery-requests/{s['id']}/checks", {"check": "ecg"}), 422, "request.invalid")
    checked = api.post(f"/surgery-requests/{s['id']}/checks", {"check": "anaesthesia"}).json()
    assert checked["checks"]["preop_exam"]
    assert checked["checks"]["anaesthesia"]
    early = working_day(local_today(), 0)
    if early.isoformat() < day:
        error(api.post(f"/surgery-requests/{s['id']}/schedule", {"room_id": h.day_room, "date": early.isoformat()}),
              422, "admissions.surgery_too_early")
    scheduled = api.post(f"/surgery-requests/{s['id']}/schedule", {"room_id": h.day_room, "date": day}).json()
    assert scheduled["status"] == "scheduled"
    assert [d["check"] for a, d in audit(s["id"]) if a == "admissions:surgery:check"] == ["preop_exam", "anaesthesia"]


def test_a_surgery_is_never_before_its_admission(api: Api) -> None:
    h = Hospital()
    pid = api.enrol()
    order = api.post("/admission-orders", {"patient_id": pid, "ward_id": h.ward, "idempotency_key": "adm-s"}).json()
    admit_day = working_day(local_today(), 5)
    api.post(f"/admission-orders/{order['id']}/date", {"date": admit_day.isoformat()})
    s = api.post("/surgery-requests", surgery_body(pid, h.department, admission_order_id=order["id"])).json()
    before = working_day(local_today(), 2)
    if before < admit_day:
        error(api.post(f"/surgery-requests/{s['id']}/schedule", {"room_id": h.room, "date": before.isoformat()}),
              409, "admissions.before_admission")
    ok = api.post(f"/surgery-requests/{s['id']}/schedule", {"room_id": h.room, "date": admit_day.isoformat()})
    assert ok.json()["status"] == "scheduled", ok.text
    other = api.enrol()
    error(api.post("/surgery-requests", surgery_body(other, h.department, admission_order_id=order["id"])), 404,
          "admissions.order_not_found")  # another patient's order
