"""POST /api/v1/patients/{survivor_id}/merge over HTTP on SQLite and PostgreSQL: frontdesk and
admin may merge, others get 403; errors are 4xx with codes; the same merge again answers
`duplicate: true`; the ledger verifies after each test (the `api` fixture)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.helpers import error

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]

PASSWORD = "correct horse battery"


def staff_token(api: Api, role: str) -> str:
    api.make_staff(f"merge.{role}", PASSWORD, role)
    r = api.client.post("/api/v1/auth/token", json={"username": f"merge.{role}", "password": PASSWORD})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def test_frontdesk_merges_and_the_same_merge_answers_again(api: Api) -> None:
    s = api.enrol()
    d = api.enrol(external_ids=[{"system": "urn:his:mrn", "value": "HTTP-1"}])
    token = staff_token(api, "frontdesk")
    body = {"duplicate_id": d, "reason_code": "duplicate_registration", "note": "两张就诊卡"}
    r = api.post(f"/patients/{s}/merge", body, key=token)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert (doc["survivor_id"], doc["duplicate_id"], doc["duplicate"]) == (s, d, False)
    assert doc["moved"]["external_ids"] == 1
    assert doc["moved"]["points"] == 100
    assert api.balance(s) == 200
    assert api.balance(d) == 0
    again = api.post(f"/patients/{s}/merge", body, key=token)
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert {k: v for k, v in again.json().items() if k != "duplicate"} == \
        {k: v for k, v in doc.items() if k != "duplicate"}
    assert api.get(f"/patients/{d}").json()["status"] == "merged"
    error(api.post(f"/patients/{api.enrol()}/merge", {**body}), 409, "merge.already_merged")


def test_errors_and_permissions(api: Api) -> None:
    s, d = api.enrol(), api.enrol()
    body = {"duplicate_id": d, "reason_code": "duplicate_registration"}
    error(api.post(f"/patients/{s}/merge", body, key=staff_token(api, "nurse")), 403, "auth.forbidden")
    error(api.post(f"/patients/{s}/merge", body, key=api.make_key("integration")), 403, "auth.forbidden")
    error(api.post(f"/patients/{s}/merge", {**body, "duplicate_id": s}), 409, "merge.same_patient")
    error(api.post(f"/patients/{s}/merge", {**body, "duplicate_id": "nope"}), 404, "patients.not_found")
    error(api.post("/patients/0190a5f0-0000-7000-8000-00000000dead/merge", body), 404, "patients.not_found")
    r = api.post(f"/patients/{s}/merge", {**body, "reason_code": "Free text 不行"})
    assert r.status_code == 422
    r = api.post(f"/patients/{s}/merge", {**body, "extra": 1})
    assert r.status_code == 422
    assert api.balance(s) == 100
    assert api.balance(d) == 100
