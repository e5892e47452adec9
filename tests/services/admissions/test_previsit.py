"""Pre-visit exams (预就诊) over HTTP on SQLite and PostgreSQL: the exam in the first exam session
with a free slot, the follow-up in the clinician's first session starting at or after the exam
slot's end + the result hours (a session a minute earlier is skipped; one starting exactly then is
taken), a full session passed over, 409 with nothing stored when there is no exam slot or no
follow-up, a clinician ordering only for themself, cancelling both appointments."""

from __future__ import annotations

from datetime import time, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from carepoints.kit.db import read_tx
from carepoints.scheduling.models import Appointment
from carepoints.services.admissions.models import PrevisitOrder
from tests.helpers import error
from tests.services.admissions.world import PASSWORD, Hospital, audit, count, local_today, outbox

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]


def _body(h: Hospital, pid: str, key: str, **extra: Any) -> dict[str, Any]:
    return {"patient_id": pid, "clinician_id": h.clinician, "resource_id": h.resource, "exam": "胸部CT平扫",
            "result_hours": 2, "idempotency_key": key, **extra}


def _appointments(pid: str) -> list[tuple[str, str]]:
    with read_tx() as s:
        return [(r[0], r[1]) for r in s.execute(select(Appointment.session_id, Appointment.status)
                                                .where(Appointment.patient_id == pid)).all()]


def _token(api: Api, username: str) -> str:
    r = api.post("/auth/token", {"username": username, "password": PASSWORD}, auth=False)
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def test_the_follow_up_is_the_first_session_after_the_result(api: Api) -> None:
    h = Hospital()
    d = local_today() + timedelta(days=1)
    exam_a = h.session(d, time(8), time(8, 30), exam=True)  # one 30-minute slot, ends 08:30
    exam_b = h.session(d, time(9), time(9, 30), exam=True)
    too_early = h.session(d, time(10, 29), time(10, 59))  # a minute before 08:30 + 2 h
    exactly = h.session(d, time(10, 30), time(11))
    later = h.session(d, time(11, 30), time(12))
    pid = api.enrol()
    r = api.post("/previsit-orders", _body(h, pid, "pv-1"))
    assert r.status_code == 201, r.text
    doc = r.json()
    assert doc["exam_appointment"]["session_id"] == exam_a["id"]
    assert doc["results_expected_at"] == f"{d.isoformat()}T10:30:00+08:00"
    assert doc["followup_appointment"]["session_id"] == exactly["id"]
    assert doc["followup_appointment"]["start"] == f"{d.isoformat()}T10:30:00+08:00"
    assert (doc["exam"], doc["clinician"]["name"], doc["resource"]["modality"]) == ("胸部CT平扫", "李医生", "ct")
    assert sorted(_appointments(pid)) == sorted([(exam_a["id"], "booked"), (exactly["id"], "booked")])
    replay = api.post("/previsit-orders", _body(h, pid, "pv-1"))
    assert (replay.status_code, replay.json()["id"]) == (200, doc["id"])
    error(api.post("/previsit-orders", _body(h, pid, "pv-1", result_hours=3)), 409, "admissions.idempotency_conflict")
    [msg] = outbox("previsit.booked", pid)
    assert msg == {"patient_id": pid, "previsit_id": doc["id"], "exam_time": f"{d.isoformat()} 08:00",
                   "followup_time": f"{d.isoformat()} 10:30"}
    details = audit(doc["id"])[0][1]
    assert "胸部" not in str(details)
    assert details["followup_appointment_id"] == doc["followup_appointment"]["id"]

    # the first exam slot is taken now: the next patient's exam is at 09:00, the result at 11:30
    other = api.enrol()
    second = api.post("/previsit-orders", _body(h, other, "pv-2")).json()
    assert second["exam_appointment"]["session_id"] == exam_b["id"]
    assert second["followup_appointment"]["session_id"] == later["id"]
    assert too_early["id"] not in {a for a, _ in _appointments(other)}

    cancelled = api.post(f"/previsit-orders/{doc['id']}/cancel").json()
    assert cancelled["status"] == "cancelled"
    assert sorted(s for _, s in _appointments(pid)) == ["cancelled", "cancelled"]
    assert api.post(f"/previsit-orders/{doc['id']}/cancel").json()["status"] == "cancelled"


def test_no_slot_for_the_exam_or_the_follow_up_is_409_and_nothing_stored(api: Api) -> None:
    h = Hospital()
    d = local_today() + timedelta(days=1)
    pid = api.enrol()
    error(api.post("/previsit-orders", _body(h, pid, "pv-none")), 409, "admissions.no_exam_session")
    h.session(d, time(8), time(8, 30), exam=True)
    h.session(d, time(10), time(10, 30))  # before the result
    body = _body(h, pid, "pv-late", result_hours=3)
    err = error(api.post("/previsit-orders", body), 409, "admissions.no_followup_session")
    assert f"{d.isoformat()} 11:30" in err["detail"]
    assert _appointments(pid) == []  # the exam booking rolled back with it
    assert count(PrevisitOrder) == 0
    error(api.post("/previsit-orders", _body(h, pid, "pv-x", resource_id="0" * 36)), 404,
          "admissions.resource_not_found")
    error(api.post("/previsit-orders", _body(h, pid, "pv-y", clinician_id="0" * 36)), 404,
          "admissions.clinician_not_found")
    error(api.post("/previsit-orders", _body(h, pid, "pv-z", result_hours=-1)), 422, "request.invalid")
    error(api.post("/previsit-orders", _body(h, pid, "pv-z", not_before="2026-01-01T08:00:00")), 422,
          "request.invalid")  # a time without its offset
    with read_tx() as s:
        assert s.execute(select(func.count()).select_from(Appointment)).scalar_one() == 0


def test_a_clinician_orders_for_their_own_follow_up(api: Api) -> None:
    h = Hospital()
    d = local_today() + timedelta(days=2)
    h.session(d, time(8), time(8, 30), exam=True)
    h.session(d, time(9), time(9, 30), exam=True)
    followup = h.session(d, time(14), time(15), minutes=15)
    pid = api.enrol()
    mine = _token(api, h.doctor_username)
    not_before = f"{d.isoformat()}T08:45:00+08:00"
    later = api.post("/previsit-orders", _body(h, api.enrol(), "pv-nb", not_before=not_before), key=mine).json()
    assert later["exam_appointment"]["start"] == f"{d.isoformat()}T09:00:00+08:00"  # 08:00 is free but too early
    doc = api.post("/previsit-orders", {**_body(h, pid, "pv-own"), "clinician_id": None}, key=mine).json()
    assert doc["clinician"]["id"] == h.clinician
    assert doc["exam_appointment"]["start"] == f"{d.isoformat()}T08:00:00+08:00"
    assert doc["followup_appointment"]["session_id"] == followup["id"]
    other = Hospital()
    error(api.post("/previsit-orders", _body(h, api.enrol(), "pv-theirs", clinician_id=other.clinician), key=mine),
          403, "admissions.not_your_clinician")
