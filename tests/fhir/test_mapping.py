"""The pure FHIR → event mapping (no database): codes, units, statuses, times,
provenance, appointment and questionnaire mapping, names and phones."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from carepoints.fhir_ingest import mapping
from carepoints.fhir_ingest.errors import FhirCodeError, MissingElementError, UnitError
from carepoints.fhir_ingest.mapping import Draft, Revoke, Skip
from carepoints.fhir_ingest.people import identifiers, is_deceased, name_of, phone_of
from carepoints.fhir_ingest.service import validate
from tests.fhir.support import bp_components

CST = ZoneInfo("Asia/Shanghai")
EXAMPLES = Path("/work/shared/testdata/fhir/examples")
NOW = datetime(2026, 6, 15, 2, 30, tzinfo=UTC)


def example(name: str) -> dict[str, Any]:
    return validate(json.loads((EXAMPLES / name).read_text()))


def bp(systolic: float = 128.4, diastolic: float = 81.5, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "resourceType": "Observation", "id": "bp1", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
        "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2026-06-14T08:00:00+08:00",
        "component": bp_components(systolic, diastolic)}
    doc.update(extra)
    return doc


def glucose(value: float, unit: str, code: str = "2339-0") -> dict[str, Any]:
    return {"resourceType": "Observation", "id": "g1", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": {"reference": "Patient/p1"}, "issued": "2026-06-14T08:00:00+08:00",
            "valueQuantity": {"value": value, "unit": unit, "code": unit}}


def test_blood_pressure_example_maps_to_a_clinic_measurement() -> None:
    got = mapping.observation(example("Observation-blood-pressure.json"), CST)
    assert isinstance(got, Draft)
    assert got.type == "health.measurement"
    assert got.attributes == {"kind": "blood_pressure", "provenance": "clinic", "systolic": 107, "diastolic": 60}
    assert got.occurred_at == datetime(2012, 9, 17, tzinfo=CST)  # a bare date: local midnight
    assert got.patient == {"reference": "Patient/example"}


def test_old_panel_code_rounds_half_up_and_keeps_a_pulse_component() -> None:
    doc = bp(120.5, 79.49)
    doc["code"]["coding"][0]["code"] = "55284-4"
    doc["component"].append({"code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                             "valueQuantity": {"value": 71.6, "unit": "/min"}})
    got = mapping.observation(doc, CST)
    assert isinstance(got, Draft)
    assert (got.attributes["systolic"], got.attributes["diastolic"], got.attributes["pulse"]) == (121, 79, 72)


@pytest.mark.parametrize(("extra", "provenance"), [
    ({}, "clinic"),
    ({"device": {"display": "home monitor"}}, "device"),
    ({"performer": [{"reference": "Patient/p1"}]}, "self_reported"),
    ({"performer": [{"reference": "Practitioner/d1"}]}, "clinic"),
])
def test_provenance(extra: dict[str, Any], provenance: str) -> None:
    got = mapping.observation(bp(**extra), CST)
    assert isinstance(got, Draft)
    assert got.attributes["provenance"] == provenance


@pytest.mark.parametrize(("value", "unit", "code", "mmol"), [
    (99, "mg/dL", "2339-0", 5.5), (126.0, "mg/dL", "2345-7", 7.0), (6.3, "mmol/L", "15074-8", 6.3),
    (5.55, "mmol/l", "14749-6", 5.55)])
def test_glucose_units(value: float, unit: str, code: str, mmol: float) -> None:
    got = mapping.observation(glucose(value, unit, code), CST)
    assert isinstance(got, Draft)
    assert got.attributes == {"kind": "blood_glucose", "provenance": "clinic", "glucose_mmol_l": mmol}


def test_glucose_in_an_unknown_unit_is_refused() -> None:
    with pytest.raises(UnitError):
        mapping.observation(glucose(5, "g/L"), CST)


def test_statuses() -> None:
    assert isinstance(mapping.observation(bp(status="cancelled"), CST), Revoke)
    assert isinstance(mapping.observation(bp(status="entered-in-error"), CST), Revoke)
    assert isinstance(mapping.observation(bp(status="preliminary"), CST), Skip)
    assert isinstance(mapping.observation(bp(status="amended"), CST), Draft)
    with pytest.raises(FhirCodeError):
        mapping.observation(bp(status="bogus"), CST)  # the FHIR models accept any code


def test_other_observations_and_absent_values_are_skipped() -> None:
    for name in ("Observation-bmi.json", "Observation-heart-rate.json", "Observation-body-temperature.json",
                 "Observation-vitals-panel.json"):
        got = mapping.observation(example(name), CST)
        assert isinstance(got, Skip), name
        assert got.code == "fhir.observation_unsupported"
    got = mapping.observation(example("Observation-blood-pressure-dar.json"), CST)
    assert isinstance(got, Skip)
    assert got.code == "fhir.value_absent"


def test_incomplete_blood_pressure_and_missing_time_are_errors() -> None:
    doc = bp()
    doc["component"] = doc["component"][:1]
    with pytest.raises(MissingElementError):
        mapping.observation(doc, CST)
    doc = bp()
    del doc["effectiveDateTime"]
    with pytest.raises(MissingElementError):
        mapping.observation(doc, CST)


def test_effective_period_and_issued_give_the_time() -> None:
    got = mapping.observation(example("Observation-f001.json"), CST)
    assert isinstance(got, Draft)
    assert got.occurred_at == datetime(2013, 4, 2, 8, 30, 10, tzinfo=UTC)
    assert got.attributes["glucose_mmol_l"] == 6.3
    assert isinstance(mapping.observation(glucose(5.0, "mmol/L"), CST), Draft)


def appt(status: str, **extra: Any) -> dict[str, Any]:
    doc = copy.deepcopy(example("Appointment-example.json"))
    doc["status"] = status
    doc.update(extra)
    return doc


def test_appointment_statuses() -> None:
    attended = mapping.appointment(appt("fulfilled"), CST, NOW)
    assert isinstance(attended, Draft)
    assert attended.type == "appointment.attended"
    assert attended.attributes == {"appointment_id": "example", "slot_start": "2013-12-10T09:00:00+00:00",
                                   "booked_at": "2013-10-10T00:00:00+08:00"}
    assert attended.patient == {"reference": "Patient/example", "display": "Peter James Chalmers"}
    no_show = mapping.appointment(appt("noshow"), CST, NOW)
    assert isinstance(no_show, Draft)
    assert (no_show.type, no_show.occurred_at) == ("appointment.no_show", datetime(2013, 12, 10, 9, tzinfo=UTC))
    checked = mapping.appointment(appt("checked-in"), CST, NOW)
    assert isinstance(checked, Draft)
    assert checked.type == "appointment.checked_in"
    assert checked.attributes["checked_in_at"] == NOW.isoformat()
    assert isinstance(mapping.appointment(appt("booked"), CST, NOW), Skip)
    assert isinstance(mapping.appointment(appt("entered-in-error"), CST, NOW), Revoke)
    with pytest.raises(FhirCodeError):
        mapping.appointment(appt("bogus"), CST, NOW)
    no_start = appt("fulfilled")
    del no_start["start"]
    with pytest.raises(MissingElementError):
        mapping.appointment(no_start, CST, NOW)
    no_created = appt("fulfilled")
    del no_created["created"]
    got = mapping.appointment(no_created, CST, NOW)
    assert isinstance(got, Draft)
    assert got.attributes["booked_at"] == got.attributes["slot_start"]  # unknown booking time: no book-ahead


@pytest.mark.parametrize(("reason", "by"), [(None, "patient"), ("pat", "patient"), ("pat-crs", "patient"),
                                            ("prov", "hospital"), ("oth-cms", "hospital"), ("maint", "hospital"),
                                            ("oth-weath", "patient")])
def test_cancellation_side(reason: str | None, by: str) -> None:
    extra = {"cancelationReason": {"coding": [{"code": reason}]}} if reason else {}
    got = mapping.appointment(appt("cancelled", **extra), CST, NOW)
    assert isinstance(got, Draft)
    assert got.attributes["by"] == by
    assert got.attributes["cancelled_at"] == NOW.isoformat()


def test_questionnaire_responses() -> None:
    got = mapping.questionnaire_response(example("QuestionnaireResponse-gcs.json"), CST)
    assert isinstance(got, Draft)
    assert got.type == "survey.completed"
    assert got.attributes == {"survey_id": "Questionnaire/gcs", "period": "2014-12"}
    incomplete = mapping.questionnaire_response(example("QuestionnaireResponse-ussg-fht-answers.json"), CST)
    assert isinstance(incomplete, Skip)
    f201 = mapping.questionnaire_response(example("QuestionnaireResponse-f201.json"), CST)
    assert isinstance(f201, Draft)
    assert f201.attributes["survey_id"] == "QuestionnaireResponse/f201"  # no questionnaire named


def test_encounters_discharges_become_events_visits_are_acknowledged() -> None:
    undated = mapping.encounter(example("Encounter-f001.json"), CST)  # a discharge without period.end
    assert isinstance(undated, Skip)
    assert undated.code == "fhir.discharge_undated"
    other = mapping.encounter(example("Encounter-home.json"), CST)
    assert isinstance(other, Skip)
    assert other.code == "fhir.encounter_not_scored"
    stay = {**example("Encounter-f001.json"), "id": "stay1",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
            "period": {"start": "2026-06-01T09:00:00+08:00", "end": "2026-06-10T15:30:00+08:00"}}
    got = mapping.encounter(stay, CST)
    assert isinstance(got, Draft)
    assert got.type == "encounter.discharged"
    assert got.attributes["encounter_id"] == "stay1"
    assert got.attributes["discharged_at"] == "2026-06-10T15:30:00+08:00"
    assert got.attributes["disposition"] == "306689006"  # SNOMED: discharge to home
    assert got.patient == {"reference": "Patient/f001", "display": "P. van de Heuvel"}
    assert mapping.encounter({**stay, "status": "in-progress"}, CST) == Skip(
        "fhir.encounter_not_scored", "就诊记录不产生事件 / Encounters record no event")
    assert mapping.encounter({**stay, "status": "entered-in-error"}, CST) == Revoke("entered-in-error")


def test_content_hash_ignores_last_updated_only() -> None:
    a = bp(meta={"versionId": "1", "lastUpdated": "2026-06-14T08:00:00Z"})
    b = bp(meta={"versionId": "1", "lastUpdated": "2026-06-15T08:00:00Z"})
    c = bp(meta={"versionId": "2", "lastUpdated": "2026-06-15T08:00:00Z"})
    assert mapping.content_hash(a) == mapping.content_hash(b)
    assert mapping.content_hash(a) != mapping.content_hash(c)


def test_names_phones_and_identifiers() -> None:
    assert name_of({"name": [{"family": "张", "given": ["三丰"]}]}) == "张三丰"
    assert name_of({"name": [{"use": "usual", "given": ["Jim"]},
                             {"use": "official", "family": "Chalmers", "given": ["Peter", "James"]}]}) \
        == "Chalmers Peter James"
    assert name_of({"name": [{"text": "王小明", "family": "王"}]}) == "王小明"
    assert name_of({}) is None
    assert phone_of({"telecom": [{"system": "email", "value": "a@b.c"},
                                 {"system": "phone", "value": "(03) 5555 6473", "use": "work"},
                                 {"system": "phone", "value": "+86 138-0013-8000", "use": "mobile"}]}) \
        == "+8613800138000"
    assert phone_of({"telecom": [{"system": "phone", "value": "n/a"}]}) is None
    pat = example("Patient-f201.json")
    assert identifiers(pat, "urn:x") == [("urn:oid:2.16.840.1.113883.2.4.6.3", "123456789"), ("urn:x", "f201")]
    assert not is_deceased(pat)
    assert is_deceased({"deceasedDateTime": "2021-03-31T07:25:49+02:00"})
    assert is_deceased({"deceasedBoolean": True})


def test_huge_values_reach_the_plausibility_check_as_numbers() -> None:
    got = mapping.observation(bp(1e308, -1e300), CST)
    assert isinstance(got, Draft)
    assert (got.attributes["systolic"], got.attributes["diastolic"]) == (100_000, -100_000)
