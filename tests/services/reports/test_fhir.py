"""DiagnosticReports over FHIR on SQLite and PostgreSQL: one report with a contained HL7 example
Observation, a real Synthea transaction Bundle (the reports with their Bundle Observations), resends
and versions, and bad input answered as OperationOutcome with nothing stored."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from carepoints.config import get_settings
from tests.fhir.support import codes, load
from tests.services.reports.kit import SYNTHEA, alerts, counts, patient_token

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]


def dr(status: str = "final", **extra: Any) -> dict[str, Any]:
    """A lab report holding the official HL7 glucose example (f001: 6.3 mmol/L, H) as contained."""
    obs = load("Observation-f001.json")
    obs.pop("subject", None)
    doc: dict[str, Any] = {
        "resourceType": "DiagnosticReport", "id": "dr-1", "status": status, "contained": [obs],
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "LAB"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "15074-8"}], "text": "血糖 / Glucose"},
        "subject": {"reference": "Patient/f001"}, "issued": "2026-11-03T09:00:00+08:00",
        "performer": [{"display": "检验科"}], "result": [{"reference": f"#{obs['id']}"}]}
    doc.update(extra)
    return doc


def enrol_f001(api: Api) -> str:
    return api.enrol(external_ids=[{"system": get_settings().fhir_patient_id_system, "value": "f001"}])


def post(api: Api, doc: Any, path: str = "/fhir/DiagnosticReport") -> Any:
    return api.client.post(path, json=doc, headers=api.headers())


def test_a_report_with_a_contained_hl7_observation(api: Api) -> None:
    pid = enrol_f001(api)
    r = post(api, dr())
    assert r.status_code == 201, r.text
    assert r.headers["content-type"].startswith("application/fhir+json")
    assert codes(r.json()) == ["reports.created"]
    assert r.headers["location"].endswith("/_history/1")
    token = patient_token(pid)
    [item] = api.get(f"/patients/{pid}/reports", key=token).json()["items"]
    assert (item["display"], item["category"], item["abnormal"]) == ("血糖 / Glucose", "lab", True)
    detail = api.get(f"/patients/{pid}/reports/{item['id']}", key=token).json()
    [res] = detail["results"]
    assert (res["value"], res["unit"], res["range_low"], res["range_high"], res["flag"]) == (6.3, "mmol/l", 3.1, 6.2,
                                                                                          "H")
    again = post(api, dr())
    assert again.status_code == 200, again.text
    assert again.headers["location"].endswith("/_history/1")
    amended = post(api, dr("amended", conclusion="复核"))
    assert amended.status_code == 200, amended.text
    assert amended.headers["location"].endswith("/_history/2")
    conflict = post(api, dr("amended", conclusion="又改"))
    assert conflict.status_code == 200  # amended after amended is a new version too
    changed_final = post(api, dr("final", conclusion="x"))
    assert changed_final.status_code == 409
    assert codes(changed_final.json()) == ["reports.conflict"]


def test_a_critical_interpretation_is_held(api: Api) -> None:
    pid = enrol_f001(api)
    doc = dr()
    doc["contained"][0]["interpretation"] = [{"coding": [{"code": "HH"}]}]
    r = post(api, doc)
    assert r.status_code == 201, r.text
    assert [a["kind"] for a in alerts(pid)] == ["critical_value"]
    assert api.get(f"/patients/{pid}/reports", key=patient_token(pid)).json()["items"] == []


def test_bad_reports_are_operation_outcomes_and_nothing_stored(api: Api) -> None:
    enrol_f001(api)
    cases = [
        (dr(status="done"), 422, "fhir.invalid"),
        ({**dr(), "result": [{"reference": "#missing"}]}, 422, "fhir.invalid"),
        ({**dr(), "subject": {"reference": "Patient/nobody"}}, 404, "patients.not_found"),
        ({**dr(), "issued": None, "effectiveDateTime": None}, 422, "fhir.invalid"),
        ({**dr(), "code": {"text": "no coding"}}, 422, "fhir.invalid"),
        (load("Observation-f001.json"), 400, "fhir.type_mismatch"),
        ({**dr(), "status": 3}, 422, "fhir.invalid"),
    ]
    for doc, status, code in cases:
        doc = {k: v for k, v in doc.items() if v is not None}
        r = post(api, doc)
        assert r.status_code == status, (code, r.text)
        assert r.json()["resourceType"] == "OperationOutcome"
        assert codes(r.json()) == [code], r.text
    assert counts() == (0, 0)
    key = api.make_key("integration", "lis")  # the LIS: an integration key
    assert api.client.post("/fhir/DiagnosticReport", json=dr(), headers=api.headers(key)).status_code == 201


def test_a_real_synthea_transaction_bundle(api: Api) -> None:
    bundle = json.loads(SYNTHEA.read_text())
    reports = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "DiagnosticReport"]
    r = post(api, bundle, "/fhir")
    assert r.status_code == 200, r.text[:500]
    answers = r.json()["entry"]
    where = [i for i, e in enumerate(bundle["entry"]) if e["resource"]["resourceType"] == "DiagnosticReport"]
    statuses = [answers[i]["response"]["status"] for i in where]
    assert statuses == ["201 Created"] * len(reports), [answers[i]["response"] for i in where][:3]
    pid = answers[0]["response"]["location"].split("/")[1]  # the Patient entry comes first
    listed = api.get(f"/patients/{pid}/reports", params={"limit": 200}).json()["items"]
    assert len(listed) == len(reports)
    with_results = sum(len(e["resource"].get("result") or []) for e in reports)
    assert counts() == (len(reports), with_results)
    resent = post(api, bundle, "/fhir").json()["entry"]
    assert {resent[i]["response"]["status"] for i in where} == {"200 OK"}
    assert counts() == (len(reports), with_results)
