"""FHIR ingest through the real app on SQLite and PostgreSQL: single resources and
Bundles, duplicates, new versions and revocation, patients matched, enrolled and
deceased, appointments and questionnaire responses, limits and error shapes."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from carepoints.config import reset_settings
from carepoints.enrolment import service as enrolment
from carepoints.kit.db import read_tx
from carepoints.kit.time import utc_now
from tests.fhir.support import bp, codes, enrol_fhir, entry_codes, events_of, load, patient, post

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]

WELCOME, FIRST, DAILY = 100, 50, 10


def _patient_doc(pid: str) -> dict[str, object]:
    with read_tx() as session:
        return enrolment.patient(session, pid, reveal_pii=False)


def test_patient_enrolled_with_institution_consent_then_matched(api: Api) -> None:
    r = post(api, patient())
    assert r.status_code == 201, r.text
    assert r.headers["content-type"].startswith("application/fhir+json")
    assert codes(r.json()) == ["fhir.patient_enrolled"]
    pid = r.headers["location"].rsplit("/", 1)[1]
    assert r.headers["location"].endswith(f"/fhir/Patient/{pid}")
    doc = _patient_doc(pid)
    assert {c["source"] for c in doc["consents"]} == {"institution"}  # type: ignore[attr-defined]
    assert {c["purpose"] for c in doc["consents"]} == {"points_programme", "health_data"}  # type: ignore[attr-defined]
    assert {"system": "urn:carepoints:fhir:Patient", "value": "p1"} in doc["external_ids"]  # type: ignore[operator]
    assert doc["sex"] == "male"
    assert api.balance(pid) == WELCOME
    again = post(api, patient())
    assert again.status_code == 200
    assert codes(again.json()) == ["fhir.patient_matched"]
    assert again.headers["location"].endswith(pid)
    # the same person known by a new identifier only is matched by the old one and keeps both
    more = patient(identifier=[{"system": "urn:oid:1.2.156.112606.1.2", "value": "MRN-p1"},
                               {"system": "urn:his:card", "value": "C-77"}], id="p1-other")
    assert post(api, more).status_code == 200
    exts = _patient_doc(pid)["external_ids"]
    assert {"system": "urn:his:card", "value": "C-77"} in exts  # type: ignore[operator]
    assert api.balance(pid) == WELCOME


def test_observation_resend_new_version_and_cancel(api: Api) -> None:
    pid = enrol_fhir(api)
    at = utc_now() - timedelta(hours=2)
    r = post(api, bp(at))
    assert r.status_code == 201, r.text
    assert r.headers["location"].endswith("/fhir/Observation/bp1/_history/1")
    assert codes(r.json())[0] == "fhir.created"
    assert api.balance(pid) == WELCOME + FIRST + DAILY
    [ev] = events_of("Observation/bp1")
    assert (ev["type"], ev["source"], ev["source_event_id"]) == ("health.measurement", "fhir",
                                                                  "Observation/bp1/_history/1")
    assert ev["attributes"] == {"kind": "blood_pressure", "provenance": "device", "systolic": 128, "diastolic": 82}
    # resend: a duplicate, no double points
    again = post(api, bp(at))
    assert again.status_code == 200
    assert codes(again.json()) == ["fhir.duplicate"]
    assert api.balance(pid) == WELCOME + FIRST + DAILY
    # a new version (the HIS corrected the reading): the old event is revoked, the new one earns
    v2 = bp(at, systolic=135, meta={"versionId": "2"})
    r2 = post(api, v2)
    assert r2.status_code == 200, r2.text
    assert codes(r2.json())[0] == "fhir.updated"
    assert r2.headers["location"].endswith("/_history/2")
    first, second = events_of("Observation/bp1")
    assert (first["status"], second["status"]) == ("revoked", "accepted")
    assert second["attributes"]["systolic"] == 135
    assert api.balance(pid) == WELCOME + FIRST + DAILY  # the room freed by the revoke is used again
    assert post(api, v2).status_code == 200
    assert len(events_of("Observation/bp1")) == 2
    # cancelled: the current version's event is revoked
    cancel = bp(at, systolic=135, status="cancelled", meta={"versionId": "3"})
    r3 = post(api, cancel)
    assert r3.status_code == 200, r3.text
    assert codes(r3.json()) == ["fhir.revoked"]
    assert [e["status"] for e in events_of("Observation/bp1")] == ["revoked", "revoked"]
    assert api.balance(pid) == WELCOME
    assert codes(post(api, cancel).json()) == ["fhir.duplicate"]
    assert api.balance(pid) == WELCOME


def test_glucose_in_mg_dl_is_converted(api: Api) -> None:
    pid = enrol_fhir(api)
    doc = {"resourceType": "Observation", "id": "glu1", "status": "final",
           "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}]},
           "subject": {"identifier": {"system": "urn:oid:1.2.156.112606.1.2", "value": "MRN-p1"}},
           "performer": [{"reference": "Patient/p1"}],
           "effectiveDateTime": (utc_now() - timedelta(hours=1)).isoformat(),
           "valueQuantity": {"value": 106, "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL"}}
    r = post(api, doc)
    assert r.status_code == 201, r.text
    [ev] = events_of("Observation/glu1")
    assert ev["patient_id"] == pid
    assert ev["attributes"] == {"kind": "blood_glucose", "provenance": "self_reported", "glucose_mmol_l": 5.9}
    assert api.balance(pid) == WELCOME + FIRST + DAILY


def test_implausible_invalid_and_unknown(api: Api) -> None:
    enrol_fhir(api)
    at = utc_now() - timedelta(hours=1)
    r = post(api, bp(at, systolic=400))
    assert r.status_code == 422
    assert r.json()["resourceType"] == "OperationOutcome"
    assert codes(r.json()) == ["request.invalid"]
    r = post(api, bp(at, subject="Patient/nobody", oid="bp2"))
    assert r.status_code == 404
    assert codes(r.json()) == ["patients.not_found"]
    r = post(api, bp(at, status="bogus"))
    assert (r.status_code, codes(r.json())) == (422, ["fhir.invalid_code"])
    r = post(api, {"resourceType": "Observation", "status": "final", "code": "not a concept"})
    assert (r.status_code, codes(r.json())) == (422, ["fhir.invalid"])
    r = post(api, patient(), path="/fhir/Observation")
    assert (r.status_code, codes(r.json())) == (400, ["fhir.type_mismatch"])
    r = api.client.post("/fhir/Observation", content=b"{not json", headers=api.headers())
    assert (r.status_code, codes(r.json())) == (422, ["request.invalid"])
    assert events_of("Observation/") == []
    r = api.client.post("/fhir/Observation", json=bp(at))
    assert r.status_code == 401
    assert r.json()["resourceType"] == "OperationOutcome"


def test_bundle_with_batch_semantics(api: Api) -> None:
    at = utc_now() - timedelta(hours=3)
    person = patient(pid="b1", phone="13900139000")
    del person["id"]
    bad = bp(at, oid="bad", subject="urn:uuid:aaaaaaaa-0000-4000-8000-000000000001", systolic=20)
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:aaaaaaaa-0000-4000-8000-000000000002", "resource": bp(
            at, oid="ok1", subject="urn:uuid:aaaaaaaa-0000-4000-8000-000000000001"),
         "request": {"method": "POST", "url": "Observation"}},
        {"fullUrl": "urn:uuid:aaaaaaaa-0000-4000-8000-000000000001", "resource": person,
         "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Claim", "id": "c1"}, "request": {"method": "POST", "url": "Claim"}},
        {"request": {"method": "GET", "url": "Patient?name=x"}},
        {"resource": bad, "request": {"method": "POST", "url": "Observation"}},
        {"resource": bp(at, oid="ok2", subject="Patient/unknown"), "request": {"method": "POST", "url": "Observation"}},
    ]}
    r = post(api, bundle)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["resourceType"], body["type"]) == ("Bundle", "transaction-response")
    statuses = [e["response"]["status"] for e in body["entry"]]
    assert statuses == ["201 Created", "201 Created", "200 OK", "405 Method Not Allowed", "422 Unprocessable Entity",
                        "404 Not Found"]
    assert entry_codes(body["entry"][2]) == ["fhir.unsupported"]
    assert body["entry"][2]["response"]["outcome"]["issue"][0]["severity"] == "information"
    assert entry_codes(body["entry"][5]) == ["patients.not_found"]
    pid = body["entry"][1]["response"]["location"].rsplit("/", 1)[1]
    assert body["entry"][0]["response"]["location"] == "Observation/ok1/_history/1"
    [ev] = events_of("Observation/ok1")
    assert ev["patient_id"] == pid
    assert events_of("Observation/bad") == []
    assert api.balance(pid) == WELCOME + FIRST + DAILY
    # the whole Bundle again: every created entry is now a duplicate
    r = post(api, bundle)
    again = r.json()["entry"]
    assert [e["response"]["status"] for e in again][:2] == ["200 OK", "200 OK"]
    assert entry_codes(again[0]) == ["fhir.duplicate"]
    assert api.balance(pid) == WELCOME + FIRST + DAILY


def test_bundle_shapes_and_limits(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    r = post(api, {"resourceType": "Bundle", "type": "document", "entry": []})
    assert (r.status_code, codes(r.json())) == (400, ["fhir.bundle_required"])
    r = post(api, load("Bundle-bundle-response.json"))
    assert (r.status_code, codes(r.json())) == (400, ["fhir.bundle_required"])
    r = post(api, load("Schedule-example.json"), path="/fhir")
    assert (r.status_code, codes(r.json())) == (400, ["fhir.bundle_required"])
    r = post(api, load("Questionnaire-qs1.json"), path="/fhir")
    assert (r.status_code, codes(r.json())) == (422, ["fhir.invalid"])
    r = post(api, [1, 2], path="/fhir")
    assert r.status_code == 422
    r = post(api, {"resourceType": "Bundle", "type": "batch", "entry": []})
    assert r.status_code == 200
    assert r.json()["type"] == "batch-response"
    monkeypatch.setenv("CAREPOINTS_FHIR_MAX_BUNDLE_ENTRIES", "2")
    monkeypatch.setenv("CAREPOINTS_FHIR_MAX_BODY_BYTES", "2048")
    reset_settings()
    try:
        many = {"resourceType": "Bundle", "type": "batch", "entry": [{"resource": {"resourceType": "Basic"}}] * 3}
        r = post(api, many)
        assert (r.status_code, codes(r.json())) == (413, ["fhir.bundle_too_large"])
        huge = {"resourceType": "Bundle", "type": "batch", "entry": [{"resource": {"resourceType": "Basic",
                                                                                   "id": "x" * 4000}}]}
        r = post(api, huge)
        assert (r.status_code, codes(r.json())) == (413, ["fhir.body_too_large"])
    finally:
        monkeypatch.delenv("CAREPOINTS_FHIR_MAX_BUNDLE_ENTRIES")
        monkeypatch.delenv("CAREPOINTS_FHIR_MAX_BODY_BYTES")
        reset_settings()


def test_a_key_without_enrol_permission_cannot_enrol(api: Api) -> None:
    api.make_staff("desk.fhir", "correct horse battery", "frontdesk")
    r = api.client.post("/api/v1/auth/token", json={"username": "desk.fhir", "password": "correct horse battery"})
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    r = post(api, patient(), key=token)
    assert (r.status_code, codes(r.json())) == (403, ["auth.forbidden"])
    pid = enrol_fhir(api)  # the admin key may
    r = post(api, patient(), key=token)
    assert r.status_code == 200  # matching needs no enrol permission
    assert r.headers["location"].endswith(pid)


def test_deceased_patients_earn_nothing(api: Api) -> None:
    at = utc_now() - timedelta(hours=2)
    r = post(api, patient(pid="d1", phone="13700137000", deceasedDateTime="2026-01-02T03:04:05+08:00"))
    assert r.status_code == 201, r.text
    dead = r.headers["location"].rsplit("/", 1)[1]
    assert _patient_doc(dead)["status"] == "deceased"
    assert api.balance(dead) == 0
    assert post(api, bp(at, oid="bpd", subject="Patient/d1")).status_code == 201
    assert api.balance(dead) == 0
    # an enrolled patient reported deceased later keeps what they earned and earns no more
    alive = enrol_fhir(api)
    assert post(api, bp(at, oid="bpa1")).status_code == 201
    earned = api.balance(alive)
    assert earned == WELCOME + FIRST + DAILY
    r = post(api, patient(deceasedBoolean=True))
    assert r.status_code == 200
    assert _patient_doc(alive)["status"] == "deceased"
    assert post(api, bp(at + timedelta(minutes=5), oid="bpa2")).status_code == 201
    assert api.balance(alive) == earned


def test_appointment_status_changes(api: Api) -> None:
    pid = enrol_fhir(api)
    start = utc_now() - timedelta(days=2)
    appt = copy.deepcopy(load("Appointment-example.json"))
    appt.update(id="hisappt1", start=start.isoformat(), end=(start + timedelta(minutes=30)).isoformat(),
                created=(start - timedelta(days=5)).isoformat())
    appt["participant"][0]["actor"] = {"reference": "Patient/p1"}
    booked = post(api, appt)
    assert (booked.status_code, codes(booked.json())) == (200, ["fhir.appointment_status"])
    appt["status"] = "fulfilled"
    r = post(api, appt)
    assert r.status_code == 201, r.text
    [attended] = events_of("Appointment/hisappt1")
    assert attended["type"] == "appointment.attended"
    assert attended["attributes"]["appointment_id"] == "hisappt1"
    after_attended = api.balance(pid)
    assert after_attended > WELCOME  # booked 5 days ahead: book_ahead pays on attendance
    assert post(api, appt).status_code == 200
    # the HIS corrects it to a no-show: attended revoked, the no-show penalised
    appt["status"] = "noshow"
    r = post(api, appt)
    assert r.status_code == 200, r.text
    first, second = events_of("Appointment/hisappt1")
    assert (first["status"], second["type"]) == ("revoked", "appointment.no_show")
    assert api.balance(pid) == WELCOME - 50
    # a hospital-side cancellation of another appointment
    other = copy.deepcopy(appt)
    other.update(id="hisappt2", status="cancelled", start=(utc_now() + timedelta(days=3)).isoformat(),
                 cancelationReason={"coding": [{"code": "prov"}]})
    other.pop("end")
    assert post(api, other).status_code == 201
    [cancelled] = events_of("Appointment/hisappt2")
    assert cancelled["attributes"]["by"] == "hospital"
    nostart = copy.deepcopy(other)
    nostart.update(id="hisappt3")
    nostart.pop("start")
    r = post(api, nostart)
    assert (r.status_code, codes(r.json())) == (422, ["fhir.missing_element"])


def test_questionnaire_response_is_a_survey(api: Api) -> None:
    pid = enrol_fhir(api)
    qr = load("QuestionnaireResponse-gcs.json")
    qr["subject"] = {"reference": "Patient/p1"}
    qr["authored"] = (utc_now() - timedelta(hours=1)).isoformat()
    r = post(api, qr)
    assert r.status_code == 201, r.text
    [ev] = events_of("QuestionnaireResponse/gcs")
    assert ev["type"] == "survey.completed"
    assert ev["attributes"]["survey_id"] == "Questionnaire/gcs"
    assert api.balance(pid) == WELCOME + 50
    qr2 = dict(qr, id="gcs-2")
    assert post(api, qr2).status_code == 201
    assert api.balance(pid) == WELCOME + 50  # once per period
    bad = dict(qr, id="gcs-3", status="entered-in-error")
    assert codes(post(api, bad).json()) == ["fhir.nothing_to_revoke"]
    gone = dict(qr, status="entered-in-error")
    assert codes(post(api, gone).json()) == ["fhir.revoked"]
    assert api.balance(pid) == WELCOME


def test_capability_statement_documents_ingest(api: Api) -> None:
    doc = api.client.get("/fhir/metadata").json()
    rest = doc["rest"][0]
    by_type = {r["type"]: r for r in rest["resource"]}
    for rtype in ("Observation", "Appointment", "QuestionnaireResponse", "Encounter", "Patient"):
        assert {"code": "create"} in by_type[rtype]["interaction"], rtype
    assert {"code": "batch"} in rest["interaction"]
    assert {"code": "transaction"} in rest["interaction"]
    assert "batch-response" in rest["documentation"]


WEIRD: list[object] = [
    {}, [], "text", 5, None, {"resourceType": 5}, {"resourceType": "Nope"},
    {"resourceType": "Observation"}, {"resourceType": "Observation", "status": "final", "code": {}},
    {"resourceType": "Observation", "status": "final", "code": {"coding": [{"code": "85354-9"}]},
     "component": "x"},
    {"resourceType": "Appointment", "status": "fulfilled", "participant": [{"actor": 5}]},
    {"resourceType": "Patient", "name": [{"family": 7}], "telecom": [{"system": "phone", "value": ["x"]}]},
    {"resourceType": "QuestionnaireResponse", "status": "completed", "authored": "2026"},
    {"resourceType": "Bundle", "type": "batch", "entry": "x"},
    {"resourceType": "Bundle", "type": "batch", "entry": [5, "x", None, {"resource": 5}, {"request": 5},
                                                         {"resource": {"resourceType": 5}},
                                                         {"resource": {"resourceType": "Patient", "id": 5}},
                                                         {"fullUrl": 5, "resource": {"resourceType": "Encounter"}}]},
]


@pytest.mark.parametrize("path", ["/fhir", "/fhir/Observation", "/fhir/Appointment", "/fhir/QuestionnaireResponse",
                                  "/fhir/Encounter", "/fhir/Patient"])
def test_malformed_bodies_never_fail_the_server(api: Api, path: str) -> None:
    for doc in WEIRD:
        r = api.client.post(path, json=doc, headers=api.headers())
        assert r.status_code < 500, (path, doc, r.text)
        body = r.json()
        assert body["resourceType"] in ("OperationOutcome", "Bundle"), (path, doc)
        if body["resourceType"] == "Bundle":
            assert all(int(e["response"]["status"][:3]) < 500 for e in body["entry"])


def test_a_discharge_becomes_an_event_and_entered_in_error_revokes_it(api: Api) -> None:
    pid = enrol_fhir(api)
    end = utc_now() - timedelta(hours=3)
    stay = {"resourceType": "Encounter", "id": "stay1", "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
            "subject": {"reference": "Patient/p1"},
            "period": {"start": (end - timedelta(days=5)).isoformat(), "end": end.isoformat()},
            "hospitalization": {"dischargeDisposition": {"coding": [{"code": "home"}]}}}
    r = post(api, stay)
    assert r.status_code == 201, r.text
    [ev] = events_of("Encounter/stay1")
    assert (ev["type"], ev["patient_id"], ev["status"]) == ("encounter.discharged", pid, "accepted")
    assert ev["attributes"]["encounter_id"] == "stay1"
    assert ev["attributes"]["disposition"] == "home"
    again = post(api, stay)
    assert again.status_code == 200
    assert codes(again.json()) == ["fhir.duplicate"]
    assert len(events_of("Encounter/stay1")) == 1
    wrong = post(api, {**stay, "status": "entered-in-error"})
    assert wrong.status_code == 200, wrong.text
    assert codes(wrong.json()) == ["fhir.revoked"]
    assert [e["status"] for e in events_of("Encounter/stay1")] == ["revoked"]
    visit = post(api, {**stay, "id": "visit1", "class": {"code": "AMB"}, "hospitalization": {}})
    assert visit.status_code == 200
    assert codes(visit.json()) == ["fhir.encounter_not_scored"]
