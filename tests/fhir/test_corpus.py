"""Every file of the shared FHIR test corpus (/work/shared/testdata/fhir: the HL7 R4
examples and both Synthea folders) posted where it belongs, never answered with a 5xx,
with the expected events for the known ones; Synthea patients enrolled and earning per
the default programme. The whole corpus runs on SQLite; a smoke subset on PostgreSQL."""

from __future__ import annotations

import copy
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from carepoints.enrolment import service as enrolment
from carepoints.kit.db import read_tx
from carepoints.kit.time import utc_now
from tests.fhir.support import DATA, SYNTHEA, codes, entry_codes, events_of, load, post

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]

BP = {"85354-9", "55284-4"}
GLUCOSE = {"2339-0", "2345-7", "15074-8", "14749-6"}
BRENT = SYNTHEA / "smart-on-fhir-generated-sample-data-R4" / "Brent_Beer_7dc94cc0-8c2e-4835-9994-cecbe894bcbf.json"
FLOYD = SYNTHEA / "smart-on-fhir-generated-sample-data-R4" / "Floyd_Connelly_66843218-a9f9-4f16-8347-bdc2a0d14265.json"
DECEASED = SYNTHEA / "samply-blaze-synthea-2.7.0" / "2b208315-4cc4-3d52-e597-a03509645859.json"


def _files() -> list[Path]:
    files = sorted(p for p in DATA.rglob("*") if p.is_file())
    # the examples' Patients first, so that the examples referring to them can be matched
    return sorted(files, key=lambda p: (not p.name.startswith("Patient-"), str(p)))


def _loinc(obs: dict[str, Any]) -> set[str]:
    return {c.get("code") for c in obs.get("code", {}).get("coding", [])}


def _observations(bundle: dict[str, Any], wanted: set[str]) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"
            and _loinc(e["resource"]) & wanted and e["resource"]["status"] == "final"]


def _patient_entry(bundle: dict[str, Any], body: dict[str, Any]) -> str:
    """The carepoints id of the Bundle's Patient, from its response entry."""
    i = next(i for i, e in enumerate(bundle["entry"]) if e["resource"]["resourceType"] == "Patient")
    response = body["entry"][i]["response"]
    assert response["status"] in ("201 Created", "200 OK"), response
    return str(response["location"].rsplit("/", 1)[1])


def _by_id(pid: str) -> dict[str, dict[str, Any]]:
    return {e["source_event_id"].split("/")[1]: e for e in events_of(patient_id=pid) if e["source"] == "fhir"}


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_every_corpus_file(api: Api) -> None:
    files = _files()
    assert len(files) == 65
    seen: dict[str, tuple[int, dict[str, Any]]] = {}
    for path in files:
        if path.suffix != ".json":
            r = api.client.post("/fhir", content=path.read_bytes(), headers=api.headers())
        else:
            doc = load(path)
            r = post(api, doc)
            if r.status_code == 200 and r.json().get("resourceType") == "Bundle":
                body = r.json()
                assert len(body["entry"]) == len(doc["entry"]), path.name
                statuses = Counter(int(e["response"]["status"][:3]) for e in body["entry"])
                assert max(statuses) < 500, (path.name, statuses)
        assert r.status_code < 500, (path.name, r.text[:500])
        assert r.json()["resourceType"] in ("OperationOutcome", "Bundle"), path.name
        seen[str(path.relative_to(DATA))] = (r.status_code, r.json())

    def status(name: str) -> int:
        return seen[name][0]

    assert status("examples/SOURCE.md") == 422
    assert status("examples/package.json") == 422
    assert (status("examples/Questionnaire-qs1.json"), codes(seen["examples/Questionnaire-qs1.json"][1])) == (
        422, ["fhir.invalid"])
    for name in ("Patient-example", "Patient-f001", "Patient-f201"):
        assert status(f"examples/{name}.json") == 201, name
    for name in ("Patient-glossy", "Patient-pat1", "Patient-newborn", "Patient-animal"):
        assert codes(seen[f"examples/{name}.json"][1]) == ["fhir.patient_incomplete"], name  # no phone to enrol
    assert status("examples/Bundle-bundle-response.json") == 400
    # the known readings became events with the right values
    [bp] = events_of("Observation/blood-pressure/")
    assert (bp["type"], bp["status"]) == ("health.measurement", "accepted")
    assert bp["attributes"] == {"kind": "blood_pressure", "provenance": "clinic", "systolic": 107, "diastolic": 60}
    [glucose] = events_of("Observation/f001/")
    assert glucose["attributes"] == {"kind": "blood_glucose", "provenance": "clinic", "glucose_mmol_l": 6.3}
    assert codes(seen["examples/Observation-bmi.json"][1]) == ["fhir.observation_unsupported"]
    assert codes(seen["examples/Observation-blood-pressure-dar.json"][1]) == ["fhir.value_absent"]
    assert codes(seen["examples/Encounter-f001.json"][1]) == ["fhir.discharge_undated"]
    assert status("examples/QuestionnaireResponse-f201.json") == 201
    assert status("examples/QuestionnaireResponse-bb.json") == 404  # an absolute reference to another server

    # every Synthea patient bundle: the patient enrolled (consent source institution), each final BP panel
    # and glucose reading one health.measurement, glucose in mg/dL converted to mmol/L
    for path in sorted(SYNTHEA.rglob("*.json")):
        bundle = load(path)
        if not any(e["resource"]["resourceType"] == "Patient" for e in bundle["entry"]):
            assert {entry_codes(e)[0] for e in seen[str(path.relative_to(DATA))][1]["entry"]} == {"fhir.unsupported"}
            continue
        pid = _patient_entry(bundle, seen[str(path.relative_to(DATA))][1])
        with read_tx() as session:
            doc = enrolment.patient(session, pid, reveal_pii=False)
        assert {c["source"] for c in doc["consents"]} <= {"institution"}  # type: ignore[attr-defined]
        events = _by_id(pid)
        pressures, sugars = _observations(bundle, BP), _observations(bundle, GLUCOSE)
        assert len(events) == len(pressures) + len(sugars), path.name
        for obs in pressures:
            attrs = events[obs["id"]]["attributes"]
            assert attrs["kind"] == "blood_pressure"
            parts = {c["code"]["coding"][0]["code"]: c["valueQuantity"]["value"] for c in obs["component"]}
            assert abs(attrs["systolic"] - parts["8480-6"]) <= 0.5
            assert abs(attrs["diastolic"] - parts["8462-4"]) <= 0.5
            assert attrs["provenance"] == "clinic"  # measured at an encounter
        for obs in sugars:
            assert obs["valueQuantity"]["unit"] == "mg/dL"
            assert events[obs["id"]]["attributes"]["glucose_mmol_l"] == round(obs["valueQuantity"]["value"] / 18, 1)
        # the readings are years old and taken at the clinic: recorded, not rewarded
        assert api.balance(pid) == (0 if path == DECEASED else 100)

    # a Synthea bundle sent again: every entry is a duplicate or information, nothing changes
    before = len(events_of("Observation/"))
    body = post(api, load(BRENT)).json()
    assert {e["response"]["status"] for e in body["entry"]} == {"200 OK"}
    assert len(events_of("Observation/")) == before


def _recent_self_monitoring(bundle: dict[str, Any]) -> dict[str, Any]:
    """The bundle with its BP panels moved to the last days and taken by a home device."""
    doc = copy.deepcopy(bundle)
    now = utc_now()
    for i, obs in enumerate(_observations(doc, BP)):
        obs["effectiveDateTime"] = (now - timedelta(days=i + 1)).isoformat()
        obs.pop("issued", None)
        obs["device"] = {"display": "home blood pressure monitor"}
    return doc


@pytest.mark.parametrize("path", [BRENT, FLOYD], ids=["brent", "floyd"])
def test_synthea_patient_earns_per_the_default_programme(api: Api, path: Path) -> None:
    bundle = _recent_self_monitoring(load(path))
    pressures = _observations(bundle, BP)
    assert len(pressures) == 4
    body = post(api, bundle).json()
    pid = _patient_entry(bundle, body)
    expected = 100 + 50 + 10 * len(pressures)  # welcome, first check-in, one check-in a day
    assert api.balance(pid) == expected
    rules = Counter(e["rule"] for e in api.entries(pid))
    assert rules["health_checkin"] == len(pressures)
    assert rules["first_checkin"] == 1
    # resent: duplicates, no double points
    again = post(api, bundle).json()
    assert {e["response"]["status"] for e in again["entry"]} == {"200 OK"}
    assert api.balance(pid) == expected
    # a new version of one reading revokes the previous version's event (and its award) and earns again
    newer = copy.deepcopy(bundle)
    target = _observations(newer, BP)[0]
    target["meta"] = {"versionId": "2"}
    target["component"][0]["valueQuantity"]["value"] += 1
    post(api, newer)
    versions = events_of(f"Observation/{target['id']}/")
    assert [v["status"] for v in versions] == ["revoked", "accepted"]
    assert api.balance(pid) == expected
    assert any(e["kind"] == "reversal" or e["points"] < 0 for e in api.entries(pid))


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_deceased_synthea_patient(api: Api) -> None:
    bundle = _recent_self_monitoring(load(DECEASED))
    pid = _patient_entry(bundle, post(api, bundle).json())
    with read_tx() as session:
        doc = enrolment.patient(session, pid, reveal_pii=False)
    assert doc["status"] == "deceased"
    assert api.balance(pid) == 0
    assert len(_by_id(pid)) == len(_observations(bundle, BP)) + len(_observations(bundle, GLUCOSE))


def test_the_cancel_example_revokes(api: Api) -> None:
    assert post(api, load("Patient-example.json")).status_code == 201
    cancel = load("Observation-blood-pressure-cancel.json")
    final = dict(copy.deepcopy(cancel), status="final")  # the reading as first sent, before it was cancelled
    for part, value in zip(final["component"], (118, 76), strict=True):
        del part["dataAbsentReason"]
        part["valueQuantity"] = {"value": value, "unit": "mmHg", "system": "http://unitsofmeasure.org",
                                 "code": "mm[Hg]"}
    assert post(api, final).status_code == 201
    [ev] = events_of("Observation/blood-pressure-cancel/")
    assert ev["status"] == "accepted"
    r = post(api, cancel)
    assert r.status_code == 200
    assert codes(r.json()) == ["fhir.revoked"]
    [ev] = events_of("Observation/blood-pressure-cancel/")
    assert ev["status"] == "revoked"
