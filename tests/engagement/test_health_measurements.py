"""Health readings over HTTP: recorded through the spine, paid as self-monitoring (clinic
readings stored, unpaid), replayed by idempotency key, abnormal ones raising one care
alert and one advice message (thresholds inclusive), plausibility and every bad input a
4xx with a code, and the trend by local day."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from carepoints.audit import service as audit
from carepoints.events.models import Event
from carepoints.kit.db import read_tx, table
from tests.engagement.test_health_kit import UNKNOWN, alerts, bp_body, glucose_body, outbox, readings, staff_token
from tests.helpers import error, event

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]


def post(api: Api, pid: str, body: dict[str, Any]) -> dict[str, Any]:
    r = api.post(f"/patients/{pid}/measurements", body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_a_self_measured_reading_is_recorded_and_paid(api: Api) -> None:
    pid = api.enrol()
    out = post(api, pid, bp_body(api.now() - timedelta(minutes=5), 128, 82, pulse=70, device_id="omron-1"))
    assert sorted((a["rule"], a["points"]) for a in out["awards"]) == [("first_checkin", 50), ("health_checkin", 10)]
    assert out["balance"] == 160
    assert out["alert"] is None
    assert out["duplicate"] is False
    reading = out["reading"]
    assert (reading["systolic"], reading["diastolic"], reading["pulse"]) == (128, 82, 70)
    assert reading["provenance"] == "self_reported"
    assert reading["abnormal"] is False
    assert reading["taken_at"].endswith("+08:00")
    with read_tx() as session:
        ev = session.connection().execute(table(Event).select().where(
            table(Event).c.id == out["event_id"])).mappings().one()
    assert ev["type"] == "health.measurement"
    assert ev["source"] == "carepoints.engagement"
    assert ev["attributes"]["device_id"] == "omron-1"
    assert [r["event_id"] for r in readings(pid)] == [out["event_id"]]
    with read_tx() as session:
        [entry] = audit.entries(session, patient_id=pid, action="health:measurement:record")
    assert entry["subject_id"] == out["event_id"]
    assert entry["details"] == {"kind": "blood_pressure", "provenance": "self_reported"}  # no values


def test_a_replay_with_the_same_key_answers_the_same_outcome(api: Api) -> None:
    pid = api.enrol()
    body = bp_body(api.now() - timedelta(minutes=5), 185, 100, idempotency_key="upload-1")
    first = api.post(f"/patients/{pid}/measurements", body)
    again = api.post(f"/patients/{pid}/measurements", body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["duplicate"] is True
    assert again.json()["event_id"] == first.json()["event_id"]
    assert again.json()["awards"] == first.json()["awards"]
    assert again.json()["alert"] == first.json()["alert"] is not None
    assert len(readings(pid)) == 1
    assert len(alerts(pid)) == 1
    assert len(outbox("health.advice", pid)) == 1
    assert api.balance(pid) == 160
    changed = {**body, "systolic": 150}
    error(api.post(f"/patients/{pid}/measurements", changed), 409, "events.conflict")
    other = api.enrol()  # keys are per patient
    assert api.post(f"/patients/{other}/measurements", body).status_code == 201


def test_clinic_readings_are_stored_but_not_paid(api: Api) -> None:
    pid = api.enrol()
    out = post(api, pid, bp_body(api.now() - timedelta(minutes=5), provenance="clinic"))
    assert out["awards"] == []
    assert out["notices"]
    assert out["balance"] == 100
    assert out["reading"]["provenance"] == "clinic"
    assert [r["self_monitored"] for r in readings(pid)] == [False]


@pytest.mark.parametrize(("value", "unit", "stored"), [
    (100, "mg/dL", 5.6), (306, "mg/dL", 17.0), (70, "mg/dL", 3.9), (72, "mg/dL", 4.0), (599, "mg/dL", 33.3),
    (19, "mg/dL", 1.1), (6.25, "mmol/L", 6.25)])
def test_glucose_in_mg_dl_is_converted(api: Api, value: float, unit: str, stored: float) -> None:
    pid = api.enrol()
    out = post(api, pid, glucose_body(api.now() - timedelta(minutes=5), value, unit))
    assert out["reading"]["glucose_mmol_l"] == stored
    assert readings(pid)[0]["glucose_mmol_l"] == stored


def test_thresholds_are_inclusive(api: Api) -> None:
    pid = api.enrol()
    at = api.now() - timedelta(minutes=30)
    cases: list[tuple[dict[str, Any], list[str], str | None]] = [
        (bp_body(at, 180, 100), ["sbp_high"], "bp_high"),
        (bp_body(at, 179, 109), [], None),
        (bp_body(at, 170, 110), ["dbp_high"], "bp_high"),
        (bp_body(at, 190, 115), ["sbp_high", "dbp_high"], "bp_high"),
        (glucose_body(at, 16.7), ["glucose_high"], "glucose_high"),
        (glucose_body(at, 16.6), [], None),
        (glucose_body(at, 3.9), ["glucose_low"], "glucose_low"),
        (glucose_body(at, 4.0), [], None),
    ]
    for body, reasons, variant in cases:
        out = post(api, pid, body)
        assert out["reading"]["reasons"] == reasons, body
        assert out["reading"]["abnormal"] is bool(reasons)
        assert (out["alert"] is not None) is bool(reasons)
        if variant is not None:
            advice = outbox("health.advice", pid)[-1]
            assert advice == {"patient_id": pid, "event_id": out["event_id"], "variant": variant}
    raised = alerts(pid)
    assert len(raised) == 5
    assert {a["severity"] for a in raised} == {"high"}
    assert {a["kind"] for a in raised} == {"abnormal_reading"}
    assert all(set(a["details"]) == {"event_id", "reasons"} for a in raised)
    assert len(outbox("health.advice", pid)) == 5
    assert len(outbox("care.alert", pid)) == 5


def test_thresholds_are_settings(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from carepoints.config import reset_settings

    monkeypatch.setenv("CAREPOINTS_ALERT_SBP", "160")
    reset_settings()
    try:
        pid = api.enrol()
        out = post(api, pid, bp_body(api.now() - timedelta(minutes=5), 160, 90))
        assert out["alert"] is not None
    finally:
        monkeypatch.delenv("CAREPOINTS_ALERT_SBP")
        reset_settings()


def test_an_old_abnormal_reading_is_flagged_but_alerts_nobody(api: Api) -> None:
    pid = api.enrol()
    out = post(api, pid, bp_body(api.now() - timedelta(days=4), 200, 120))
    assert out["reading"]["abnormal"] is True
    assert out["alert"] is None
    assert outbox("health.advice", pid) == []


def test_readings_from_devices_and_the_his_via_events_count_too(api: Api) -> None:
    pid = api.enrol()
    at = api.now() - timedelta(minutes=10)
    ok = api.send(event(pid, "health.measurement", at, {"kind": "blood_glucose", "glucose_mmol_l": 2.8,
                                                         "provenance": "device"}, key="dev-1"))
    api.send(event(pid, "health.measurement", at, {"kind": "blood_glucose", "glucose_mmol_l": 2.8,
                                                   "provenance": "device"}, key="dev-1"))  # a replay
    assert [r["event_id"] for r in readings(pid)] == [ok["event_id"]]
    assert [a["source_ref"] for a in alerts(pid)] == [ok["event_id"]]
    assert [m["variant"] for m in outbox("health.advice", pid)] == ["glucose_low"]
    # the tightened ranges hold on POST /events too
    for attrs in ({"kind": "blood_pressure", "systolic": 301, "diastolic": 80, "provenance": "device"},
                  {"kind": "blood_pressure", "systolic": 120, "diastolic": 120, "provenance": "device"},
                  {"kind": "blood_glucose", "glucose_mmol_l": 33.4, "provenance": "device"}):
        error(api.post("/events", event(pid, "health.measurement", at, attrs)), 422, "request.invalid")


def test_a_patient_reference_names_the_patient(api: Api) -> None:
    pid = api.enrol(external_ids=[{"system": "his-mrn", "value": "MRN-77"}])
    at = api.now() - timedelta(minutes=5)
    r = api.post("/measurements", {**bp_body(at), "patient": {"system": "his-mrn", "value": "MRN-77"}})
    assert r.status_code == 201, r.text
    r = api.post("/measurements", {**bp_body(at), "patient": {"id": pid}})
    assert r.status_code == 201, r.text
    assert len(readings(pid)) == 2
    error(api.post("/measurements", {**bp_body(at), "patient": {"system": "his-mrn", "value": "nope"}}),
          404, "patients.not_found")
    error(api.post("/measurements", bp_body(at)), 422, "request.invalid")
    error(api.post(f"/patients/{pid}/measurements", {**bp_body(at), "patient": {"id": pid}}), 422, "request.invalid")


@pytest.mark.parametrize("change", [
    {"systolic": 49}, {"systolic": 301}, {"diastolic": 29}, {"diastolic": 201}, {"systolic": 120, "diastolic": 120},
    {"pulse": 29}, {"pulse": 251}, {"systolic": None}, {"diastolic": None}, {"glucose": 5.5},
    {"provenance": "hospital"}, {"kind": "weight"}, {"taken_at": "2026-06-15T10:00:00"}, {"taken_at": "yesterday"},
    {"unit": "mg/dl"}, {"device_id": "d" * 65}, {"idempotency_key": ""}, {"idempotency_key": "k" * 129},
    {"colour": "red"}, {"systolic": "high"},
])
def test_bad_blood_pressure_input_is_422(api: Api, change: dict[str, Any]) -> None:
    pid = api.enrol()
    body = {k: v for k, v in {**bp_body(api.now() - timedelta(minutes=5)), **change}.items() if v is not None}
    error(api.post(f"/patients/{pid}/measurements", body), 422, "request.invalid")
    assert readings(pid) == []


@pytest.mark.parametrize("change", [
    {"glucose": 1.0}, {"glucose": 33.4}, {"glucose": 18, "unit": "mg/dL"}, {"glucose": 601, "unit": "mg/dL"},
    {"glucose": None}, {"glucose": 0}, {"glucose": -3}, {"glucose": 5.5, "systolic": 120}, {"pulse": 70},
    {"glucose": "NaN"},
])
def test_bad_glucose_input_is_422(api: Api, change: dict[str, Any]) -> None:
    pid = api.enrol()
    body = {k: v for k, v in {**glucose_body(api.now() - timedelta(minutes=5), 5.5), **change}.items()
            if v is not None}
    error(api.post(f"/patients/{pid}/measurements", body), 422, "request.invalid")


def test_times_in_the_future_or_too_old_are_refused(api: Api) -> None:
    pid = api.enrol()
    error(api.post(f"/patients/{pid}/measurements", bp_body(api.now() + timedelta(minutes=3))),
          422, "health.taken_at_in_future")
    error(api.post(f"/patients/{pid}/measurements", bp_body(api.now() - timedelta(days=1096))),
          422, "health.taken_at_too_old")
    assert api.post(f"/patients/{pid}/measurements", bp_body(api.now() - timedelta(days=1094))).status_code == 201
    assert len(readings(pid)) == 1


def test_unknown_patients_and_permissions(api: Api) -> None:
    pid = api.enrol()
    at = api.now() - timedelta(minutes=5)
    error(api.post(f"/patients/{UNKNOWN}/measurements", bp_body(at)), 404, "patients.not_found")
    error(api.post("/patients/not-an-id/measurements", bp_body(at)), 404, "patients.not_found")
    error(api.get(f"/patients/{UNKNOWN}/measurements"), 404, "patients.not_found")
    auditor = staff_token(api, "auditor1", "auditor")
    error(api.post(f"/patients/{pid}/measurements", bp_body(at), key=auditor), 403, "auth.forbidden")
    error(api.get(f"/patients/{pid}/measurements", key=auditor), 403, "auth.forbidden")
    error(api.post(f"/patients/{pid}/measurements", bp_body(at), auth=False), 401, "auth.unauthenticated")
    nurse = staff_token(api, "nurse1", "nurse")
    assert api.post(f"/patients/{pid}/measurements", bp_body(at), key=nurse).status_code == 201
    assert api.get(f"/patients/{pid}/measurements", key=nurse).status_code == 200


def _local_midnight(api: Api, days_ago: int) -> datetime:
    return api.now().replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days_ago)


def test_the_trend_groups_by_local_day(api: Api) -> None:
    pid = api.enrol()
    late = _local_midnight(api, 1) - timedelta(minutes=1)  # 23:59 two days ago
    early = _local_midnight(api, 1) + timedelta(minutes=1)  # 00:01 yesterday
    post(api, pid, bp_body(late, 120, 80))
    post(api, pid, bp_body(late - timedelta(hours=2), 140, 90))
    post(api, pid, bp_body(early, 185, 95))
    post(api, pid, glucose_body(early, 6.0))
    post(api, pid, bp_body(_local_midnight(api, 7) + timedelta(hours=9), 130, 85))  # 7 days ago: outside 7
    doc = api.get(f"/patients/{pid}/measurements", params={"days": 7}).json()
    assert doc["days"] == 7
    assert [r["taken_at"][11:16] for r in doc["readings"]] == ["21:59", "23:59", "00:01", "00:01"]
    assert doc["abnormal"] == 1
    bp_days = [s for s in doc["summaries"] if s["kind"] == "blood_pressure"]
    assert [(s["day"], s["count"]) for s in bp_days] == [(late.date().isoformat(), 2), (early.date().isoformat(), 1)]
    assert bp_days[0]["systolic"] == {"min": 120, "max": 140, "mean": 130.0}
    assert bp_days[1]["abnormal"] == 1
    only_glucose = api.get(f"/patients/{pid}/measurements", params={"days": 30, "kind": "blood_glucose"}).json()
    assert [r["kind"] for r in only_glucose["readings"]] == ["blood_glucose"]
    assert only_glucose["summaries"][0]["glucose_mmol_l"] == {"min": 6.0, "max": 6.0, "mean": 6.0}
    assert len(api.get(f"/patients/{pid}/measurements", params={"days": 30}).json()["readings"]) == 5
    assert len(api.get(f"/patients/{pid}/measurements").json()["readings"]) == 5  # 30 by default
    for bad in ({"days": 14}, {"days": 0}, {"days": "x"}, {"kind": "weight"}):
        error(api.get(f"/patients/{pid}/measurements", params=bad), 422, "request.invalid")


def test_a_revoked_reading_leaves_the_trend(api: Api) -> None:
    pid = api.enrol()
    keep = post(api, pid, bp_body(api.now() - timedelta(hours=2)))
    gone = post(api, pid, bp_body(api.now() - timedelta(hours=1), 150, 95))
    r = api.post(f"/events/{gone['event_id']}/revoke", {"reason": "wrong patient"})
    assert r.status_code == 200, r.text
    doc = api.get(f"/patients/{pid}/measurements", params={"days": 7}).json()
    assert [x["event_id"] for x in doc["readings"]] == [keep["event_id"]]


def test_without_health_data_consent_readings_are_not_processed(api: Api) -> None:
    consent = {"version": "1.0", "accepted_at": (api.now() - timedelta(days=1)).isoformat(),
               "purposes": ["points_programme"]}
    pid = api.enrol(consent=consent)
    at = api.now() - timedelta(minutes=5)
    error(api.post(f"/patients/{pid}/measurements", bp_body(at, 190, 115)), 403, "consent.missing")
    api.send(event(pid, "health.measurement", at, {"kind": "blood_pressure", "systolic": 190, "diastolic": 115,
                                                   "provenance": "device"}))
    assert readings(pid) == []
    assert alerts(pid) == []
    assert outbox("health.advice", pid) == []
