"""FHIR R4 scheduling through a real HTTP server, driven by the `fhirclient` library
as an outside client would (CapabilityStatement, Schedule and Slot search, $book,
Appointment read), plus the error shape (OperationOutcome) over plain HTTP."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import uvicorn
from fhirclient import client
from fhirclient.models.appointment import Appointment
from fhirclient.models.schedule import Schedule
from fhirclient.models.slot import Slot
from fhirclient.server import FHIRNotFoundException, FHIRServer

from carepoints.app import create_asgi
from carepoints.kit.db import write_tx
from carepoints.kit.time import utc_now
from carepoints.scheduling import service as sch
from carepoints.scheduling.schemas import (
    ClinicianCreate,
    DepartmentCreate,
    InstitutionCreate,
    SessionCancel,
    SessionCreate,
)
from tests.api_client import make_key, patient_body
from tests.conftest import Db
from tests.helpers import enrol

CST = ZoneInfo("Asia/Shanghai")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    def __init__(self, base: str, key: str, session_id: str, clinician: str) -> None:
        self.base, self.key, self.session_id, self.clinician = base, key, session_id, clinician

    def smart(self) -> FHIRServer:
        fc = client.FHIRClient(settings={"app_id": "carepoints-test", "api_base": self.base})
        fc.server.session.headers["Authorization"] = f"Bearer {self.key}"
        return fc.server

    def post(self, path: str, doc: Any, key: str | None = None, **headers: str) -> httpx.Response:
        auth = {"Authorization": f"Bearer {key or self.key}"} if (key or self.key) else {}
        return httpx.post(f"{self.base}/{path}", json=doc, headers={**auth, **headers}, timeout=30)


@pytest.fixture
def served(db: Db) -> Iterator[Served]:
    """carepoints on a real port (uvicorn in a thread) with one clinician's session 3 days ahead."""
    now = utc_now()
    day = (now + timedelta(days=3)).astimezone(CST).date()
    with write_tx() as s:
        inst = sch.create_institution(s, InstitutionCreate(code="h", name_zh="医院"), now)
        dep = sch.create_department(s, DepartmentCreate(institution_id=inst["id"], code="c", name_zh="心内科"), now)
        doc = sch.create_clinician(s, ClinicianCreate(department_id=dep["id"], code="d", name="王医生"), now)
        sess = sch.create_session(s, SessionCreate.model_validate({
            "clinician_id": doc["id"], "date": day.isoformat(), "start": "08:00", "end": "09:00", "slot_minutes": 10,
            "fee_cny": "15", "release_at": (now - timedelta(hours=1)).isoformat(), "referral_share": "0"}), now)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_asgi(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    try:
        yield Served(f"http://127.0.0.1:{port}/fhir", make_key("integration"), sess["id"], doc["id"])
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def free_slots(served: Served, **extra: str) -> list[Slot]:
    struct = {"schedule": f"Schedule/{served.clinician}", "status": "free", **extra}
    return list(Slot.where(struct=struct).perform_resources_iter(served.smart()))


def test_capability_statement(served: Served) -> None:
    fc = client.FHIRClient(settings={"app_id": "t", "api_base": served.base})
    fc.prepare()
    cap = fc.server.capabilityStatement
    assert cap.fhirVersion == "4.0.1"
    by_type = {r.type: r for r in cap.rest[0].resource}
    assert {"Schedule", "Slot", "Appointment"} <= by_type.keys()
    assert [p.name for p in by_type["Slot"].searchParam] == ["schedule", "status", "start", "_count"]
    assert by_type["Appointment"].operation[0].name == "book"


def test_schedule_and_slot_search(served: Served) -> None:
    schedules = list(Schedule.where(struct={}).perform_resources_iter(served.smart()))
    assert [s.id for s in schedules] == [served.clinician]
    assert schedules[0].actor[0].reference == f"Practitioner/{served.clinician}"
    slots = free_slots(served)
    assert len(slots) == 6
    assert [s.identifier[0].value for s in slots] == ["1", "2", "3", "4", "5", "6"]
    assert slots[0].start.datetime < slots[1].start.datetime
    assert {s.comment for s in slots} == {"online", "onsite"}
    later = free_slots(served, start=f"ge{slots[3].start.isostring}")
    assert [s.id for s in later] == [s.id for s in slots[3:]]
    day = slots[0].start.datetime.astimezone(CST).date().isoformat()
    assert len(free_slots(served, start=day)) == 6  # a date: that local day
    assert free_slots(served, start=f"lt{slots[0].start.isostring}") == []
    assert list(Slot.where(struct={"schedule": "Schedule/not-an-id"}).perform_resources_iter(served.smart())) == []


def test_book_a_slot_with_parameters_and_read_the_appointment(served: Served) -> None:
    pid = enrol(utc_now())
    slot = free_slots(served)[2]
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "slot", "valueReference": {"reference": f"Slot/{slot.id}"}},
        {"name": "patient", "valueReference": {"reference": f"Patient/{pid}"}}]}
    r = served.post("Appointment/$book", body, **{"Content-Type": "application/fhir+json"})
    assert r.status_code == 201, r.text
    assert r.headers["content-type"].startswith("application/fhir+json")
    doc = r.json()
    assert r.headers["location"].endswith(f"/Appointment/{doc['id']}")
    appt = Appointment.read(doc["id"], served.smart())
    assert appt.status == "booked"
    assert appt.slot[0].reference == f"Slot/{slot.id}"
    assert {p.actor.reference for p in appt.participant} == {f"Patient/{pid}", f"Practitioner/{served.clinician}"}
    assert appt.start.datetime == slot.start.datetime
    again = served.post("Appointment/$book", body)  # the same slot and patient: the same booking
    assert again.status_code == 200
    assert again.json()["id"] == doc["id"]
    assert slot.id not in {s.id for s in free_slots(served)}
    busy = list(Slot.where(struct={"schedule": served.clinician, "status": "busy"})
                .perform_resources_iter(served.smart()))
    assert [s.id for s in busy] == [slot.id]


def test_book_with_an_appointment_naming_a_patient_by_identifier(served: Served) -> None:
    admin = make_key("admin")
    r = httpx.post(served.base.replace("/fhir", "/api/v1/patients"), timeout=30, headers={
        "Authorization": f"Bearer {admin}"}, json=patient_body(external_ids=[{"system": "urn:his:mrn", "value": "M1"}]))
    assert r.status_code == 201
    slot = free_slots(served)[1]  # seq 2: the onsite pool, so the booking goes through that channel
    body = {"resourceType": "Appointment", "status": "proposed", "slot": [{"reference": f"Slot/{slot.id}"}],
            "participant": [{"actor": {"identifier": {"system": "urn:his:mrn", "value": "M1"}, "type": "Patient"},
                             "status": "needs-action"}]}
    res = served.post("Appointment/$book", body, **{"X-Idempotency-Key": "his-123"})
    assert res.status_code == 201, res.text
    assert res.json()["identifier"][0]["value"] == "2"
    taken = served.post("Appointment/$book", {**body, "participant": [
        {"actor": {"reference": f"Patient/{enrol(utc_now())}"}, "status": "needs-action"}]})
    assert taken.status_code == 409
    oo = taken.json()
    assert oo["resourceType"] == "OperationOutcome"
    assert oo["issue"][0]["code"] == "conflict"
    assert oo["issue"][0]["diagnostics"] == "scheduling.slot_taken"


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"resourceType": "Patient"}, 422, "request.invalid"),
    ({"resourceType": "Appointment", "status": "fulfilled", "participant": []}, 422, "request.invalid"),
    ({"resourceType": "Appointment", "status": "booked", "slot": [{"reference": "Slot/x"}],
      "participant": [{"actor": {"reference": "Patient/y"}, "status": "accepted"}]}, 404, "scheduling.slot_not_found"),
    ({"resourceType": "Parameters", "parameter": [{"name": "slot", "valueString": 1}]}, 422, "request.invalid"),
    ([1, 2], 422, "request.invalid"),
])
def test_bad_book_requests_answer_operation_outcome(served: Served, body: Any, status: int, code: str) -> None:
    r = served.post("Appointment/$book", body)
    assert r.status_code == status, r.text
    issue = r.json()["issue"][0]
    assert (issue["severity"], issue["diagnostics"]) == ("error", code)


def test_errors_and_auth(served: Served) -> None:
    r = httpx.get(f"{served.base}/Slot", timeout=30)
    assert r.status_code == 401
    assert r.json()["issue"][0]["code"] == "login"
    assert r.headers["www-authenticate"] == "Bearer"
    with pytest.raises(FHIRNotFoundException):
        Appointment.read("01a23366-9d4a-76c5-aea2-cba491733e7b", served.smart())
    bad = httpx.get(f"{served.base}/Slot?start=ge2026-13-45", headers={"Authorization": f"Bearer {served.key}"})
    assert bad.status_code == 422
    assert bad.json()["issue"][0]["expression"] == ["start"]
    bad = httpx.get(f"{served.base}/Slot?status=open", headers={"Authorization": f"Bearer {served.key}"})
    assert bad.status_code == 422


def test_a_cancelled_session_shows_busy_unavailable(served: Served) -> None:
    with write_tx() as s:
        sch.cancel_session(s, served.session_id, SessionCancel(reason="停诊"), datetime.now(UTC))
    assert free_slots(served) == []
    gone = list(Slot.where(struct={"schedule": served.clinician, "status": "busy-unavailable"})
                .perform_resources_iter(served.smart()))
    assert len(gone) == 6
