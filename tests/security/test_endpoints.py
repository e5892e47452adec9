"""Authentication and role checks on every endpoint; POST /auth/token; the
unauthenticated probes and the OpenAPI document."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import TYPE_CHECKING

import jwt

from carepoints.kit.db import write_tx
from carepoints.kit.time import utc_now
from carepoints.security import service as security
from tests.helpers import bp, event
from tests.security.public import PUBLIC

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]

UNKNOWN = "0190a5f0-0000-7000-8000-000000000000"
PASSWORD = "correct horse battery"


def _protected(api: Api) -> list[tuple[str, str]]:
    """Every /api/v1 operation in the OpenAPI document but the public ones (token exchange, codes)."""
    doc = api.client.get("/openapi.json").json()
    ops = [(method.upper(), path.replace("{patient_id}", UNKNOWN).replace("{event_id}", UNKNOWN))
           for path, item in doc["paths"].items() if path.startswith("/api/v1/")
           for method in item if method in ("get", "post", "put", "patch", "delete")]
    return [op for op in ops if op not in PUBLIC]


def _token(api: Api, username: str, password: str = PASSWORD) -> str:
    r = api.client.post("/api/v1/auth/token", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["token_type"] == "bearer"
    assert doc["expires_in"] > 0
    return str(doc["access_token"])


def test_every_api_endpoint_needs_a_credential(api: Api) -> None:
    ops = _protected(api)
    assert ("POST", "/api/v1/events") in ops
    assert ("POST", "/api/v1/patients") in ops
    assert len(ops) >= 7
    bad = ["cpk_" + "x" * 43, "not-a-key", "a.b.c", jwt.encode({"sub": "x", "exp": 2**40}, "wrong-secret")]
    for method, path in ops:
        r = api.client.request(method, path, json={})
        assert r.status_code == 401, (method, path, r.text)
        assert r.json()["error"] == "auth.unauthenticated"
        assert r.headers["www-authenticate"] == "Bearer"
        for key in bad:
            r = api.client.request(method, path, json={}, headers={"Authorization": f"Bearer {key}"})
            assert r.status_code == 401, (method, path, key, r.text)
        r = api.client.request(method, path, json={}, headers={"Authorization": f"Basic {api.key}"})
        assert r.status_code == 401, (method, path)


def test_a_key_works_without_signature(api: Api) -> None:
    pid = api.enrol()
    assert api.get(f"/patients/{pid}/points").status_code == 200


def test_a_revoked_key_is_refused(api: Api) -> None:
    with write_tx() as session:
        kid, secret = security.create_api_key(session, "old", "integration", utc_now())
        security.revoke_api_key(session, kid, utc_now())
    r = api.get(f"/patients/{UNKNOWN}", key=secret)
    assert r.status_code == 401


def test_a_role_without_the_permission_gets_403(api: Api) -> None:
    pid = api.enrol()
    api.make_staff("dr.wang", PASSWORD, "clinician")
    token = _token(api, "dr.wang")
    r = api.post("/events", event(pid, "health.measurement", api.now() - timedelta(hours=1), bp()), key=token)
    assert r.status_code == 403, r.text
    assert r.json()["error"] == "auth.forbidden"
    assert api.balance(pid) == 100
    # what the role may do, it can
    r = api.get(f"/patients/{pid}/points", key=token)
    assert r.status_code == 200
    assert r.json()["balance"] == 100
    assert api.post("/patients", api.patient_body(), key=token).status_code == 403
    assert api.post(f"/events/{UNKNOWN}/revoke", {"reason": "x"}, key=token).status_code == 403


def test_nurse_may_send_events_but_not_revoke(api: Api) -> None:
    pid = api.enrol()
    api.make_staff("nurse.li", PASSWORD, "nurse")
    token = _token(api, "nurse.li")
    out = api.send(event(pid, "health.measurement", api.now() - timedelta(hours=1), bp()), key=token)
    assert out["balance"] == 160
    r = api.post(f"/events/{out['event_id']}/revoke", {"reason": "x"}, key=token)
    assert r.status_code == 403


def test_a_tampered_or_expired_token_is_refused(api: Api) -> None:
    api.make_staff("dr.zhao", PASSWORD, "clinician")
    token = _token(api, "dr.zhao")
    claims = jwt.decode(token, options={"verify_signature": False})
    forged = jwt.encode({**claims, "role": "admin"}, "not-the-secret", algorithm="HS256")
    assert api.get(f"/patients/{UNKNOWN}", key=forged).status_code == 401
    head, body, sig = token.split(".")
    flipped = head + "." + body + "." + ("A" if sig[0] != "A" else "B") + sig[1:]
    assert api.get(f"/patients/{UNKNOWN}", key=flipped).status_code == 401
    from carepoints.config import get_settings

    expired = jwt.encode({**claims, "exp": int(time.time()) - 10}, get_settings().secret_key, algorithm="HS256")
    assert api.get(f"/patients/{UNKNOWN}", key=expired).status_code == 401
    assert api.get(f"/patients/{UNKNOWN}", key=token).status_code == 404


def test_token_with_a_wrong_password_is_401(api: Api) -> None:
    api.make_staff("desk.chen", PASSWORD, "frontdesk")
    for body in ({"username": "desk.chen", "password": "wrong password"},
                 {"username": "nobody", "password": PASSWORD}):
        r = api.client.post("/api/v1/auth/token", json=body)
        assert r.status_code == 401, r.text
        assert r.json()["error"] == "auth.bad_credentials"
        assert "access_token" not in r.json()
    r = api.client.post("/api/v1/auth/token", json={"username": "desk.chen"})
    assert 400 <= r.status_code < 500
    assert _token(api, "desk.chen")


def test_an_integration_key_cannot_read_pii(api: Api) -> None:
    key = api.make_key("integration")
    pid = api.enrol(name="王小明", phone="13900001234")
    doc = api.get(f"/patients/{pid}", key=key).json()
    assert (doc["name"], doc["phone"]) == ("王**", "139****1234")
    assert "小明" not in api.get(f"/patients/{pid}", key=key).text
    doc = api.get(f"/patients/{pid}").json()  # admin
    assert (doc["name"], doc["phone"]) == ("王小明", "13900001234")
    api.make_staff("desk.sun", PASSWORD, "frontdesk")  # the service window may read it
    assert api.get(f"/patients/{pid}", key=_token(api, "desk.sun")).json()["name"] == "王小明"
    api.make_staff("nurse.zhou", PASSWORD, "clinician")
    assert api.get(f"/patients/{pid}", key=_token(api, "nurse.zhou")).json()["name"] == "王**"


def test_an_integration_key_cannot_do_staff_work(api: Api) -> None:
    key = api.make_key("integration")
    pid = api.enrol()
    assert api.get(f"/patients/{pid}/points", key=key).status_code == 200
    assert api.post("/patients", api.patient_body(), key=key).status_code == 201


def test_probes_need_no_credential(api: Api) -> None:
    r = api.client.get("/healthz")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})
    r = api.client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "database": True}
    r = api.client.get("/metrics")
    assert r.status_code == 200
    assert "carepoints_info" in r.text


def test_openapi_lists_the_api(api: Api) -> None:
    r = api.client.get("/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    for path in ("/api/v1/events", "/api/v1/patients", "/api/v1/patients/{patient_id}/points",
                 "/api/v1/patients/{patient_id}/points/entries", "/api/v1/events/{event_id}/revoke",
                 "/api/v1/events/revoke", "/api/v1/auth/token"):
        assert path in paths, path
    assert "post" in paths["/api/v1/events"]


def test_unknown_routes_answer_json_errors(api: Api) -> None:
    r = api.get("/api/v1/nope")
    assert (r.status_code, r.json()["error"]) == (404, "resource.not_found")
    r = api.request("DELETE", "/events")
    assert (r.status_code, r.json()["error"]) == (405, "request.method_not_allowed")


def test_a_key_that_must_sign_is_refused_unsigned(api: Api) -> None:
    """API.md: keys created with --require-signature must sign; signing is not accepted yet, so they are refused."""
    with write_tx() as session:
        _kid, secret = security.create_api_key(session, "signer", "integration", utc_now(), require_signature=True)
    r = api.get(f"/patients/{UNKNOWN}", key=secret)
    assert r.status_code == 401
    assert r.json()["error"] == "auth.signature_required"


def test_a_deactivated_staff_member_s_token_stops_working(api: Api) -> None:
    api.make_staff("leaver", PASSWORD, "frontdesk")
    token = _token(api, "leaver")
    with write_tx() as session:
        security.deactivate_staff(session, "leaver")
    r = api.get(f"/patients/{UNKNOWN}", key=token)  # first use after deactivation: nothing cached
    assert r.status_code == 401
