"""The care-alert queue over HTTP: raised once per cause (also under concurrency),
listed critical first, assigned, acknowledged and resolved by staff with an audit
trail; bad input is a 4xx with a code."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from sqlalchemy import select

from carepoints.audit import service as audit
from carepoints.engagement.care import service as care
from carepoints.engagement.care.schemas import AlertKind
from carepoints.kit.db import read_tx, table, write_tx
from carepoints.kit.outbox import OutboxMessage
from carepoints.kit.time import utc_now
from tests.helpers import error

if TYPE_CHECKING:
    from tests.api_client import Api
    from tests.conftest import Db

pytest_plugins = ["tests.api_client"]

PASSWORD = "correct horse battery"
UNKNOWN = "0190a5f0-0000-7000-8000-000000000000"


def _raise(pid: str, kind: AlertKind, ref: str, severity: str = "high") -> str | None:
    with write_tx() as session:
        return care.raise_alert(session, patient_id=pid, kind=kind, source_ref=ref, now=utc_now(), severity=severity,
                                details={"event_id": ref})


def _alert_messages(pid: str) -> int:
    outbox = table(OutboxMessage)
    with read_tx() as session:
        return len(session.connection().execute(select(outbox.c.id).where(
            outbox.c.topic == "care.alert", outbox.c.key == pid)).all())


def _nurse(api: Api, username: str) -> tuple[str, str]:
    sid = api.make_staff(username, PASSWORD, "nurse")
    r = api.client.post("/api/v1/auth/token", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return sid, str(r.json()["access_token"])


def test_an_alert_is_raised_once_per_cause(api: Api) -> None:
    pid = api.enrol()
    first = _raise(pid, AlertKind.abnormal_reading, "ev-1")
    assert first is not None
    assert _raise(pid, AlertKind.abnormal_reading, "ev-1") is None  # the same cause again
    assert _raise(pid, AlertKind.inactivity, "ev-1") is not None  # another kind is another alert
    assert _alert_messages(pid) == 2
    items = api.get("/care-alerts", params={"patient_id": pid}).json()["items"]
    assert sorted(i["kind"] for i in items) == ["abnormal_reading", "inactivity"]


def test_concurrent_raises_of_one_cause_make_one_alert(racing: Db, api: Api) -> None:
    pid = api.enrol()
    barrier = threading.Barrier(6)
    results: list[str | None] = []

    def run() -> None:
        barrier.wait()
        results.append(_raise(pid, AlertKind.critical_value, "lab-7", "critical"))

    threads = [threading.Thread(target=run) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len([r for r in results if r is not None]) == 1
    assert _alert_messages(pid) == 1


def test_the_queue_lists_critical_first_and_filters(api: Api) -> None:
    pid = api.enrol()
    normal = _raise(pid, AlertKind.inactivity, "d1", "normal")
    critical = _raise(pid, AlertKind.critical_value, "lab-1", "critical")
    high = _raise(pid, AlertKind.abnormal_reading, "ev-2", "high")
    items = api.get("/care-alerts").json()["items"]
    assert [i["id"] for i in items] == [critical, high, normal]
    only = api.get("/care-alerts", params={"kind": "inactivity"}).json()["items"]
    assert [i["id"] for i in only] == [normal]
    page = api.get("/care-alerts", params={"limit": 2}).json()
    assert len(page["items"]) == 2
    assert page["next"] is not None
    rest = api.get("/care-alerts", params={"limit": 2, "before": page["next"]}).json()
    assert {i["id"] for i in page["items"]} | {i["id"] for i in rest["items"]} == {normal, critical, high}
    error(api.get("/care-alerts", params={"kind": "nonsense"}), 422, "request.invalid")
    error(api.get("/care-alerts", params={"limit": 0}), 422, "request.invalid")


def test_a_nurse_acknowledges_and_resolves_with_an_audit_trail(api: Api) -> None:
    pid = api.enrol()
    aid = _raise(pid, AlertKind.abnormal_reading, "ev-3")
    sid, token = _nurse(api, "nurse.lin")
    r = api.post(f"/care-alerts/{aid}/acknowledge", key=token)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "acknowledged"
    assert r.json()["assigned_to"] == sid
    again = api.post(f"/care-alerts/{aid}/acknowledge", key=token)
    assert again.json()["acknowledged_at"] == r.json()["acknowledged_at"]
    r = api.post(f"/care-alerts/{aid}/resolve", {"resolution": "contacted"}, key=token)
    assert r.status_code == 200
    assert r.json()["status"] == "resolved"
    assert r.json()["resolution"] == "contacted"
    error(api.post(f"/care-alerts/{aid}/resolve", {"resolution": "contacted"}, key=token), 409, "care.alert_resolved")
    error(api.post(f"/care-alerts/{aid}/assign", {"staff_user_id": sid}, key=token), 409, "care.alert_resolved")
    detail = api.get(f"/care-alerts/{aid}", key=token).json()
    assert [h["action"] for h in detail["history"]] == ["care:alert:acknowledge", "care:alert:resolve"]
    assert all(h["actor_id"] == sid for h in detail["history"])
    with read_tx() as session:
        rows = audit.entries(session, patient_id=pid)
    assert {r["action"] for r in rows} >= {"care:alert:acknowledge", "care:alert:resolve"}
    assert api.get("/care-alerts", params={"patient_id": pid}).json()["items"] == []
    resolved = api.get("/care-alerts", params={"patient_id": pid, "status": "resolved"}).json()["items"]
    assert [i["id"] for i in resolved] == [aid]


def test_assignment_and_bad_input(api: Api) -> None:
    pid = api.enrol()
    aid = _raise(pid, AlertKind.abnormal_answer, "ans-1")
    sid, _token = _nurse(api, "nurse.zhou")
    r = api.post(f"/care-alerts/{aid}/assign", {"staff_user_id": sid})
    assert r.status_code == 200
    assert r.json()["assigned_to"] == sid
    mine = api.get("/care-alerts", params={"assigned_to": sid}).json()["items"]
    assert [i["id"] for i in mine] == [aid]
    assert api.post(f"/care-alerts/{aid}/assign", {"staff_user_id": None}).json()["assigned_to"] is None
    error(api.post(f"/care-alerts/{aid}/assign", {"staff_user_id": UNKNOWN}), 404, "care.staff_not_found")
    error(api.post(f"/care-alerts/{aid}/assign", {"staff_user_id": "not-an-id"}), 404, "care.staff_not_found")
    error(api.post(f"/care-alerts/{aid}/assign", {}), 422, "request.invalid")
    error(api.post(f"/care-alerts/{aid}/resolve", {"resolution": "fixed_it"}), 422, "request.invalid")
    error(api.post(f"/care-alerts/{UNKNOWN}/acknowledge"), 404, "care.alert_not_found")
    error(api.get("/care-alerts/not-an-id"), 404, "care.alert_not_found")


def test_who_may_see_and_work_the_queue(api: Api) -> None:
    pid = api.enrol()
    aid = _raise(pid, AlertKind.abnormal_reading, "ev-9")
    api.make_staff("desk.li", PASSWORD, "frontdesk")
    r = api.client.post("/api/v1/auth/token", json={"username": "desk.li", "password": PASSWORD})
    desk = str(r.json()["access_token"])
    error(api.get("/care-alerts", key=desk), 403, "auth.forbidden")
    error(api.post(f"/care-alerts/{aid}/acknowledge", key=desk), 403, "auth.forbidden")
    error(api.get("/care-alerts", auth=False), 401, "auth.unauthenticated")
