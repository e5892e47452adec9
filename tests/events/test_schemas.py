"""Event validation (API.md "Event"): every type with its required attributes,
offsets required on every timestamp, attribute timestamps stored in UTC."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from carepoints.events.schemas import EventIn, parse_event
from carepoints.kit.errors import ValidationFailedError
from carepoints.rules.programme import EVENT_TYPES

SLOT = "2026-06-15T10:00:00+08:00"
SLOT_UTC = "2026-06-15T02:00:00+00:00"
BOOKED = "2026-06-10T20:30:00+08:00"
BOOKED_UTC = "2026-06-10T12:30:00+00:00"

# the required attributes of each type (API.md), as a client sends them
VALID: dict[str, dict[str, Any]] = {
    "account.registered": {},
    "appointment.booked": {"appointment_id": "A1", "slot_start": SLOT, "booked_at": BOOKED},
    "appointment.cancelled": {"appointment_id": "A1", "slot_start": SLOT, "cancelled_at": BOOKED, "by": "patient"},
    "appointment.checked_in": {"appointment_id": "A1", "slot_start": SLOT, "checked_in_at": BOOKED},
    "appointment.attended": {"appointment_id": "A1", "slot_start": SLOT, "booked_at": BOOKED},
    "appointment.no_show": {"appointment_id": "A1", "slot_start": SLOT},
    "exam.attended": {"exam_id": "X1", "modality": "CT", "slot_start": SLOT},
    "selfservice.used": {"action": "print_report"},
    "health.measurement": {"kind": "blood_pressure", "systolic": 128, "diastolic": 82, "provenance": "device"},
    "medication.taken": {"plan_id": "M1"},
    "education.completed": {"content_id": "C1", "score": 80, "pass_mark": 60},
    "lecture.attended": {"lecture_id": "L1"},
    "review.submitted": {"appointment_id": "A1", "rating": 5, "text": "很好"},
    "survey.completed": {"survey_id": "S1", "period": "2026-06"},
    "followup.completed": {"plan_id": "F1", "step": 2, "kind": "rehab", "channel": "phone"},
    "profile.item_completed": {"item": "allergies"},
    "referral.visit": {"referral_id": "R1", "from_institution": "社区卫生服务中心"},
    "public_health.completed": {"programme": "elderly_checkup", "item": "2026"},
    "photo.checkin": {"task_id": "T1", "photo_id": "P1"},
    "community.post_approved": {"post_id": "P1"},
    "invite.completed": {"invitee_id": "I1"},
    "conduct.violation": {"reason": "插队", "staff_id": "N7"},
    "staff.offline_entry": {"behaviour": "medication.taken", "attributes": {"plan_id": "M1"},
                            "sheet_ref": "SHEET-7", "staff_id": "N7"},
    "lab.critical_value": {"test": "K+", "value": 6.8, "unit": "mmol/L"},
    "encounter.discharged": {"encounter_id": "ENC-1", "discharged_at": BOOKED},
}

# what parse_event stores for them (timestamps in UTC)
STORED: dict[str, dict[str, Any]] = {
    **VALID,
    "encounter.discharged": {"encounter_id": "ENC-1", "discharged_at": BOOKED_UTC},
    "appointment.booked": {"appointment_id": "A1", "slot_start": SLOT_UTC, "booked_at": BOOKED_UTC},
    "appointment.cancelled": {"appointment_id": "A1", "slot_start": SLOT_UTC, "cancelled_at": BOOKED_UTC,
                              "by": "patient"},
    "appointment.checked_in": {"appointment_id": "A1", "slot_start": SLOT_UTC, "checked_in_at": BOOKED_UTC},
    "appointment.attended": {"appointment_id": "A1", "slot_start": SLOT_UTC, "booked_at": BOOKED_UTC},
    "appointment.no_show": {"appointment_id": "A1", "slot_start": SLOT_UTC},
    "exam.attended": {"exam_id": "X1", "modality": "CT", "slot_start": SLOT_UTC},
    "education.completed": {"content_id": "C1", "score": 80.0, "pass_mark": 60.0},
}

REQUIRED: dict[str, tuple[str, ...]] = {
    "account.registered": (),
    "appointment.booked": ("appointment_id", "slot_start", "booked_at"),
    "appointment.cancelled": ("appointment_id", "slot_start", "cancelled_at", "by"),
    "appointment.checked_in": ("appointment_id", "slot_start", "checked_in_at"),
    "appointment.attended": ("appointment_id", "slot_start", "booked_at"),
    "appointment.no_show": ("appointment_id", "slot_start"),
    "exam.attended": ("exam_id", "modality", "slot_start"),
    "selfservice.used": ("action",),
    "health.measurement": ("kind", "provenance"),
    "medication.taken": ("plan_id",),
    "education.completed": ("content_id", "score", "pass_mark"),
    "lecture.attended": ("lecture_id",),
    "review.submitted": ("appointment_id", "rating", "text"),
    "survey.completed": ("survey_id", "period"),
    "followup.completed": ("plan_id", "step", "kind", "channel"),
    "profile.item_completed": ("item",),
    "referral.visit": ("referral_id", "from_institution"),
    "public_health.completed": ("programme", "item"),
    "photo.checkin": ("task_id", "photo_id"),
    "community.post_approved": ("post_id",),
    "invite.completed": ("invitee_id",),
    "conduct.violation": ("reason", "staff_id"),
    "staff.offline_entry": ("behaviour", "attributes", "sheet_ref", "staff_id"),
    "lab.critical_value": ("test", "value", "unit"),
    "encounter.discharged": ("encounter_id", "discharged_at"),
}


def raw(etype: str, attributes: dict[str, Any] | None = None, **envelope: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": etype, "patient": {"id": "p1"}, "occurred_at": "2026-06-15T10:30:00+08:00",
        "source": "his", "source_event_id": "E-1",
        "attributes": copy.deepcopy(VALID[etype]) if attributes is None else attributes}
    body.update(envelope)
    return body


def rejected(body: Any) -> ValidationFailedError:
    with pytest.raises(ValidationFailedError) as info:
        parse_event(body)
    assert info.value.code == "request.invalid"
    assert info.value.status_code == 422
    return info.value


def locs(error: ValidationFailedError) -> list[list[str | int]]:
    return [f["loc"] for f in error.fields or []]


def with_attrs(etype: str, **changes: Any) -> dict[str, Any]:
    attrs = copy.deepcopy(VALID[etype])
    attrs.update(changes)
    return attrs


def test_the_tables_cover_every_event_type() -> None:
    assert set(VALID) == set(EVENT_TYPES) == set(REQUIRED) == set(STORED)
    assert len(EVENT_TYPES) == 25


@pytest.mark.parametrize("etype", sorted(VALID))
def test_every_event_type_is_accepted_with_its_required_attributes(etype: str) -> None:
    event = parse_event(raw(etype))
    assert isinstance(event, EventIn)
    assert event.type == etype
    assert event.patient.id == "p1"
    assert event.occurred_at == datetime(2026, 6, 15, 2, 30, tzinfo=UTC)
    assert event.occurred_at.utcoffset() is not None
    assert (event.source, event.source_event_id) == ("his", "E-1")
    assert event.attributes == STORED[etype]


@pytest.mark.parametrize(("etype", "attr"), [(t, a) for t, attrs in sorted(REQUIRED.items()) for a in attrs])
def test_a_missing_required_attribute_is_rejected(etype: str, attr: str) -> None:
    attrs = copy.deepcopy(VALID[etype])
    del attrs[attr]
    error = rejected(raw(etype, attrs))
    assert ["attributes", attr] in locs(error)


@pytest.mark.parametrize("etype", ["appointment.rescheduled", "", "health", "Health.Measurement"])
def test_unknown_event_types_are_rejected(etype: str) -> None:
    body = raw("account.registered")
    body["type"] = etype
    error = rejected(body)
    assert error.fields == [{"loc": ["type"], "msg": "unknown event type"}]


def test_a_non_object_is_rejected() -> None:
    for body in ([], "event", None, 3):
        assert rejected(body).fields is None


@pytest.mark.parametrize("occurred_at", ["2026-06-15T10:30:00", "2026-06-15 10:30:00", "2026-06-15", "yesterday"])
def test_occurred_at_needs_an_offset(occurred_at: str) -> None:
    assert locs(rejected(raw("lecture.attended", occurred_at=occurred_at))) == [["occurred_at"]]


@pytest.mark.parametrize(("etype", "attr"), [
    ("appointment.booked", "slot_start"),
    ("appointment.booked", "booked_at"),
    ("appointment.cancelled", "cancelled_at"),
    ("appointment.checked_in", "checked_in_at"),
    ("appointment.attended", "slot_start"),
    ("appointment.no_show", "slot_start"),
    ("exam.attended", "slot_start"),
])
def test_attribute_timestamps_need_an_offset(etype: str, attr: str) -> None:
    error = rejected(raw(etype, with_attrs(etype, **{attr: "2026-06-15T10:00:00"})))
    assert locs(error) == [["attributes", attr]]


def test_optional_attribute_timestamps_need_an_offset_too() -> None:
    attended = with_attrs("appointment.attended", checked_in_at="2026-06-15T09:55:00")
    assert locs(rejected(raw("appointment.attended", attended))) == [["attributes", "checked_in_at"]]
    medication = with_attrs("medication.taken", scheduled_for="2026-06-15T08:00:00")
    assert locs(rejected(raw("medication.taken", medication))) == [["attributes", "scheduled_for"]]


def test_attribute_timestamps_are_normalised_to_utc() -> None:
    attrs = {"appointment_id": "A1", "slot_start": "2026-06-15T00:30:00+08:00", "booked_at": "2026-06-01T23:00:00Z",
             "checked_in_at": "2026-06-14T12:20:00-04:00", "booked_by": "clinician"}
    event = parse_event(raw("appointment.attended", attrs))
    assert event.attributes == {
        "appointment_id": "A1", "slot_start": "2026-06-14T16:30:00+00:00", "booked_at": "2026-06-01T23:00:00+00:00",
        "checked_in_at": "2026-06-14T16:20:00+00:00", "booked_by": "clinician"}
    med = parse_event(raw("medication.taken", {"plan_id": "M1", "scheduled_for": "2026-06-15T08:00:00+08:00"}))
    assert med.attributes == {"plan_id": "M1", "scheduled_for": "2026-06-15T00:00:00+00:00"}


def test_extra_attributes_are_kept_and_absent_optionals_left_out() -> None:
    attrs = with_attrs("appointment.booked", department="心内科", channel="kiosk", booked_by=None,
                       tags=["new", {"n": 1}], note_at="2026-06-15T10:00:00")
    event = parse_event(raw("appointment.booked", attrs))
    # unlisted attributes are kept as sent (an unlisted timestamp is not parsed)
    assert event.attributes == {**STORED["appointment.booked"], "department": "心内科", "channel": "kiosk",
                                "tags": ["new", {"n": 1}], "note_at": "2026-06-15T10:00:00"}


@pytest.mark.parametrize("extra", [{"extra": 1}, {"revoked": True}, {"off_peak": True}])
def test_extra_envelope_keys_are_rejected(extra: dict[str, Any]) -> None:
    body = raw("lecture.attended")
    body.update(extra)
    assert locs(rejected(body)) == [[next(iter(extra))]]


@pytest.mark.parametrize(("patient", "ok"), [
    ({"id": "p1"}, True),
    ({"system": "urn:his:mrn", "value": "MRN-001"}, True),
    ({"system": "urn:his:mrn"}, False),
    ({"value": "MRN-001"}, False),
    ({}, False),
    ({"id": "p1", "name": "张三"}, False),
    ({"id": "x" * 65}, False),
])
def test_patient_reference_forms(patient: dict[str, Any], ok: bool) -> None:
    body = raw("lecture.attended", patient=patient)
    if ok:
        assert parse_event(body).patient.model_dump(exclude_none=True) == patient
    else:
        assert locs(rejected(body))[0][0] == "patient"


@pytest.mark.parametrize(("field", "missing"), [
    ("source", None), ("source_event_id", None), ("source", ""), ("source_event_id", ""),
    ("source", "s" * 101), ("source_event_id", "e" * 201)])
def test_source_and_source_event_id_are_required(field: str, missing: str | None) -> None:
    body = raw("lecture.attended")
    if missing is None:
        del body[field]
    else:
        body[field] = missing
    assert locs(rejected(body)) == [[field]]


@pytest.mark.parametrize(("changes", "ok"), [
    ({"systolic": 50, "diastolic": 30}, True),
    ({"systolic": 300, "diastolic": 200}, True),
    ({"systolic": 49}, False),
    ({"systolic": 301}, False),
    ({"diastolic": 29}, False),
    ({"diastolic": 201}, False),
    ({"systolic": 120, "diastolic": 120}, False),  # the diastolic value is below the systolic one
    ({"pulse": 30}, True),
    ({"pulse": 29}, False),
    ({"pulse": 251}, False),
    ({"systolic": None}, False),  # blood pressure needs both values
    ({"diastolic": None}, False),
    ({"provenance": "hospital"}, False),
    ({"kind": "weight"}, False),
])
def test_blood_pressure_ranges(changes: dict[str, Any], ok: bool) -> None:
    attrs = with_attrs("health.measurement", **changes)
    attrs = {k: v for k, v in attrs.items() if v is not None}
    body = raw("health.measurement", attrs)
    if ok:
        assert parse_event(body).attributes == attrs
    else:
        error = rejected(body)
        assert all(loc[0] == "attributes" for loc in locs(error))


@pytest.mark.parametrize(("glucose", "ok"), [(1.1, True), (33.3, True), (1.09, False), (33.31, False), (None, False)])
def test_glucose_range(glucose: float | None, ok: bool) -> None:
    attrs: dict[str, Any] = {"kind": "blood_glucose", "provenance": "self_reported"}
    if glucose is not None:
        attrs["glucose_mmol_l"] = glucose
    body = raw("health.measurement", attrs)
    if ok:
        assert parse_event(body).attributes["glucose_mmol_l"] == glucose
    else:
        rejected(body)


@pytest.mark.parametrize(("period", "ok"), [
    ("2026-01", True), ("2026-12", True), ("2026-13", False), ("2026-00", False), ("2026-6", False),
    ("202606", False), ("2026-06-01", False), ("26-06", False), ("", False)])
def test_survey_period_is_year_month(period: str, ok: bool) -> None:
    body = raw("survey.completed", with_attrs("survey.completed", period=period))
    if ok:
        assert parse_event(body).attributes["period"] == period
    else:
        assert locs(rejected(body)) == [["attributes", "period"]]


@pytest.mark.parametrize(("etype", "changes", "loc"), [
    ("review.submitted", {"rating": 0}, "rating"),
    ("review.submitted", {"rating": 6}, "rating"),
    ("review.submitted", {"text": "字" * 5001}, "text"),
    ("education.completed", {"score": -1}, "score"),
    ("appointment.cancelled", {"by": "clinician"}, "by"),
    ("appointment.booked", {"booked_by": "robot"}, "booked_by"),
    ("selfservice.used", {"action": "dance"}, "action"),
    ("followup.completed", {"kind": "other"}, "kind"),
    ("followup.completed", {"channel": "fax"}, "channel"),
    ("public_health.completed", {"programme": "dental"}, "programme"),
    ("conduct.violation", {"reason": ""}, "reason"),
    ("lecture.attended", {"lecture_id": ""}, "lecture_id"),
    ("lecture.attended", {"lecture_id": "L" * 201}, "lecture_id"),
])
def test_attribute_values_are_checked(etype: str, changes: dict[str, Any], loc: str) -> None:
    error = rejected(raw(etype, with_attrs(etype, **changes)))
    assert ["attributes", loc] in locs(error)


def test_offline_entry_validates_and_normalises_the_nested_behaviour() -> None:
    attrs = {"behaviour": "appointment.attended", "sheet_ref": "SHEET-7", "staff_id": "N7",
             "attributes": {"appointment_id": "A1", "slot_start": SLOT, "booked_at": BOOKED, "ward": "3B"}}
    event = parse_event(raw("staff.offline_entry", attrs))
    assert event.attributes == {"behaviour": "appointment.attended", "sheet_ref": "SHEET-7", "staff_id": "N7",
                                "attributes": {"appointment_id": "A1", "slot_start": SLOT_UTC,
                                               "booked_at": BOOKED_UTC, "ward": "3B"}}


@pytest.mark.parametrize(("nested", "loc"), [
    ({}, ["attributes", "attributes", "plan_id"]),
    ({"plan_id": ""}, ["attributes", "attributes", "plan_id"]),
    ({"plan_id": "M1", "scheduled_for": "2026-06-15T08:00:00"}, ["attributes", "attributes", "scheduled_for"]),
])
def test_offline_entry_rejects_bad_nested_attributes(nested: dict[str, Any], loc: list[str]) -> None:
    attrs = with_attrs("staff.offline_entry", attributes=nested)
    assert locs(rejected(raw("staff.offline_entry", attrs))) == [loc]


def test_offline_entry_checks_nested_measurement_ranges() -> None:
    attrs = with_attrs("staff.offline_entry", behaviour="health.measurement", attributes={
        "kind": "blood_pressure", "systolic": 320, "diastolic": 80, "provenance": "self_reported"})
    assert locs(rejected(raw("staff.offline_entry", attrs))) == [["attributes", "attributes", "systolic"]]


@pytest.mark.parametrize("behaviour", ["staff.offline_entry", "lab.critical_value", "appointment.moved", ""])
def test_offline_entry_needs_a_known_scorable_behaviour(behaviour: str) -> None:
    attrs = with_attrs("staff.offline_entry", behaviour=behaviour, attributes={})
    error = rejected(raw("staff.offline_entry", attrs))
    assert error.fields == [{"loc": ["attributes", "behaviour"], "msg": "unknown behaviour"}]


def test_offline_entry_needs_an_object_of_attributes() -> None:
    attrs = with_attrs("staff.offline_entry", attributes=["plan_id", "M1"])
    assert locs(rejected(raw("staff.offline_entry", attrs))) == [["attributes", "attributes"]]
