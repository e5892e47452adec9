"""Queue calls over HTTP on SQLite and PostgreSQL: call next / recall / skip, the order the
desk sees, patients' positions (their own only), the "3 away" notice once, the errors, and two
desks calling at once never calling one patient twice."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from carepoints.config import get_settings
from carepoints.kit.db import read_tx
from carepoints.kit.time import utc_now
from carepoints.security import otp
from carepoints.services.queue.models import QueueCall
from tests.conftest import Db
from tests.helpers import enrol
from tests.services.queue.world import Clinic, outbox

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]


def q(sid: str, verb: str = "") -> str:
    return f"/sessions/{sid}/queue" + (f"/{verb}" if verb else "")


def patient_key(pid: str) -> str:
    return otp.patient_token(pid, utc_now(), get_settings())[0]


def staff_key(api: Api, role: str) -> tuple[str, str]:
    name = f"{role}{utc_now().timestamp():.6f}".replace(".", "")
    uid = api.make_staff(name, "correct horse battery", role)
    r = api.client.post("/api/v1/auth/token", json={"username": name, "password": "correct horse battery"})
    assert r.status_code == 200, r.text
    return uid, str(r.json()["access_token"])


def refused(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.json()["error"] == code, r.text


def calls_count() -> int:
    with read_tx() as s:
        return int(s.execute(select(func.count()).select_from(QueueCall)).scalar_one())


def checked_in(c: Clinic, n: int) -> list[dict[str, Any]]:
    out = []
    for _ in range(n):
        a = c.book()
        c.check_in(a)
        out.append(a)
    return out


def test_call_recall_skip_and_the_board(api: Api, db: Db) -> None:
    c = Clinic()
    a1, a2, a3 = (c.book() for _ in range(3))
    c.check_in(a1, minutes=9)  # slot 1 late, after slot 3 began: after 2 and 3
    c.check_in(a2)
    c.check_in(a3, priority=True)
    sid = c.sess["id"]
    board = api.get(q(sid)).json()
    assert [x["seq"] for x in board["waiting"]] == [a3["seq"], a2["seq"], a1["seq"]]
    assert board["current"] is None
    assert all("*" in x["name"] and "测试患者" not in x["name"] for x in board["waiting"])

    r = api.post(q(sid, "call-next"))
    assert r.status_code == 200, r.text
    assert (r.json()["appointment_id"], r.json()["seq"], r.json()["status"]) == (a3["id"], a3["seq"], "called")
    r = api.post(q(sid, "recall"))
    assert r.status_code == 200, r.text
    assert (r.json()["appointment_id"], r.json()["recall_count"], r.json()["status"]) == (a3["id"], 1, "recalled")
    r = api.post(q(sid, "skip"))
    assert r.status_code == 200, r.text
    assert (r.json()["appointment_id"], r.json()["requeued"]) == (a3["id"], True)
    board = api.get(q(sid)).json()
    assert [x["seq"] for x in board["waiting"]] == [a2["seq"], a1["seq"], a3["seq"]]
    assert board["waiting"][-1]["skipped"] is True
    assert board["current"]["seq"] == a3["seq"]
    assert [p["appointment_id"] for p in outbox("queue.called")] == [a3["id"], a3["id"]]

    assert api.post(q(sid, "call-next")).json()["appointment_id"] == a2["id"]
    assert api.post(q(sid, "call-next")).json()["appointment_id"] == a1["id"]
    assert api.post(q(sid, "call-next")).json()["appointment_id"] == a3["id"]  # the skipped one, last
    assert api.post(q(sid, "skip")).json()["requeued"] is False  # twice: out
    r = api.post(q(sid, "call-next"))
    refused(r, 409, "queue.empty")
    assert "候诊" in r.json()["detail"]
    assert calls_count() == 4


def test_errors_store_nothing(api: Api, db: Db) -> None:
    c = Clinic()
    sid = c.sess["id"]
    c.book()  # booked but not checked in: not in the queue
    for verb, code in (("call-next", "queue.empty"), ("recall", "queue.nothing_called"),
                       ("skip", "queue.nothing_called")):
        r = api.post(q(sid, verb))
        refused(r, 409, code)
    for bad in ("0190a0a0-0000-7000-8000-000000000000", "nope"):
        r = api.post(q(bad, "call-next"))
        refused(r, 404, "queue.session_not_found")
        assert api.get(q(bad)).status_code == 404
    checked_in(c, 1)
    _uid, nurse = staff_key(api, "nurse")
    r = api.post(q(sid, "call-next"), key=nurse)
    refused(r, 403, "queue.not_your_department")
    assert api.get(q(sid), key=nurse).status_code == 403
    r = api.post(q(sid, "call-next"), key=patient_key(enrol(utc_now())))
    refused(r, 403, "auth.forbidden")
    assert calls_count() == 0


def test_department_staff_may_call(api: Api, db: Db) -> None:
    c = Clinic()
    other = Clinic()
    checked_in(c, 2)
    checked_in(other, 1)
    nurse_id, nurse = staff_key(api, "nurse")
    doctor_id, doctor = staff_key(api, "clinician")
    c.doctor_for(doctor_id)
    r = api.request("PUT", f"/departments/{c.department}/queue-staff/{nurse_id}")
    assert r.status_code == 200, r.text
    assert r.json()["created"] is True
    assert api.request("PUT", f"/departments/{c.department}/queue-staff/{nurse_id}").json()["created"] is False
    r = api.request("PUT", f"/departments/{c.department}/queue-staff/{doctor_id}")
    refused(r, 409, "queue.not_desk_role")
    r = api.request("PUT", f"/departments/{c.department}/queue-staff/nope")
    assert r.status_code == 404
    r = api.request("PUT", f"/departments/{c.department}/queue-staff/{nurse_id}", key=nurse)
    assert r.status_code == 403

    assert api.post(q(c.sess["id"], "call-next"), key=nurse).status_code == 200
    assert api.post(q(c.sess["id"], "call-next"), key=doctor).status_code == 200
    for key in (nurse, doctor):
        r = api.post(q(other.sess["id"], "call-next"), key=key)
        refused(r, 403, "queue.not_your_department")
    his = api.make_key("integration", "his")
    assert api.post(q(other.sess["id"], "call-next"), key=his).json()["source"] == "his"


def test_patient_sees_own_position_only(api: Api, db: Db) -> None:
    c = Clinic()
    appts = checked_in(c, 5)
    mine = appts[3]
    pid = mine["patient_id"]
    sid = c.sess["id"]
    r = api.get(f"/patients/{pid}/queue", key=patient_key(pid))
    assert r.status_code == 200, r.text
    (item,) = r.json()["items"]
    assert (item["appointment_id"], item["ahead"], item["current_seq"], item["state"]) == (mine["id"], 3, None,
                                                                                           "waiting")
    assert item["estimate_minutes"] is None  # no calls yet
    for _ in range(3):
        assert api.post(q(sid, "call-next")).status_code == 200
    (item,) = api.get(f"/patients/{pid}/queue", key=patient_key(pid)).json()["items"]
    assert (item["ahead"], item["current_seq"]) == (0, appts[2]["seq"])
    assert (item["estimate_minutes"] or 0) >= 1
    assert not {"name", "patient_id"} & set(item)
    assert api.post(q(sid, "call-next")).json()["appointment_id"] == mine["id"]
    (item,) = api.get(f"/patients/{pid}/queue", key=patient_key(pid)).json()["items"]
    assert item["state"] == "called"

    other = appts[0]["patient_id"]
    r = api.get(f"/patients/{other}/queue", key=patient_key(pid))
    refused(r, 404, "patients.not_found")
    assert api.get(q(sid), key=patient_key(pid)).status_code == 403
    r = api.get("/patients/0190a0a0-0000-7000-8000-000000000000/queue")
    assert r.status_code == 404


def test_three_away_notice_once(api: Api, db: Db) -> None:
    c = Clinic()
    appts = checked_in(c, 6)
    sid = c.sess["id"]
    assert api.post(q(sid, "call-next")).json()["appointment_id"] == appts[0]["id"]
    near = outbox("queue.near")
    assert [p["appointment_id"] for p in near] == [appts[4]["id"]]
    assert (near[0]["ahead"], near[0]["room"]) == (3, "王医生0诊室")
    late_priority = c.book()
    c.check_in(late_priority, priority=True)  # jumps the queue: seq 5 is 4 away, and 3 again after the call
    assert api.post(q(sid, "call-next")).json()["appointment_id"] == late_priority["id"]
    assert [p["appointment_id"] for p in outbox("queue.near")] == [appts[4]["id"]]
    api.post(q(sid, "call-next"))
    assert [p["appointment_id"] for p in outbox("queue.near")] == [appts[4]["id"], appts[5]["id"]]


def test_desks_calling_at_once_never_call_one_patient_twice(api: Api, db: Db) -> None:
    c = Clinic()
    appts = checked_in(c, 9)
    sid = c.sess["id"]
    desks, calls_each = 3, 4
    keys = [api.make_key("integration", f"desk{i}") for i in range(desks)]
    results: list[tuple[int, dict[str, Any]]] = []
    lock = threading.Lock()
    start = threading.Barrier(desks)

    def desk(key: str) -> None:
        client = api.new_client()
        start.wait()
        for _ in range(calls_each):
            r = api.post(q(sid, "call-next"), key=key, client=client)
            with lock:
                results.append((r.status_code, r.json()))

    threads = [threading.Thread(target=desk, args=(k,)) for k in keys]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = [body["appointment_id"] for status, body in results if status == 200]
    assert sorted(won) == sorted(a["id"] for a in appts)  # each exactly once
    assert sorted(body["error"] for status, body in results if status != 200) == ["queue.empty"] * 3
    assert calls_count() == 9
