"""Appeals over HTTP (both databases): a patient appeals their own no-show, the service window
files for a patient, another staff member decides; who may do what; the patient reads their
own appeals and suspensions and nobody else's."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from carepoints.config import get_settings
from carepoints.kit.time import utc_now
from carepoints.security import otp
from tests.helpers import error, event, staff_token

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]

UNKNOWN = "0190a5f0-0000-7000-8000-000000000000"




def patient_token(pid: str) -> str:
    token, _ttl = otp.patient_token(pid, utc_now(), get_settings())
    return token


def no_show(api: Api, pid: str, days_ago: int) -> str:
    slot = api.now() - timedelta(days=days_ago)
    out = api.send(event(pid, "appointment.no_show", slot + timedelta(minutes=30),
                         {"appointment_id": f"a-{pid[-6:]}-{days_ago}", "slot_start": slot.isoformat()}))
    assert [a["points"] for a in out["awards"]] == [-50]
    return str(out["event_id"])


def appeal(api: Api, key: str, pid: str, **body: Any) -> dict[str, Any]:
    body.setdefault("reason", "hospitalised")
    r = api.post("/appeals", {"patient": {"id": pid}, **body}, key=key)
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_a_patient_appeals_their_no_show_and_the_desk_reverses_it(api: Api) -> None:
    pid = api.enrol()
    for d in (5, 4):
        no_show(api, pid, d)
    third = no_show(api, pid, 3)
    assert api.points(pid)["suspended_until"] is not None
    assert api.balance(pid) == -50
    me = patient_token(pid)

    r = api.get(f"/patients/{pid}/suspensions", key=me)
    assert r.status_code == 200, r.text
    [sus] = r.json()["items"]
    assert (sus["trigger_event_id"], sus["appeal"]) == (third, None)

    doc = appeal(api, me, pid, event_id=third, reason="session_cancelled_unrecorded")
    assert set(doc) >= {"id", "patient_id", "subject", "reason", "status", "created_at", "deadline"}
    assert (doc["patient_id"], doc["subject"], doc["status"]) == (pid, {"kind": "penalty", "id": third}, "open")
    assert doc["created_by"] == {"kind": "patient", "id": pid}
    error(api.post("/appeals", {"patient": {"id": pid}, "event_id": third, "reason": "other", "note": "再试一次"},
                   key=me), 409, "appeals.already_open")

    # the patient cannot decide, nor read the staff queue
    error(api.post(f"/appeals/{doc['id']}/decide", {"outcome": "reversed", "note": "ok"}, key=me), 403,
          "auth.forbidden")
    error(api.get("/appeals", key=me), 403, "auth.forbidden")
    r = api.get(f"/appeals/{doc['id']}", key=me)
    assert (r.status_code, r.json()["status"]) == (200, "open")

    desk = staff_token(api, "desk.decider")
    r = api.get("/appeals", key=desk)
    assert r.status_code == 200, r.text
    assert [a["id"] for a in r.json()["items"]] == [doc["id"]]
    r = api.post(f"/appeals/{doc['id']}/decide", {"outcome": "reversed", "note": "停诊未登记,已核实"}, key=desk)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["points_returned"]) == ("reversed", 50)
    assert api.balance(pid) == 0
    assert api.points(pid)["suspended_until"] is None
    error(api.post(f"/appeals/{doc['id']}/decide", {"outcome": "upheld", "note": "again"}, key=desk), 409,
          "appeals.already_decided")

    r = api.get(f"/patients/{pid}/appeals", key=me)
    assert r.status_code == 200, r.text
    [mine] = r.json()["items"]
    assert mine["decision"]["outcome"] == "reversed"
    assert api.get(f"/patients/{pid}/suspensions", key=me).json()["items"] == []


def test_a_patient_reaches_only_their_own(api: Api) -> None:
    pid, other = api.enrol(), api.enrol()
    theirs = no_show(api, other, 2)
    mine = no_show(api, pid, 2)
    me = patient_token(pid)
    # another patient's event, named as mine or as theirs: not found either way
    error(api.post("/appeals", {"patient": {"id": pid}, "event_id": theirs, "reason": "wrong_patient"}, key=me),
          404, "appeals.subject_not_found")
    error(api.post("/appeals", {"patient": {"id": other}, "event_id": theirs, "reason": "wrong_patient"}, key=me),
          404, "patients.not_found")
    error(api.get(f"/patients/{other}/appeals", key=me), 404, "patients.not_found")
    error(api.get(f"/patients/{other}/suspensions", key=me), 404, "patients.not_found")
    desk = staff_token(api, "desk.filer")
    filed = appeal(api, desk, other, event_id=theirs, reason="wrong_patient")
    error(api.get(f"/appeals/{filed['id']}", key=me), 404, "patients.not_found")
    error(api.get(f"/appeals/{UNKNOWN}", key=me), 404, "patients.not_found")
    error(api.get(f"/appeals/{UNKNOWN}"), 404, "appeals.not_found")
    own = appeal(api, me, pid, event_id=mine)
    assert api.get(f"/appeals/{own['id']}", key=me).status_code == 200


def test_the_desk_that_filed_cannot_decide_and_upheld_changes_nothing(api: Api) -> None:
    pid = api.enrol()
    penalty = no_show(api, pid, 1)
    filer, other = staff_token(api, "desk.one"), staff_token(api, "desk.two")
    doc = appeal(api, filer, pid, event_id=penalty, reason="other", note="家属说明当天住院")
    error(api.post(f"/appeals/{doc['id']}/decide", {"outcome": "reversed", "note": "ok"}, key=filer), 403,
          "appeals.decider_not_allowed")
    r = api.post(f"/appeals/{doc['id']}/decide", {"outcome": "upheld", "note": "无住院记录"}, key=other)
    assert r.status_code == 200, r.text
    assert api.balance(pid) == 50
    error(api.post("/appeals", {"patient": {"id": pid}, "event_id": penalty, "reason": "hospitalised"}),
          409, "appeals.already_decided")


def test_bad_requests(api: Api) -> None:
    pid = api.enrol()
    penalty = no_show(api, pid, 1)
    base = {"patient": {"id": pid}, "event_id": penalty}
    error(api.post("/appeals", {**base, "reason": "bored"}), 422, "request.invalid")
    error(api.post("/appeals", {**base, "reason": "other", "note": "x" * 501}), 422, "request.invalid")
    error(api.post("/appeals", {**base, "reason": "other"}), 400, "appeals.note_required")
    error(api.post("/appeals", {"patient": {"id": pid}, "reason": "hospitalised"}), 400, "appeals.subject_required")
    error(api.post("/appeals", {**base, "patient": {"id": UNKNOWN}, "reason": "hospitalised"}), 404,
          "patients.not_found")
    error(api.post(f"/appeals/{UNKNOWN}/decide", {"outcome": "reversed", "note": "n"}), 404, "appeals.not_found")
    error(api.post(f"/appeals/{UNKNOWN}/decide", {"outcome": "maybe", "note": "n"}), 422, "request.invalid")
    error(api.get("/appeals", params={"before": "x"}), 422, "request.invalid")
    # by external reference, from the hospital app
    r = api.post("/appeals", {**base, "reason": "hospitalised"}, key=api.make_key("integration", "his"))
    assert r.status_code == 201, r.text
