"""Verification, the duplicate review list and deceased / closed accounts over HTTP: answers,
error codes, permissions, and the ledger intact afterwards (the `api` fixture checks it)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest

from carepoints.audit import service as audit
from carepoints.config import get_settings, reset_settings
from carepoints.kit.db import read_tx
from carepoints.kit.time import utc_now
from carepoints.security import otp
from tests.helpers import error, staff_token

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]

UNKNOWN = "0190a5f0-0000-7000-8000-000000000000"
ID_NUMBER = "110101199003071234"




@pytest.fixture
def checker(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """A loopback identity service configured as the http checker: verifies ID_NUMBER only."""
    seen: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append({"auth": self.headers.get("Authorization"), **body})
            payload = json.dumps({"result": "verified" if body["id_number"] == ID_NUMBER else "mismatch"}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *_args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("CAREPOINTS_IDENTITY_CHECKER", "http")
    monkeypatch.setenv("CAREPOINTS_IDENTITY_CHECKER_URL", f"http://127.0.0.1:{server.server_address[1]}/v1/check")
    monkeypatch.setenv("CAREPOINTS_IDENTITY_CHECKER_TOKEN", "secret-token")
    reset_settings()
    yield seen
    server.shutdown()
    server.server_close()
    monkeypatch.delenv("CAREPOINTS_IDENTITY_CHECKER")
    reset_settings()


def test_verification_over_http(api: Api) -> None:
    desk = staff_token(api, "desk1")
    nurse = staff_token(api, "nurse1", "nurse")
    pid = api.enrol(id_number=ID_NUMBER)
    assert api.get(f"/patients/{pid}/verification").json()["status"] == "unverified"
    r = api.post(f"/patients/{pid}/verification", {"method": "desk_document", "document_kind": "resident_id"},
                 key=desk)
    assert r.status_code == 201, r.text
    assert (r.json()["status"], r.json()["current"]["document_kind"]) == ("verified", "resident_id")
    error(api.post(f"/patients/{pid}/verification", {"method": "desk_document"}, key=desk), 400,
          "identity.document_kind_required")
    error(api.post(f"/patients/{pid}/verification", {"method": "external"}, key=desk), 409,
          "identity.checker_unavailable")
    with read_tx() as session:
        [failed] = audit.entries(session, patient_id=pid, action="patients:identity:check_failed")
    assert (failed["details"]["checker"], failed["details"]["error"]) == ("none", "identity.checker_unavailable")
    error(api.post(f"/patients/{pid}/verification", {"method": "desk_document", "document_kind": "resident_id"},
                   key=nurse), 403, "auth.forbidden")
    error(api.post(f"/patients/{UNKNOWN}/verification", {"method": "desk_document", "document_kind": "passport"},
                   key=desk), 404, "patients.not_found")
    assert api.post(f"/patients/{pid}/verification", {"method": "fingerprint"}, key=desk).status_code == 422
    integration = api.make_key("integration", "his")
    assert api.get(f"/patients/{pid}/verification", key=integration).status_code == 200
    error(api.post(f"/patients/{pid}/verification", {"method": "desk_document", "document_kind": "passport"},
                   key=integration), 403, "auth.forbidden")


def test_external_verification_over_http(api: Api, checker: list[dict[str, Any]]) -> None:
    pid = api.enrol(id_number=ID_NUMBER)
    other = api.enrol(id_number="110101199003075678")
    r = api.post(f"/patients/{pid}/verification", {"method": "external"})
    assert r.status_code == 201, r.text
    assert (r.json()["status"], r.json()["current"]["checker"]) == ("verified", "http")
    assert api.post(f"/patients/{other}/verification", {"method": "external"}).json()["status"] == "mismatch"
    assert [s["auth"] for s in checker] == ["Bearer secret-token"] * 2
    assert [s["id_number"] for s in checker] == [ID_NUMBER, "110101199003075678"]
    no_id = api.enrol()
    error(api.post(f"/patients/{no_id}/verification", {"method": "external"}), 409, "identity.no_id_number")


def test_duplicates_over_http(api: Api) -> None:
    desk = staff_token(api, "desk2")
    a = api.enrol(id_number=ID_NUMBER)
    b = api.enrol(id_number=ID_NUMBER)
    r = api.get("/duplicates", key=desk)
    assert r.status_code == 200, r.text
    [item] = r.json()["items"]
    assert sorted(item["patient_ids"]) == sorted([a, b])
    assert item["reason"] == "national_id"
    assert all(ID_NUMBER not in json.dumps(p) and p["name"] != "张三丰" for p in item["patients"])
    r = api.post(f"/duplicates/{item['id']}/dismiss", {"note": "核实为两人"}, key=desk)
    assert (r.status_code, r.json()["status"]) == (200, "dismissed")
    error(api.post(f"/duplicates/{item['id']}/dismiss", None, key=desk), 409, "identity.candidate_closed")
    error(api.post(f"/duplicates/{UNKNOWN}/dismiss", None, key=desk), 404, "identity.candidate_not_found")
    assert api.get("/duplicates", key=desk).json()["items"] == []
    assert len(api.get("/duplicates?status=dismissed", key=desk).json()["items"]) == 1
    assert api.get("/duplicates?status=bogus", key=desk).status_code == 422
    error(api.get("/duplicates", key=staff_token(api, "nurse2", "nurse")), 403, "auth.forbidden")


def test_status_over_http(api: Api) -> None:
    desk = staff_token(api, "desk3")
    pid = api.enrol()
    r = api.post(f"/patients/{pid}/status", {"status": "closed", "reason_code": "patient_request"}, key=desk)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["changed"], r.json()["outcome"]["points_expired"]) == ("closed", True, 100)
    assert api.get(f"/patients/{pid}").json()["status"] == "closed"
    assert api.balance(pid) == 0
    again = api.post(f"/patients/{pid}/status", {"status": "closed", "reason_code": "patient_request"}, key=desk)
    assert again.json()["changed"] is False
    assert api.post(f"/patients/{pid}/status", {"status": "active", "reason_code": "patient_request"},
                    key=desk).json()["status"] == "active"
    dead = api.enrol()
    api.post(f"/patients/{dead}/status", {"status": "deceased", "reason_code": "death_reported"}, key=desk)
    error(api.post(f"/patients/{dead}/status", {"status": "active", "reason_code": "recorded_in_error"}, key=desk),
          409, "patients.deceased_final")
    r = api.post(f"/patients/{dead}/status", {"status": "active", "reason_code": "recorded_in_error"})  # admin key
    assert (r.status_code, r.json()["status"]) == (200, "active")
    error(api.post(f"/patients/{UNKNOWN}/status", {"status": "closed", "reason_code": "x"}, key=desk), 404,
          "patients.not_found")
    assert api.post(f"/patients/{pid}/status", {"status": "merged", "reason_code": "x"}, key=desk).status_code == 422
    assert api.post(f"/patients/{pid}/status", {"status": "closed", "reason_code": "Free Text!"},
                    key=desk).status_code == 422
    error(api.post(f"/patients/{pid}/status", {"status": "closed", "reason_code": "x"},
                   key=staff_token(api, "nurse3", "nurse")), 403, "auth.forbidden")
    token, _ttl = otp.patient_token(pid, utc_now(), get_settings())
    error(api.post(f"/patients/{pid}/status", {"status": "closed", "reason_code": "x"}, key=token), 403,
          "auth.forbidden")


def test_a_merge_closes_the_candidate(api: Api) -> None:
    a = api.enrol(id_number=ID_NUMBER)
    b = api.enrol(id_number=ID_NUMBER)
    [item] = api.get("/duplicates").json()["items"]
    r = api.post(f"/patients/{a}/merge", {"duplicate_id": b, "reason_code": "duplicate_registration"})
    assert r.status_code == 200, r.text
    assert api.get("/duplicates").json()["items"] == []
    [merged] = api.get("/duplicates?status=merged").json()["items"]
    assert (merged["id"], merged["status"]) == (item["id"], "merged")
    error(api.post(f"/duplicates/{item['id']}/dismiss"), 409, "identity.candidate_closed")
    error(api.post(f"/patients/{b}/status", {"status": "closed", "reason_code": "x"}), 409,
          "patients.status_transition")
