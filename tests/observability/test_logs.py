"""Request ids, the access log, the JSON line shape, and no PII in any log line."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING

import orjson
import pytest
from fastapi.testclient import TestClient
from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from carepoints.kit import logs
from carepoints.kit.ids import is_id, new_id
from carepoints.kit.requests import REQUEST_ID, RequestContext, accept_request_id
from tests.helpers import bp, event

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]

JSON_KEYS = {"ts", "level", "logger", "msg", "request_id"}
CLIENT_LOGGERS = ("httpx", "httpcore")  # the test's own HTTP client logs the URLs it calls


@pytest.fixture
def json_logs() -> Iterator[None]:
    """Our handler in JSON (as `serve` has it); afterwards as the test settings make it."""
    logs.configure("info", "json")
    yield
    logs.configure("info", "json")


def test_a_valid_incoming_request_id_is_kept_and_echoed(api: Api) -> None:
    for rid in ("lb-42.a_b", "A" * 64, new_id()):
        r = api.get("/healthz", auth=False, headers={"X-Request-Id": rid})
        assert r.headers["x-request-id"] == rid
    pid = api.enrol()
    r = api.post("/events", event(pid, "health.measurement", api.now() - timedelta(hours=1), bp()),
                 headers={"X-Request-Id": "his-batch-7"})  # the fast path
    assert r.status_code == 201, r.text
    assert r.headers["x-request-id"] == "his-batch-7"


def test_a_missing_or_invalid_request_id_is_replaced_by_a_new_one(api: Api) -> None:
    seen = set()
    for headers in ({}, {"X-Request-Id": "A" * 65}, {"X-Request-Id": "has space"}, {"X-Request-Id": "a;b"},
                    {"X-Request-Id": "a/b"}, {"X-Request-Id": ""}):
        for path in ("/healthz", "/api/v1/events"):
            r = api.post(path, b"{", headers=headers) if path.endswith("events") else api.get(path, headers=headers)
            rid = r.headers["x-request-id"]
            assert is_id(rid), (headers, rid)
            seen.add(rid)
    assert len(seen) == 12  # a new one each time
    assert accept_request_id(b"ok-1") == "ok-1"
    assert is_id(accept_request_id(None))


def test_inner_middleware_and_code_see_the_request_id() -> None:
    seen: dict[str, object] = {}

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen["state"] = scope["state"]["request_id"]
        seen["var"] = REQUEST_ID.get()
        await PlainTextResponse("ok")(scope, receive, send)

    client = TestClient(RequestContext(inner))
    r = client.get("/anything", headers={"X-Request-Id": "trace-9"})
    assert r.status_code == 200
    assert r.headers["x-request-id"] == "trace-9"
    assert seen == {"state": "trace-9", "var": "trace-9"}
    assert REQUEST_ID.get() is None


def _access(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "carepoints.access"]


def test_one_access_line_per_request_with_the_route_template(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="carepoints.access")
    pid = api.enrol()
    caplog.clear()
    r = api.get(f"/patients/{pid}?phone=13800001111&q=x", headers={"X-Request-Id": "acc-1"})
    assert r.status_code == 200, r.text
    (line,) = _access(caplog)
    assert line.levelno == logging.INFO
    assert (line.method, line.route, line.status, line.request_id) == (  # type: ignore[attr-defined]
        "GET", "/api/v1/patients/{patient_id}", 200, "acc-1")
    assert line.duration_ms >= 0  # type: ignore[attr-defined]
    formatted = logs.JsonFormatter().format(line)
    assert pid not in formatted
    assert "13800001111" not in formatted
    assert "q=x" not in formatted

    caplog.clear()
    r = api.post("/events", event(pid, "health.measurement", api.now() - timedelta(hours=1), bp()))
    assert r.status_code == 201
    (line,) = _access(caplog)
    assert (line.method, line.route, line.status) == ("POST", "/api/v1/events", 201)  # type: ignore[attr-defined]
    assert line.request_id == r.headers["x-request-id"]  # type: ignore[attr-defined]

    caplog.clear()
    api.get("/nothing/here")
    (line,) = _access(caplog)
    assert (line.route, line.status) == ("other", 404)  # type: ignore[attr-defined]


def test_json_lines_have_the_documented_shape(json_logs: None, capsys: pytest.CaptureFixture[str]) -> None:
    log = logging.getLogger("carepoints.test")
    token = REQUEST_ID.set("rid-1")
    try:
        log.info("accepted %d events", 3, extra={"batch_id": "b-1", "count": 3})
        secret = "".join(("139", "0000", "1111"))  # a value the source lines do not show
        try:
            raise ValueError(f"Failing row contains ({secret})")
        except ValueError:
            log.exception("ingest failed")
    finally:
        REQUEST_ID.reset(token)
    log.warning("outside any request")
    lines = [orjson.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]
    ours = [d for d in lines if d["logger"] == "carepoints.test"]
    assert len(ours) == 3
    first, failed, outside = ours
    assert set(first) == JSON_KEYS | {"batch_id", "count"}
    assert first["msg"] == "accepted 3 events"
    assert (first["level"], first["request_id"], first["batch_id"], first["count"]) == ("info", "rid-1", "b-1", 3)
    assert first["ts"].endswith("Z")
    assert failed["level"] == "error"
    assert failed["exc_type"] == "ValueError"
    assert "test_json_lines_have_the_documented_shape" in failed["trace"]
    assert "13900001111" not in orjson.dumps(failed).decode()  # an exception's message never
    assert outside["request_id"] is None
    assert outside["level"] == "warning"


def test_text_lines_carry_the_request_id(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("info", "text")
    try:
        token = REQUEST_ID.set("rid-2")
        try:
            logging.getLogger("carepoints.test").info("hello")
        finally:
            REQUEST_ID.reset(token)
        logging.getLogger("carepoints.test").info("bye")
    finally:
        logs.configure("info", "json")
    err = capsys.readouterr().err
    assert "carepoints.test [rid-2] hello" in err
    assert "carepoints.test [-] bye" in err
    assert "INFO" in err


def test_no_name_or_phone_in_any_log_line(api: Api, json_logs: None, caplog: pytest.LogCaptureFixture,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    name, phone, id_number = "欧阳晓测", "13912345678", "110101199003071234"
    body = api.patient_body(name=name, phone=phone, id_number=id_number, idempotency_key="pii-log-1",
                            external_ids=[{"system": "urn:his:mrn", "value": "MRN-PII-1"}])
    r = api.post("/patients", body)
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    # requests that succeed
    assert api.post("/patients", body).status_code == 200  # the same idempotency key: the same patient
    assert api.get(f"/patients/{pid}").status_code == 200
    assert api.get(f"/patients/{pid}/points").status_code == 200
    api.send(event(pid, "health.measurement", api.now() - timedelta(hours=1), bp()))
    api.send({**event(pid, "selfservice.used", api.now() - timedelta(hours=1), {"action": "pay"}),
              "patient": {"system": "urn:his:mrn", "value": "MRN-PII-1"}})
    # requests that fail
    failures = [
        api.post("/patients", {**body, "phone": f"x{phone}", "idempotency_key": "pii-log-2"}),
        api.post("/patients", {"name": name, "phone": phone}),
        api.get(f"/patients/{phone}"),
        api.get(f"/patients?phone={phone}&name={name}"),
        api.post("/events", {**event(pid, "health.measurement", api.now(), bp()),
                             "patient": {"system": "urn:his:phone", "value": phone}}),
        api.post("/events", f'{{"name": "{name}", "phone": "{phone}"'.encode()),
        api.post("/events", {"events": [{"type": "selfservice.used", "patient": {"name": name, "phone": phone}}]}),
        api.post("/patients", body, key="not-a-key"),
        api.get(f"/no/such/page/{phone}"),
    ]
    assert all(400 <= f.status_code < 500 or f.status_code == 200 for f in failures), \
        [f.status_code for f in failures]
    assert sum(f.status_code >= 400 for f in failures) >= 7  # a search and a batch of bad items answer 200
    records = [r for r in caplog.records if not r.name.startswith(CLIENT_LOGGERS)]
    assert any(r.name == "carepoints.access" for r in records)
    blobs = [logs.JsonFormatter().format(r) for r in records]
    blobs += [logs.TextFormatter().format(r) for r in records]
    written = [orjson.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]
    written = [d for d in written if not d["logger"].startswith(CLIENT_LOGGERS)]
    assert any(d["logger"] == "carepoints.access" for d in written)  # what our handler really wrote
    blobs += [orjson.dumps(d).decode() for d in written]
    for blob in blobs:
        for secret in (name, phone, id_number, "MRN-PII-1"):
            assert secret not in blob, blob
