"""The access report ("who looked at my data") and the auditor's search over
HTTP (both databases)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from carepoints.kit.ids import new_id

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]
PASSWORD = "password-123456"


def _token(api: Api, username: str, role: str) -> tuple[str, str]:
    sid = api.make_staff(username, PASSWORD, role)
    r = api.post("/auth/token", {"username": username, "password": PASSWORD}, auth=False)
    assert r.status_code == 200, r.text
    return sid, str(r.json()["access_token"])


def test_the_access_report_groups_who_looked_when_what_and_from_where(api: Api) -> None:
    pid, other = api.enrol(), api.enrol()
    desk_id, desk = _token(api, "desk_zhou", "frontdesk")
    his = api.make_key("integration", "HIS-东院")
    assert api.get(f"/patients/{pid}", key=desk).status_code == 200
    assert api.get(f"/patients/{pid}/points", key=desk).status_code == 200
    assert api.get(f"/patients/{pid}/points", key=his).status_code == 200
    assert api.get(f"/patients/{other}", key=desk).status_code == 200  # someone else's record
    _aud_id, auditor = _token(api, "auditor_qian", "auditor")
    r = api.get(f"/patients/{pid}/access-report", key=auditor, params={"days": 30})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["patient_id"] == pid
    by_kind = {g["actor"]["kind"]: g for g in doc["groups"]}
    staff = by_kind["staff"]
    assert staff["actor"] == {"kind": "staff", "id": desk_id, "role": "frontdesk", "username": "desk_zhou"}
    assert staff["count"] == 2
    assert [e["action"] for e in staff["entries"]] == ["http:GET:/api/v1/patients/{patient_id}/points",
                                                       "http:GET:/api/v1/patients/{patient_id}"]
    assert all(e["ip"] == "testclient" and e["status"] == 200 and e["at"].endswith("Z") for e in staff["entries"])
    assert staff["first_at"] <= staff["last_at"]
    key = by_kind["api_key"]
    assert key["actor"]["name"] == "HIS-东院"
    assert key["actor"]["role"] == "integration"
    assert key["count"] == 1
    assert "system" not in by_kind
    # the report never carries the patient's own PII, nor other patients' rows
    assert "张三丰" not in r.text
    assert other not in r.text
    # the auditor's own read of the report is itself audited
    again = api.get(f"/patients/{pid}/access-report", key=auditor).json()
    assert any(e["action"] == "http:GET:/api/v1/patients/{patient_id}/access-report"
               for g in again["groups"] for e in g["entries"])


def test_the_access_report_needs_its_permission_and_a_known_patient(api: Api) -> None:
    pid = api.enrol()
    _sid, desk = _token(api, "desk_sun", "frontdesk")
    r = api.get(f"/patients/{pid}/access-report", key=desk)
    assert r.status_code == 403
    assert r.json()["error"] == "auth.forbidden"
    assert api.get(f"/patients/{pid}/access-report", key=api.make_key("integration")).status_code == 403
    for unknown in (new_id(), "not-an-id"):
        r = api.get(f"/patients/{unknown}/access-report")
        assert r.status_code == 404
        assert r.json()["error"] == "patients.not_found"
    r = api.get(f"/patients/{pid}/access-report", params={"days": 0})
    assert r.status_code == 422
    assert r.json()["error"] == "request.invalid"
    assert api.get(f"/patients/{pid}/access-report", params={"days": 366}).status_code == 200


def test_the_auditor_searches_and_pages_the_log(api: Api) -> None:
    pid = api.enrol()
    desk_id, desk = _token(api, "desk_wei", "frontdesk")
    for _ in range(5):
        assert api.get(f"/patients/{pid}", key=desk).status_code == 200
    _aud, auditor = _token(api, "auditor_he", "auditor")
    r = api.get("/audit", key=auditor, params={"actor_id": desk_id, "limit": 3})
    assert r.status_code == 200, r.text
    page = r.json()
    assert len(page["items"]) == 3
    assert page["next"]
    item = page["items"][0]
    assert item["actor"] == {"kind": "staff", "id": desk_id, "role": "frontdesk", "username": "desk_wei"}
    assert item["patient_id"] == pid
    assert item["details"]["status"] == 200
    rest = api.get("/audit", key=auditor, params={"actor_id": desk_id, "limit": 3, "before": page["next"]}).json()
    assert len(rest["items"]) == 2
    assert rest["next"] is None
    ids = [i["id"] for i in page["items"] + rest["items"]]
    assert ids == sorted(ids, reverse=True)
    assert len(set(ids)) == 5
    only = api.get("/audit", key=auditor, params={"patient_id": pid, "action": "http:GET:*"}).json()
    assert {i["action"] for i in only["items"]} == {"http:GET:/api/v1/patients/{patient_id}"}
    none = api.get("/audit", key=auditor, params={"since": "2999-01-01T00:00:00+08:00"}).json()
    assert none["items"] == []
    r = api.get("/audit", key=auditor, params={"before": "nope"})
    assert r.status_code == 400
    assert r.json()["error"] == "audit.bad_cursor"
    assert api.get("/audit", key=desk).status_code == 403
    assert api.get("/audit", params={"limit": 5000}).status_code == 422
    r = api.get("/audit", params={"since": "9999-12-31T23:59:59-10:00"})
    assert r.status_code == 422
    assert r.json()["error"] == "request.invalid"
