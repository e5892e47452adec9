"""Real-name verification (enrolment.identity): desk documents, the external check adapters
(the http one against a stub server on loopback), the status and its audit trail."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from carepoints.audit import service as audit
from carepoints.audit.service import Actor
from carepoints.enrolment import closure, identity
from carepoints.enrolment.errors import (
    CheckerFailedError,
    CheckerUnavailableError,
    DocumentKindRequiredError,
    NoIdNumberError,
    PatientInactiveError,
)
from carepoints.kit.db import read_tx, write_tx
from carepoints.patients.errors import PatientNotFoundError
from tests.conftest import Db
from tests.helpers import enrol

DESK = Actor("staff", "0190a5f0-0000-7000-8000-0000000000d1", "frontdesk")
ID_NUMBER = "110101199003077777"
TOKEN = "stub-token-1"


class Stub:
    """A loopback identity service: answers per id number, records what it was sent."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[int, bytes]] = {}
        self.seen: list[tuple[str, dict[str, Any]]] = []
        self.delay = 0.0
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.seen.append((self.headers.get("Authorization", ""), body))
                if stub.delay:
                    threading.Event().wait(stub.delay)
                status, payload = stub.answers.get(body.get("id_number"), (200, b'{"result": "mismatch"}'))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *_args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/check"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub() -> Iterator[Stub]:
    s = Stub()
    yield s
    s.close()


def verify_desk(pid: str, now: datetime, kind: str | None = "resident_id") -> dict[str, Any]:
    with write_tx() as session:
        return identity.record(session, pid, identity.DESK, DESK, now, document_kind=kind)


def verify_external(pid: str, now: datetime, checker: identity.Checker) -> dict[str, Any]:
    with read_tx() as session:
        person = identity.subject(session, pid)
    outcome = identity.run_check(checker, person)
    with write_tx() as session:
        return identity.record(session, pid, identity.EXTERNAL, DESK, now, outcome=outcome, checker=checker.name)


def test_desk_verification_and_its_history(db: Db, now: datetime) -> None:
    pid = enrol(now)
    with read_tx() as session:
        assert identity.verification(session, pid)["status"] == "unverified"
    doc = verify_desk(pid, now, "passport")
    assert doc["status"] == "verified"
    assert doc["current"]["method"] == "desk_document"
    assert doc["current"]["document_kind"] == "passport"
    assert doc["current"]["actor"] == {"kind": "staff", "id": DESK.id}
    with pytest.raises(DocumentKindRequiredError):
        verify_desk(pid, now, None)
    again = verify_desk(pid, now + timedelta(minutes=1), "resident_id")
    assert [h["document_kind"] for h in again["history"]] == ["resident_id", "passport"]
    with read_tx() as session:
        trail = audit.entries(session, patient_id=pid, action="patients:identity:verify")
        assert identity.status_of(session, [pid, "0190a5f0-0000-7000-8000-000000000000"]) == {
            pid: "verified", "0190a5f0-0000-7000-8000-000000000000": "unverified"}
    assert len(trail) == 2


def test_no_checker_refuses(db: Db, now: datetime) -> None:
    pid = enrol(now, id_number=ID_NUMBER)
    with pytest.raises(CheckerUnavailableError) as exc:
        verify_external(pid, now, identity.NoChecker())
    assert exc.value.status_code == 409
    assert identity.configured_checker().name == "none"


def test_http_checker_against_a_stub(db: Db, now: datetime, stub: Stub) -> None:
    pid = enrol(now, id_number=ID_NUMBER)
    checker = identity.HttpChecker(stub.url, TOKEN, 2.0)
    stub.answers[ID_NUMBER] = (200, b'{"result": "verified"}')
    doc = verify_external(pid, now, checker)
    assert (doc["status"], doc["current"]["method"], doc["current"]["checker"]) == ("verified", "external", "http")
    assert stub.seen == [(f"Bearer {TOKEN}", {"name": "测试患者", "id_number": ID_NUMBER})]
    stub.answers[ID_NUMBER] = (200, b'{"result": "mismatch"}')
    assert verify_external(pid, now + timedelta(minutes=1), checker)["status"] == "mismatch"
    for answer in ((500, b"{}"), (200, b"not json"), (200, b'{"result": "maybe"}'), (200, b"[]")):
        stub.answers[ID_NUMBER] = answer
        with pytest.raises(CheckerFailedError):
            verify_external(pid, now, checker)
    with read_tx() as session:
        assert len(identity.verification(session, pid)["history"]) == 2


def test_http_checker_times_out_and_unreachable(stub: Stub) -> None:
    stub.delay = 1.0
    with pytest.raises(CheckerFailedError):
        identity.HttpChecker(stub.url, TOKEN, 0.2).check("某人", ID_NUMBER)
    with pytest.raises(CheckerFailedError):
        identity.HttpChecker("http://127.0.0.1:9/none", TOKEN, 0.5).check("某人", ID_NUMBER)


def test_who_can_be_verified(db: Db, now: datetime) -> None:
    with pytest.raises(PatientNotFoundError):
        verify_desk("0190a5f0-0000-7000-8000-000000000000", now)
    no_id = enrol(now)
    with read_tx() as session, pytest.raises(NoIdNumberError):
        identity.subject(session, no_id)
    closed = enrol(now, id_number="110101199003070000")
    with write_tx() as session:
        closure.change_status(session, closed, "closed", "patient_request", DESK, now)
    with pytest.raises(PatientInactiveError):
        verify_desk(closed, now)
