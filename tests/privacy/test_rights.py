"""The data download and erasure over HTTP (PIPL): the export holds the patient's records and
nobody else's; erasure shreds the PII, keeps the ledger's amounts (and `ledger verify`),
cancels future bookings, releases holds, stops messages and earning, and is idempotent."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from carepoints.audit.models import AuditEntry
from carepoints.kit.db import read_tx, table, write_tx
from carepoints.ledger import service as ledger
from carepoints.patients.models import Patient
from tests.helpers import assert_ledger_intact, error, event
from tests.notifications.kit import enqueue, inbox_rows, run
from tests.scheduling.test_endpoints import ahead, book, hospital, new_session

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]

UNKNOWN = "0190a5f0-0000-7000-8000-000000000000"
EXTERNAL = {"system": "urn:his:mrn", "value": "MRN-7788"}


def export(api: Api, pid: str, key: str | None = None) -> dict[str, Any]:
    r = api.get(f"/patients/{pid}/export", key=key)
    assert r.status_code == 200, r.text
    assert "attachment" in r.headers["content-disposition"]
    return dict(r.json())


def erase(api: Api, pid: str, **body: Any) -> Any:
    return api.post(f"/patients/{pid}/erasure", body or None)


def audited(pid: str, action: str) -> list[dict[str, Any]]:
    log = table(AuditEntry)
    with read_tx() as session:
        return [dict(r) for r in session.connection().execute(
            select(log).where(log.c.patient_id == pid, log.c.action == action)).mappings()]


def with_history(api: Api) -> tuple[str, str, dict[str, str]]:
    """A patient with an external id, a reading, an appointment next week and a message;
    and another patient with records of their own."""
    pid = api.enrol(name="李小龙", phone="13912345678", external_ids=[EXTERNAL])
    other = api.enrol(name="王五", phone="13787654321")
    at = api.now() - timedelta(minutes=10)
    for who in (pid, other):
        r = api.post(f"/patients/{who}/measurements", {"kind": "blood_pressure", "systolic": 128, "diastolic": 82,
                                                        "provenance": "device", "taken_at": at.isoformat()})
        assert r.status_code == 201, r.text
        api.send(event(who, "selfservice.used", at, {"action": "pay"}))
    ids = hospital(api)
    sess = new_session(api, ids["wang"], ahead(api, 7))
    appt = book(api, pid, sess["id"])
    book(api, other, sess["id"], key="k2")
    run(api.now())
    return pid, other, {"appointment": appt["id"], "session": sess["id"]}


# --- download -------------------------------------------------------------------------------

def test_the_export_holds_the_patients_records_and_no_one_elses(api: Api) -> None:
    pid, other, refs = with_history(api)
    doc = export(api, pid)
    assert doc["patient_id"] == pid
    assert doc["profile"]["name"] == "李小龙"  # the admin key may read PII
    assert doc["profile"]["phone"] == "13912345678"
    assert doc["external_ids"] == [EXTERNAL]
    assert {c["purpose"] for c in doc["consents"]} == {"points_programme", "health_data"}
    assert {e["type"] for e in doc["events"]} >= {"account.registered", "health.measurement", "selfservice.used",
                                                  "appointment.booked"}
    reading = next(e for e in doc["events"] if e["type"] == "health.measurement")
    assert reading["attributes"]["systolic"] == 128
    assert doc["points"]["summary"]["balance"] == api.balance(pid)
    assert sum(e["points"] for e in doc["points"]["entries"]) == api.balance(pid)
    assert doc["points"]["entries"][0]["balance_after"] == api.balance(pid)  # newest first
    assert [a["id"] for a in doc["appointments"]] == [refs["appointment"]]
    assert [m["systolic"] for m in doc["measurements"]] == [128]
    assert doc["messages"]
    assert all(m["refs"].get("patient_id") in (pid, None) for m in doc["messages"])
    for section in ("household", "proxies", "care_alerts", "followup_responses", "medication_plans"):
        assert section in doc
    text = api.get(f"/patients/{pid}/export").text
    assert other not in text  # nothing of the other patient, not even their id
    assert "王五" not in text
    assert "13787654321" not in text
    [row] = audited(pid, "patients:privacy:export")[:1]
    assert row["details"]["unmasked"] is True
    assert "李小龙" not in str(row["details"])


def test_the_export_is_masked_for_callers_without_pii_read(api: Api) -> None:
    pid = api.enrol(name="李小龙", phone="13912345678")
    his = api.make_key("integration", "his")
    doc = export(api, pid, key=his)
    assert doc["profile"]["name"] == "李**"
    assert doc["profile"]["phone"] == "139****5678"
    error(api.get(f"/patients/{UNKNOWN}/export"), 404, "patients.not_found")


# --- erasure --------------------------------------------------------------------------------

def test_erasure_shreds_pii_keeps_the_ledger_and_stops_everything(api: Api) -> None:
    pid, other, refs = with_history(api)
    balance = api.balance(pid)
    entries = api.entries(pid)
    proxy = api.post(f"/patients/{other}/proxies", {"proxy": {"patient_id": pid}, "scopes": ["view"]})
    assert proxy.status_code == 201, proxy.text
    with write_tx() as session:
        hold = ledger.hold(session, ledger.wallet_of(session, pid), 50, api.now(), ttl=timedelta(hours=1))
    r = erase(api, pid, reason="patient_request")
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["duplicate"] is False
    assert doc["status"] == "erased"
    outcome = doc["outcome"]
    assert outcome["consents_withdrawn"] == 2
    assert outcome["scheduling.appointments_cancelled"] == 1
    assert outcome["holds_released"] == 1
    assert outcome["external_ids_removed"] == 1
    assert outcome["proxies_revoked"] == 1
    assert api.get(f"/patients/{other}/proxies").json()["items"][0]["revoked_at"]
    # PII: unreadable, for everyone
    person = api.get(f"/patients/{pid}")
    assert person.status_code == 200, person.text
    assert "李小龙" not in person.text
    assert "13912345678" not in person.text
    assert person.json()["status"] == "erased"
    p = table(Patient)
    with read_tx() as session:
        row = session.connection().execute(select(p).where(p.c.id == pid)).mappings().one()
        assert row["name_enc"] is None
        assert row["idempotency_key"] is None
        assert ledger.holds(session, [hold["id"]])[hold["id"]]["status"] == "expired"
    # the ledger: amounts kept, chains intact
    assert api.balance(pid) == balance
    assert [e["points"] for e in api.entries(pid)] == [e["points"] for e in entries]
    assert_ledger_intact()
    # the external id is gone: an event naming it no longer finds the patient
    ref_ev = {**event(pid, "selfservice.used", api.now(), {"action": "pay"}), "patient": EXTERNAL}
    error(api.post("/events", ref_ev), 404, "patients.not_found")
    # the appointment was cancelled by the hospital, the other patient's stays
    appt = api.get(f"/appointments/{refs['appointment']}").json()
    assert (appt["status"], appt["cancelled_by"]) == ("cancelled", "hospital")
    # no more earning, no more messages, no consent grants
    out = api.send(event(pid, "selfservice.used", api.now(), {"action": "print_report"}))
    assert out["awards"] == []
    assert api.balance(pid) == balance
    before = len(inbox_rows(recipient_id=pid))
    enqueue(api.now(), "appointment.cancelled_by_hospital", {"patient_id": pid, "appointment_id": UNKNOWN})
    enqueue(api.now(), "points.changed", {"patient_id": pid, "points": 10, "balance": 10})
    run(api.now())
    assert len(inbox_rows(recipient_id=pid)) == before
    error(api.post(f"/patients/{pid}/consents", {"purpose": "points_programme", "version": "3"}), 409,
          "patients.erased")
    # the other patient is untouched
    assert api.get(f"/patients/{other}").json()["status"] == "active"
    [row_audit] = audited(pid, "patients:privacy:erase")
    assert row_audit["details"]["reason"] == "patient_request"
    assert "李小龙" not in str(row_audit["details"])


def test_erasure_is_idempotent_and_validates_its_input(api: Api) -> None:
    pid = api.enrol()
    first = erase(api, pid)
    assert first.status_code == 200, first.text
    again = erase(api, pid)
    assert again.status_code == 200, again.text
    assert again.json()["duplicate"] is True
    assert again.json()["outcome"] == first.json()["outcome"]
    assert again.json()["erased_at"] == first.json()["erased_at"]
    assert len(audited(pid, "patients:privacy:erase")) == 1
    error(erase(api, pid, reason="Free text with a name 张三"), 422, "request.invalid")
    error(erase(api, UNKNOWN), 404, "patients.not_found")
    doc = export(api, pid)  # the download still answers, with the erasure recorded
    assert doc["profile"]["status"] == "erased"
    assert doc["erasure"]["outcome"] == first.json()["outcome"]
    assert_ledger_intact()


def test_frontdesk_may_erase_integration_may_not(api: Api) -> None:
    pid = api.enrol()
    his = api.make_key("integration", "his")
    error(api.post(f"/patients/{pid}/erasure", None, key=his), 403, "auth.forbidden")
    api.make_staff("desk1", "pw-123456789", "frontdesk")
    token = api.post("/auth/token", {"username": "desk1", "password": "pw-123456789"}).json()["access_token"]
    r = api.post(f"/patients/{pid}/erasure", {"reason": "patient_request"}, key=token)
    assert r.status_code == 200, r.text
