"""Consent per purpose over HTTP (PIPL): grant, withdraw, history, the guardian rule for a
child under 14, and what each withdrawal stops (points, health processing, messages)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from carepoints.audit.models import AuditEntry
from carepoints.engagement.care.models import CareAlert
from carepoints.engagement.health.models import HealthMeasurement
from carepoints.enrolment import privacy
from carepoints.kit.db import read_tx, table
from carepoints.notifications.dispatch import essential
from tests.helpers import error, event
from tests.notifications.kit import enqueue, inbox_rows, run

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]

UNKNOWN = "0190a5f0-0000-7000-8000-000000000000"


def grant(api: Api, pid: str, purpose: str, version: str = "2.0", key: str | None = None, **extra: Any) -> Any:
    return api.post(f"/patients/{pid}/consents", {"purpose": purpose, "version": version, **extra}, key=key)


def withdraw(api: Api, pid: str, purpose: str) -> Any:
    return api.request("DELETE", f"/patients/{pid}/consents/{purpose}")


def state(api: Api, pid: str) -> dict[str, Any]:
    r = api.get(f"/patients/{pid}/consents")
    assert r.status_code == 200, r.text
    return dict(r.json())


def granted(api: Api, pid: str) -> dict[str, bool]:
    return {c["purpose"]: c["granted"] for c in state(api, pid)["current"]}


def audit_actions(pid: str) -> list[str]:
    log = table(AuditEntry)
    with read_tx() as session:
        return [r[0] for r in session.connection().execute(
            select(log.c.action).where(log.c.patient_id == pid).order_by(log.c.at, log.c.id))]


def child_birth(api: Api, years: int) -> str:
    today = api.now().date()
    return date(today.year - years, today.month, 1).isoformat()


def bp_event(pid: str, at: datetime, key: str | None = None) -> dict[str, Any]:
    return event(pid, "health.measurement", at, {"kind": "blood_pressure", "systolic": 190, "diastolic": 115,
                                                 "provenance": "device"}, key=key, source="his")


# --- grant, withdraw, history ---------------------------------------------------------------

def test_grant_withdraw_and_history(api: Api) -> None:
    pid = api.enrol()  # consent 1.0 without purposes: points programme + health data
    assert granted(api, pid) == {"points_programme": True, "health_data": True, "notifications": False,
                                 "research": False}
    r = grant(api, pid, "research", "1.0")
    assert r.status_code == 201, r.text
    doc = r.json()
    assert (doc["purpose"], doc["version"], doc["source"], doc["withdrawn_at"]) == ("research", "1.0", "patient", None)
    again = grant(api, pid, "research", "1.0")  # the same purpose and version: the active grant
    assert again.status_code == 200, again.text
    assert again.json()["id"] == doc["id"]
    newer = grant(api, pid, "research", "1.1")  # another version supersedes
    assert newer.status_code == 201, newer.text
    history = state(api, pid)["history"]
    research = [h for h in history if h["purpose"] == "research"]
    assert [(h["version"], h["ended_by"]) for h in research] == [("1.1", None), ("1.0", "superseded")]
    out = withdraw(api, pid, "research")
    assert out.status_code == 200, out.text
    assert out.json()["ended_by"] == "withdrawn"
    assert out.json()["withdrawn_at"]
    assert granted(api, pid)["research"] is False
    error(withdraw(api, pid, "research"), 404, "consent.not_found")  # none active any more
    error(withdraw(api, pid, "marketing"), 404, "consent.not_found")
    assert audit_actions(pid).count("patients:consent:grant") == 2
    assert audit_actions(pid).count("patients:consent:withdraw") == 1
    with read_tx() as session:
        assert privacy.has_consent(session, pid, "points_programme")
        assert not privacy.has_consent(session, pid, "research")
        assert privacy.consenting(session, [pid, UNKNOWN, "junk"], "health_data") == {pid}


def test_bad_requests_are_clear_4xx(api: Api) -> None:
    pid = api.enrol()
    error(grant(api, pid, "marketing"), 422, "request.invalid")
    error(grant(api, pid, "research", source="somebody"), 422, "request.invalid")
    error(grant(api, UNKNOWN, "research"), 404, "patients.not_found")
    error(api.get("/patients/nope/consents"), 404, "patients.not_found")
    error(grant(api, pid, "research", source="patient", guardian={"relation": "parent"}), 422,
          "consent.invalid_guardian")
    error(grant(api, pid, "research", guardian={"relation": "parent", "patient_id": pid}), 422,
          "consent.invalid_guardian")
    his = api.make_key("integration", "his")
    assert grant(api, pid, "research", key=his).status_code == 201  # integration may write consents


def test_staff_without_the_permission_are_refused(api: Api) -> None:
    pid = api.enrol()
    api.make_staff("nurse1", "pw-123456789", "nurse")
    r = api.post("/auth/token", {"username": "nurse1", "password": "pw-123456789"})
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    error(api.get(f"/patients/{pid}/consents", key=token), 403, "auth.forbidden")
    error(grant(api, pid, "research", key=token), 403, "auth.forbidden")


# --- the guardian rule ------------------------------------------------------------------------

def test_a_child_under_14_needs_a_guardian_at_enrolment_and_at_a_grant(api: Api) -> None:
    consent = {"version": "1.0", "accepted_at": (api.now() - timedelta(hours=1)).isoformat()}
    body = api.patient_body(birth_date=child_birth(api, 10), consent=consent)
    r = api.post("/patients", body)
    body_doc = error(r, 422, "consent.guardian_required")
    assert "14" in body_doc["detail"]
    assert " / " in body_doc["detail"]  # bilingual
    parent = api.enrol()
    child = api.enrol(birth_date=child_birth(api, 10),
                      consent={**consent, "source": "guardian",
                               "guardian": {"relation": "parent", "name": "王芳", "patient_id": parent}})
    [first] = [h for h in state(api, child)["history"] if h["purpose"] == "points_programme"]
    assert first["source"] == "guardian"
    assert first["guardian"] == {"relation": "parent", "patient_id": parent, "name_recorded": True}
    error(grant(api, child, "research"), 422, "consent.guardian_required")
    ok = grant(api, child, "research", guardian={"relation": "legal_guardian"})  # source defaults to guardian
    assert ok.status_code == 201, ok.text
    assert ok.json()["source"] == "guardian"
    # enrolled by the hospital (FHIR Patient ingest): the institution took the guardian's consent
    assert api.enrol(birth_date=child_birth(api, 5), consent={**consent, "source": "institution"})
    # 14 and over (and no birth date): the patient consents themself
    teen = api.enrol(birth_date=child_birth(api, 15))
    assert grant(api, teen, "research").status_code == 201


def test_the_age_rule_counts_local_birthdays() -> None:
    at = datetime.fromisoformat("2026-06-01T00:30:00+08:00")  # 31 May UTC, 1 June in Shanghai
    assert privacy.under_guardian_age(date(2012, 6, 2), at)
    assert not privacy.under_guardian_age(date(2012, 6, 1), at)
    assert not privacy.under_guardian_age(None, at)
    assert privacy.under_guardian_age(date(2012, 2, 29), datetime.fromisoformat("2026-02-28T12:00:00+08:00"))
    assert not privacy.under_guardian_age(date(2012, 2, 29), datetime.fromisoformat("2026-03-01T12:00:00+08:00"))


# --- what a withdrawal stops ------------------------------------------------------------------

def test_programme_withdrawal_stops_awards_and_a_regrant_lets_earlier_events_earn(api: Api) -> None:
    pid = api.enrol()
    before = api.balance(pid)
    assert withdraw(api, pid, "points_programme").status_code == 200
    at = api.now() - timedelta(hours=2)
    out = api.send(event(pid, "selfservice.used", at, {"action": "pay"}))
    assert out["awards"] == []
    assert [n["code"] for n in out["notices"]] == ["consent.missing"]
    assert api.balance(pid) == before
    assert grant(api, pid, "points_programme", "2.0").status_code == 201
    # an event from before the new grant, ingested after it, earns (consent is judged at ingest)
    later = api.send(event(pid, "selfservice.used", at - timedelta(minutes=1), {"action": "print_report"}))
    assert [a["rule"] for a in later["awards"]] == ["self_service"]
    assert api.balance(pid) == before + 10


def test_health_data_withdrawal_refuses_readings_and_the_observer_keeps_nothing(api: Api) -> None:
    pid = api.enrol()
    at = api.now() - timedelta(minutes=5)
    body = {"kind": "blood_pressure", "systolic": 190, "diastolic": 115, "provenance": "self_reported",
            "taken_at": at.isoformat()}
    assert api.post(f"/patients/{pid}/measurements", body).status_code == 201
    assert withdraw(api, pid, "health_data").status_code == 200
    refused = error(api.post(f"/patients/{pid}/measurements", {**body, "idempotency_key": "m2"}), 403,
                    "consent.missing")
    assert " / " in refused["detail"]
    api.send(bp_event(pid, at + timedelta(minutes=1)))  # a HIS reading of the same patient
    m, a = table(HealthMeasurement), table(CareAlert)
    with read_tx() as session:
        conn = session.connection()
        assert len(conn.execute(select(m.c.id).where(m.c.patient_id == pid)).all()) == 1  # the one from before
        assert len(conn.execute(select(a.c.id).where(a.c.patient_id == pid)).all()) == 1


def test_notifications_withdrawal_keeps_only_essential_messages(api: Api) -> None:
    pid = api.enrol()
    assert grant(api, pid, "notifications", "1.0").status_code == 201
    now = api.now()
    enqueue(now, "appointment.reminder", {"patient_id": pid, "appointment_id": UNKNOWN,
                                          "slot_start": (now + timedelta(days=1)).isoformat()})
    run(now)
    assert "appointment.reminder" in [m["topic"] for m in inbox_rows(recipient_id=pid)]
    assert withdraw(api, pid, "notifications").status_code == 200
    enqueue(now, "appointment.reminder", {"patient_id": pid, "appointment_id": UNKNOWN,
                                          "slot_start": (now + timedelta(days=2)).isoformat()})
    enqueue(now, "medication.reminder", {"patient_id": pid, "plan_id": UNKNOWN, "scheduled_time": "08:00"})
    enqueue(now, "appointment.cancelled_by_hospital", {"patient_id": pid, "appointment_id": UNKNOWN})
    run(now)
    topics = [m["topic"] for m in inbox_rows(recipient_id=pid)]
    assert topics.count("appointment.reminder") == 1  # only the one from before the withdrawal
    assert "medication.reminder" not in topics
    assert "appointment.cancelled_by_hospital" in topics  # transactional: still told


def test_the_essential_list() -> None:
    assert essential("appointment.cancelled_by_hospital")
    assert essential("lab.critical_value.patient")
    assert essential("points.changed.earned")
    assert essential("health.advice.bp_high")
    assert not essential("appointment.reminder")
    assert not essential("medication.reminder")
    assert not essential("points.expiring")
    assert not essential("care.inactivity")
    assert not essential("appointment.cancelledx")
    assert not essential("promo.spring_sale")
