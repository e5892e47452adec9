"""The satisfaction loop over HTTP on SQLite and PostgreSQL: complaints filed by the patient (only
for themself; another patient's visit or complaint is 404) and by the desk, idempotent, every bad
input a 4xx storing nothing; the item queue with masked patients, an audited read, assign / note /
close guarded (a closed item takes nothing more; two racing closes close it once), audit rows with
ids only; the dashboard's figures and an alert acknowledged once."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import func, select

from carepoints.audit.models import AuditEntry
from carepoints.config import get_settings, reset_settings
from carepoints.kit.db import read_tx, table, write_tx
from carepoints.kit.time import utc_now
from carepoints.security import otp
from carepoints.services.satisfaction import service, tasks
from carepoints.services.satisfaction.models import Complaint, ImprovementItem
from carepoints.services.satisfaction.schemas import CloseIn, ComplaintIn
from tests.analytics import visits_kit as vk
from tests.conftest import Db
from tests.locks import race
from tests.services.satisfaction.kit import World, alerts, detect, items, outbox, sdb

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]
__all__ = ["sdb"]
TEXT = "挂号处排队太久,工作人员态度也不好"


def patient_key(pid: str) -> str:
    return otp.patient_token(pid, utc_now(), get_settings())[0]


def staff_key(api: Api, role: str) -> tuple[str, str]:
    name = f"{role}{utc_now().timestamp():.6f}".replace(".", "")
    uid = api.make_staff(name, "correct horse battery", role)
    r = api.client.post("/api/v1/auth/token", json={"username": name, "password": "correct horse battery"})
    assert r.status_code == 200, r.text
    return uid, str(r.json()["access_token"])


def count(model: Any) -> int:
    with read_tx() as s:
        return int(s.execute(select(func.count()).select_from(model)).scalar_one())


def audit_rows(prefix: str) -> list[dict[str, Any]]:
    with read_tx() as s:
        return [dict(r) for r in s.execute(select(AuditEntry.action, AuditEntry.details, AuditEntry.patient_id)
                                           .where(AuditEntry.action.like(prefix + "%"))
                                           .order_by(AuditEntry.at)).mappings()]


def refused(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.json()["error"] == code, r.text


def test_a_patient_files_a_complaint_about_a_visit_once(api: Api, db: Db) -> None:
    w = World("A", "B")
    appt = w.visit("A", vk.today() - timedelta(days=2))
    pid = appt["patient_id"]
    key = patient_key(pid)
    body = {"appointment_id": appt["id"], "category": "waiting", "text": TEXT, "idempotency_key": "c-1"}
    r = api.post(f"/patients/{pid}/complaints", body, key=key)
    assert r.status_code == 201, r.text
    doc = r.json()
    assert (doc["department"]["id"], doc["appointment_id"], doc["category"], doc["text"], doc["status"],
            doc["channel"]) == (w.departments["A"], appt["id"], "waiting", TEXT, "open", "patient")
    again = api.post(f"/patients/{pid}/complaints", body, key=key)
    assert again.status_code == 200
    assert again.json()["id"] == doc["id"]
    refused(api.post(f"/patients/{pid}/complaints", {**body, "text": TEXT + "!"}, key=key), 409,
            "satisfaction.idempotency_conflict")
    assert count(Complaint) == 1
    [item] = items()
    assert (item["kind"], item["source_id"], item["department_id"], item["reasons"]) == (
        "complaint", doc["id"], w.departments["A"], ["waiting"])
    assert [m["complaint_id"] for m in outbox("complaints.received")] == [doc["id"]]
    [row] = audit_rows("satisfaction:complaint:")
    assert TEXT not in str(row["details"])
    assert row["details"]["category"] == "waiting"
    listed = api.get(f"/patients/{pid}/complaints", key=key).json()["items"]
    assert [c["id"] for c in listed] == [doc["id"]]
    assert api.get(f"/patients/{pid}/complaints/{doc['id']}", key=key).json()["text"] == TEXT


def test_patients_reach_only_their_own_visits_and_complaints(api: Api, db: Db) -> None:
    w = World("A")
    mine, theirs = (w.visit("A", vk.today() - timedelta(days=1)) for _ in range(2))
    pid, other = mine["patient_id"], theirs["patient_id"]
    key = patient_key(pid)
    body = {"appointment_id": theirs["id"], "category": "attitude", "text": TEXT}
    refused(api.post(f"/patients/{pid}/complaints", body, key=key), 404, "satisfaction.appointment_not_found")
    refused(api.post(f"/patients/{other}/complaints", {**body, "appointment_id": mine["id"]}, key=key), 404,
            "patients.not_found")
    theirs_doc = api.post(f"/patients/{other}/complaints", body, key=patient_key(other)).json()
    refused(api.get(f"/patients/{other}/complaints", key=key), 404, "patients.not_found")
    refused(api.get(f"/patients/{other}/complaints/{theirs_doc['id']}", key=key), 404, "patients.not_found")
    refused(api.get(f"/patients/{pid}/complaints/{theirs_doc['id']}", key=key), 404,
            "satisfaction.complaint_not_found")
    assert api.get(f"/patients/{pid}/complaints", key=key).json()["items"] == []
    refused(api.get("/improvements", key=key), 403, "auth.forbidden")
    assert count(Complaint) == 1


def test_bad_complaints_store_nothing(api: Api, db: Db) -> None:
    w = World("A", "B")
    appt = w.visit("A", vk.today() - timedelta(days=1))
    pid = appt["patient_id"]
    url = f"/patients/{pid}/complaints"
    ok = {"department_id": w.departments["A"], "category": "billing", "text": TEXT}
    for bad in ({**ok, "text": "短"}, {**ok, "category": "rude"}, {"category": "other", "text": TEXT},
                {**ok, "extra": 1}, {**ok, "text": " " * 20}):
        refused(api.post(url, bad), 422, "request.invalid")
    refused(api.post(url, {**ok, "department_id": "0190a0a0-0000-7000-8000-000000000000"}), 404,
            "satisfaction.department_not_found")
    refused(api.post(url, {**ok, "appointment_id": appt["id"], "department_id": w.departments["B"]}), 409,
            "satisfaction.department_mismatch")
    refused(api.post("/patients/0190a0a0-0000-7000-8000-000000000000/complaints", ok), 404, "patients.not_found")
    assert (count(Complaint), count(ImprovementItem)) == (0, 0)
    _uid, desk = staff_key(api, "frontdesk")
    r = api.post(url, ok, key=desk)
    assert r.status_code == 201, r.text
    assert (r.json()["channel"], r.json()["appointment_id"]) == ("staff", None)


def test_staff_assign_note_and_close_an_item(api: Api, sdb: Db) -> None:
    w = World("A")
    review = w.review("A", vk.today() - timedelta(days=1), 1, "医生很不耐烦")
    detect()
    [item] = items()
    nurse_id, nurse = staff_key(api, "nurse")
    _aid, auditor = staff_key(api, "auditor")
    listed = api.get("/improvements", key=nurse).json()["items"]
    assert [i["id"] for i in listed] == [item["id"]]
    assert "*" in listed[0]["patient"]
    assert "测试患者" not in listed[0]["patient"]
    assert api.get("/improvements", params={"department_id": w.departments["A"], "kind": "review"},
                   key=auditor).json()["items"][0]["id"] == item["id"]
    assert api.get("/improvements", params={"kind": "complaint"}, key=nurse).json()["items"] == []
    one = api.get(f"/improvements/{item['id']}", key=nurse).json()
    assert (one["source"]["rating"], one["source"]["text"], one["notes"]) == (1, "医生很不耐烦", [])
    refused(api.post(f"/improvements/{item['id']}/assign", {"staff_user_id": nurse_id}, key=auditor), 403,
            "auth.forbidden")
    refused(api.post(f"/improvements/{item['id']}/assign", {"staff_user_id": _aid}), 404,
            "satisfaction.assignee_not_found")  # an auditor does not handle items
    r = api.post(f"/improvements/{item['id']}/assign", {"staff_user_id": nurse_id})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["assignee_id"]) == ("assigned", nurse_id)
    assert outbox("improvements.assigned") == [{"staff_user_id": nurse_id, "item_id": item["id"]}]
    assert api.get("/improvements", params={"assignee_id": nurse_id}, key=nurse).json()["items"][0]["id"] == item["id"]
    r = api.post(f"/improvements/{item['id']}/notes", {"text": "已与患者电话沟通并致歉"}, key=nurse)
    assert r.status_code == 201, r.text
    refused(api.post(f"/improvements/{item['id']}/close", {"resolution": " "}, key=nurse), 422, "request.invalid")
    r = api.post(f"/improvements/{item['id']}/close", {"resolution": "科室已开会整改"}, key=nurse)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["resolution"], r.json()["closed_by"]) == ("closed", "科室已开会整改", nurse_id)
    for verb, body in (("close", {"resolution": "再次关闭"}), ("notes", {"text": "迟到的记录"}),
                       ("assign", {"staff_user_id": nurse_id})):
        refused(api.post(f"/improvements/{item['id']}/{verb}", body, key=nurse), 409, "satisfaction.item_closed")
    refused(api.get("/improvements/nope", key=nurse), 404, "satisfaction.item_not_found")
    assert api.get("/improvements", key=nurse).json()["items"] == []  # open only by default
    assert len(api.get("/improvements", params={"status": "closed"}, key=nurse).json()["items"]) == 1
    done = api.get(f"/improvements/{item['id']}", key=nurse).json()
    assert [n["text"] for n in done["notes"]] == ["已与患者电话沟通并致歉"]
    trail = audit_rows("satisfaction:item:")
    assert [a["action"] for a in trail] == ["satisfaction:item:create", "satisfaction:item:view",
                                            "satisfaction:item:assign", "satisfaction:item:note",
                                            "satisfaction:item:close", "satisfaction:item:view"]
    assert all(a["patient_id"] == review["patient_id"] for a in trail)
    assert not [a for a in trail if "整改" in str(a["details"]) or "耐烦" in str(a["details"])
                or "致歉" in str(a["details"])]


def test_closing_a_complaint_tells_its_patient(api: Api, db: Db) -> None:
    w = World("A")
    pid = w.visit("A", vk.today() - timedelta(days=1))["patient_id"]
    doc = api.post(f"/patients/{pid}/complaints", {"department_id": w.departments["A"], "category": "environment",
                                                   "text": "卫生间没有扶手"}, key=patient_key(pid)).json()
    assert api.post(f"/improvements/{doc['item_id']}/close", {"resolution": "已加装扶手"}).status_code == 200
    assert outbox("complaints.closed") == [{"patient_id": pid, "complaint_id": doc["id"]}]
    mine = api.get(f"/patients/{pid}/complaints/{doc['id']}", key=patient_key(pid)).json()
    assert (mine["status"], mine["resolution"]) == ("closed", "已加装扶手")


def test_racing_closes_close_an_item_once(racing: Db) -> None:
    w = World("A")
    pid = w.visit("A", vk.today() - timedelta(days=1))["patient_id"]
    with write_tx() as s:
        doc, _ = service.file_complaint(s, pid, ComplaintIn(department_id=w.departments["A"], category="other",
                                                             text=TEXT), tasks.ALERTER, utc_now())

    def close(n: int) -> Any:
        def go() -> Any:
            with write_tx() as s:
                return service.close(s, doc["item_id"], CloseIn(resolution=f"结果{n}"), tasks.ALERTER, utc_now())
        return go

    outcomes = race(racing, [close(n) for n in range(5)], lock=(table(ImprovementItem), [doc["item_id"]]))
    won = [v for k, v in outcomes if k == "ok"]
    lost = [v for k, v in outcomes if k == "err"]
    assert len(won) == 1, outcomes
    assert {type(e).__name__ for e in lost} == {"ItemClosedError"}
    [item] = items()
    assert item["resolution"] == won[0]["resolution"]
    assert len(outbox("complaints.closed")) == 1


def test_the_dashboard_and_alerts(api: Api, sdb: Db, monkeypatch: pytest.MonkeyPatch) -> None:
    w = World("A", "B")
    d = w.departments
    today = vk.today()
    monday = today - timedelta(days=today.weekday())
    for rating in (1, 2, 5):
        w.review("A", monday, rating)
    w.review("B", monday - timedelta(days=7), 4)
    detect()
    a_items = [i for i in items() if i["department_id"] == d["A"]]
    assert len(a_items) == 2
    api.post(f"/improvements/{a_items[0]['id']}/close", {"resolution": "已处理"})
    doc = api.get("/satisfaction/dashboard", params={"weeks": 4}).json()
    assert doc["open"] == 1
    assert doc["time_to_close"]["closed"] == 1
    by = {x["department"]["id"] if x["department"] else None: x for x in doc["departments"]}
    assert (by[d["A"]]["open"], by[d["A"]]["avg_score"], by[d["A"]]["scores"], by[d["A"]]["closed"]) == (1, 2.67, 3, 1)
    assert (by[d["B"]]["open"], by[d["B"]]["avg_score"]) == (0, 4.0)
    trend = {t["week"]: t for t in doc["trend"]}
    assert len(trend) == 4
    assert (trend[monday.isoformat()]["avg_score"], trend[monday.isoformat()]["created"],
            trend[monday.isoformat()]["closed"]) == (2.67, 2, 1)
    assert trend[(monday - timedelta(days=7)).isoformat()]["avg_score"] == 4.0
    one = api.get("/satisfaction/dashboard", params={"department_id": d["B"]}).json()
    assert (one["open"], one["departments"][0]["avg_score"]) == (0, 4.0)
    refused(api.get("/satisfaction/dashboard", params={"department_id": "nope"}), 404,
            "satisfaction.department_not_found")
    _nid, nurse = staff_key(api, "nurse")
    refused(api.get("/satisfaction/dashboard", key=nurse), 403, "auth.forbidden")
    _aid, auditor = staff_key(api, "auditor")
    assert api.get("/satisfaction/dashboard", key=auditor).status_code == 200

    # an alert: A fell from 5 to 1 (one score each, min samples 1 for this check)
    w.review("A", today - timedelta(days=20), 5)
    w.review("A", today - timedelta(days=3), 1)
    detect()
    monkeypatch.setenv("CAREPOINTS_SATISFACTION_ALERT_MIN_SAMPLES", "1")
    reset_settings()
    assert tasks.satisfaction_alerts(utc_now())["alerts"] == 1
    [alert] = alerts()
    assert api.get("/satisfaction/dashboard").json()["alerts"][0]["id"] == alert["id"]
    refused(api.post(f"/satisfaction/alerts/{alert['id']}/acknowledge", key=auditor), 403, "auth.forbidden")
    r = api.post(f"/satisfaction/alerts/{alert['id']}/acknowledge")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "acknowledged"
    refused(api.post(f"/satisfaction/alerts/{alert['id']}/acknowledge"), 409, "satisfaction.alert_acknowledged")
    refused(api.post("/satisfaction/alerts/nope/acknowledge"), 404, "satisfaction.alert_not_found")
    assert api.get("/satisfaction/dashboard").json()["alerts"] == []
    assert [x["status"] for x in api.get("/satisfaction/alerts").json()["items"]] == ["acknowledged"]
