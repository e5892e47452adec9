"""The request-level audit middleware over HTTP (both databases): staff reads
and actions, integration-key reads (not writes, not the events fast path),
denied attempts; and which principals count, as a pure function."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from carepoints.audit import service as audit
from carepoints.kit.db import read_tx
from carepoints.kit.ids import new_id
from carepoints.security.audit_requests import request_row, route_template
from carepoints.security.service import Principal
from tests.helpers import event

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]
PASSWORD = "password-123456"


def _requests(**where: Any) -> list[dict[str, Any]]:
    with read_tx() as session:
        rows = audit.search(session, limit=1000, action="http:*", **where)
    return list(reversed(rows))


def _staff(api: Api, username: str, role: str) -> tuple[str, str]:
    sid = api.make_staff(username, PASSWORD, role)
    r = api.post("/auth/token", {"username": username, "password": PASSWORD}, auth=False)
    assert r.status_code == 200, r.text
    return sid, str(r.json()["access_token"])


def test_a_staff_read_of_a_patient_is_one_row(api: Api) -> None:
    pid = api.enrol()
    sid, token = _staff(api, "desk_li", "frontdesk")
    r = api.get(f"/patients/{pid}", key=token, headers={"X-Request-Id": "req-42"})
    assert r.status_code == 200, r.text
    [row] = _requests(actor_id=sid)
    assert row["action"] == "http:GET:/api/v1/patients/{patient_id}"
    assert (row["actor_kind"], row["actor_role"], row["patient_id"]) == ("staff", "frontdesk", pid)
    assert row["details"]["status"] == 200
    assert row["details"]["ip"] == "testclient"
    assert row["details"]["request_id"] == "req-42"
    # never a body, a header or a query value other than ids
    assert set(row["details"]) <= {"status", "ip", "request_id"}


def test_staff_actions_and_denied_attempts_are_recorded_with_their_status(api: Api) -> None:
    pid = api.enrol()
    sid, token = _staff(api, "mod_wu", "moderator")
    denied = api.get(f"/patients/{pid}/points", key=token)
    assert denied.status_code == 403
    missing = new_id()
    assert api.get(f"/patients/{missing}", key=token).status_code == 404
    rows = _requests(actor_id=sid)
    assert [(r["action"], r["patient_id"], r["details"]["status"]) for r in rows] == [
        ("http:GET:/api/v1/patients/{patient_id}/points", pid, 403),
        ("http:GET:/api/v1/patients/{patient_id}", missing, 404)]


def test_integration_key_reads_are_recorded_but_not_its_writes_or_event_ingest(api: Api) -> None:
    key = api.make_key("integration", "his")
    pid = api.enrol()
    before = _requests()
    assert before == []  # the admin key's enrolment (a write) left no request row
    ev = event(pid, "lecture.attended", api.now() - timedelta(hours=1), {"lecture_id": "L-1"})
    assert api.post("/events", ev, key=key).status_code == 201  # the fast path: not audited per request
    assert api.get(f"/patients/{pid}/points", key=key).status_code == 200
    assert api.get(f"/rewards?patient_id={pid}", key=key).status_code == 200
    rows = _requests()
    assert [(r["actor_kind"], r["action"], r["patient_id"]) for r in rows] == [
        ("api_key", "http:GET:/api/v1/patients/{patient_id}/points", pid),
        ("api_key", "http:GET:/api/v1/rewards", pid)]
    assert rows[0]["actor_role"] == "integration"


def test_requests_without_a_principal_leave_no_row(api: Api) -> None:
    pid = api.enrol()
    assert api.get(f"/patients/{pid}", auth=False).status_code == 401
    assert api.get(f"/patients/{pid}", key="cpk_wrong").status_code == 401
    assert api.get("/healthz").status_code == 200
    assert _requests() == []


def test_domain_trails_leave_out_request_rows(api: Api) -> None:
    pid = api.enrol()
    _sid, token = _staff(api, "desk_ma", "frontdesk")
    assert api.get(f"/patients/{pid}", key=token).status_code == 200
    with read_tx() as session:
        assert all(not e["action"].startswith("http:") for e in audit.entries(session, patient_id=pid))
        assert any(e["action"].startswith("http:") for e in audit.entries(session, patient_id=pid, requests=True))


def _scope(method: str, principal: Principal | None, path_params: dict[str, str],
           query: bytes = b"") -> dict[str, Any]:
    return {"type": "http", "method": method, "path": "/api/v1/patients/" + path_params.get("patient_id", "x"),
            "path_params": path_params, "query_string": query, "client": ("10.0.0.9", 5555),
            "headers": [], "state": {} if principal is None else {"principal": principal}}


def test_which_principals_are_audited() -> None:
    me, other, subject = new_id(), new_id(), new_id()
    patient = Principal("patient", me, "patient", "")
    staff = Principal("staff", new_id(), "nurse", "nurse1")
    key = Principal("api_key", new_id(), "integration", "HIS")
    assert request_row(_scope("GET", None, {"patient_id": other}), 200) is None
    assert request_row(_scope("GET", patient, {"patient_id": me}), 200) is None  # their own data
    proxy = request_row(_scope("GET", patient, {"patient_id": other}), 200)  # acting for someone else
    assert proxy is not None
    assert proxy["on_behalf_of"] == other
    assert proxy["patient_id"] == other
    assert proxy["actor"] == audit.Actor("patient", me, "proxy")
    assert request_row(_scope("POST", key, {"patient_id": other}), 201) is None  # integration writes
    read = request_row(_scope("GET", key, {"patient_id": other, "plan_id": subject}), 200)
    assert read is not None
    assert read["subject_id"] == subject
    act = request_row(_scope("POST", staff, {"patient_id": "not-an-id"}, b"patient_id=" + other.encode()), 200)
    assert act is not None
    assert act["patient_id"] == other  # a malformed path id is not recorded
    assert act["details"] == {"status": 200, "ip": "10.0.0.9"}


def test_the_route_template_includes_the_router_prefix() -> None:
    class Route:
        path = "/patients/{patient_id}/points"

    scope = {"path": "/api/v1/patients/abc/points", "route": Route()}
    assert route_template(scope) == "/api/v1/patients/{patient_id}/points"
