"""Institution scope of the alliance (医联体): bound keys and staff reach their institutions'
patients only; unbound keys and admins reach the whole alliance."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from carepoints.kit.db import read_tx
from carepoints.kit.time import utc_now
from carepoints.patients.models import PatientInstitution
from tests.alliance.conftest import SYS_A, SYS_B, bound_key
from tests.fhir.support import bp as fhir_bp
from tests.fhir.support import post as fhir_post
from tests.helpers import bp, error

if TYPE_CHECKING:
    from tests.alliance.conftest import Alliance
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]

PASSWORD = "correct horse battery"


def _links(pid: str) -> set[str]:
    with read_tx() as session:
        return set(session.execute(select(PatientInstitution.institution_id)
                                   .where(PatientInstitution.patient_id == pid)).scalars())


def _reading(api: Api, patient: dict[str, Any], **attrs: Any) -> dict[str, Any]:
    return {"type": "health.measurement", "patient": patient,
            "occurred_at": (api.now() - timedelta(hours=1)).isoformat(), "source": "his",
            "source_event_id": uuid.uuid4().hex, "attributes": {**bp(), **attrs}}


def _staff_token(api: Api, username: str, role: str, institution: str | None, *, alliance_wide: bool = False) -> str:
    from carepoints.kit.db import write_tx
    from carepoints.kit.time import utc_now
    from carepoints.security import service as security

    with write_tx() as session:
        security.create_staff(session, username, PASSWORD, role, utc_now(), institution_id=institution,
                              alliance_wide=alliance_wide)
    r = api.client.post("/api/v1/auth/token", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


# --- alliances and institutions ----------------------------------------------------------

def test_alliance_lists_its_institutions_and_systems(api: Api, alliance: Alliance) -> None:
    r = api.get("/alliances")
    assert r.status_code == 200, r.text
    [doc] = r.json()["items"]
    assert doc["code"] == "north"
    assert [i["code"] for i in doc["institutions"]] == ["A", "B"]
    assert api.get(f"/institutions/{alliance.a}/systems").json() == {"items": [SYS_A]}
    again = api.post(f"/institutions/{alliance.a}/systems", {"system": SYS_A})
    assert again.status_code == 200
    assert again.json()["created"] is False
    error(api.post(f"/institutions/{alliance.b}/systems", {"system": SYS_A}), 409, "alliance.system_taken")
    error(api.post(f"/institutions/{uuid.uuid4()}/systems", {"system": "urn:x"}), 404,
          "scheduling.institution_not_found")
    error(api.post("/alliances", {"code": "north", "name_zh": "重复", "name_en": "dup"}), 409, "alliance.code_taken")
    error(api.post("/alliances", {"code": "south", "name_zh": "南区", "name_en": "South", "institutions": ["Z"]}),
          404, "scheduling.institution_not_found")


def test_setting_up_the_alliance_is_the_admins(api: Api, alliance: Alliance) -> None:
    error(api.post("/alliances", {"code": "s", "name_zh": "南", "name_en": "S"}, key=alliance.key_a),
          403, "auth.forbidden")
    error(api.post(f"/institutions/{alliance.a}/systems", {"system": "urn:y"}, key=alliance.key_a),
          403, "auth.forbidden")


# --- patients ↔ institutions -------------------------------------------------------------

def test_enrolment_by_a_bound_key_links_the_patient(alliance: Alliance) -> None:
    assert _links(alliance.pa) == {alliance.a}
    assert _links(alliance.pb) == {alliance.b}


def test_an_external_id_of_an_institutions_system_links_the_patient(api: Api, alliance: Alliance) -> None:
    pid = api.enrol(external_ids=[{"system": SYS_B, "value": "B-77"}])  # unbound admin key
    assert _links(pid) == {alliance.b}
    assert _links(api.enrol()) == set()


def test_registering_a_system_links_the_patients_holding_its_ids(api: Api, alliance: Alliance) -> None:
    holders = [api.enrol(external_ids=[{"system": "urn:centre-c:mrn", "value": f"C-{i}"}]) for i in range(2)]
    other = api.enrol(external_ids=[{"system": "urn:elsewhere", "value": "X-1"}])
    r = api.post(f"/institutions/{alliance.b}/systems", {"system": "urn:centre-c:mrn"})
    assert r.status_code == 201, r.text
    assert r.json()["linked_patients"] == 2
    assert [_links(p) for p in holders] == [{alliance.b}, {alliance.b}]
    assert _links(other) == set()
    assert api.get(f"/patients/{holders[0]}", key=alliance.key_b).status_code == 200


def test_a_key_bound_to_several_institutions_names_the_one_enrolling(api: Api, alliance: Alliance) -> None:
    both = bound_key("integration", [alliance.a, alliance.b], "regional")
    error(api.post("/patients", api.patient_body(), key=both), 422, "request.invalid")
    r = api.post("/patients", api.patient_body(institution="B"), key=both)
    assert r.status_code == 201, r.text
    assert _links(r.json()["id"]) == {alliance.b}
    error(api.post("/patients", api.patient_body(institution="B"), key=alliance.key_a), 403,
          "alliance.institution_out_of_scope")
    error(api.post("/patients", api.patient_body(external_ids=[{"system": SYS_B, "value": "B-9"}]),
                   key=alliance.key_a), 403, "alliance.identifier_out_of_scope")


def test_explicit_link_brings_the_patient_into_scope(api: Api, alliance: Alliance) -> None:
    error(api.get(f"/patients/{alliance.pb}", key=alliance.key_a), 404, "patients.not_found")
    r = api.post(f"/patients/{alliance.pb}/institutions", {"institution_id": alliance.a})
    assert r.status_code == 200, r.text
    assert r.json()["linked"] is True
    again = api.post(f"/patients/{alliance.pb}/institutions", {"institution_id": alliance.a})
    assert again.json()["linked"] is False
    assert _links(alliance.pb) == {alliance.a, alliance.b}
    assert api.get(f"/patients/{alliance.pb}", key=alliance.key_a).status_code == 200
    listed = api.get(f"/patients/{alliance.pb}/institutions").json()["items"]
    assert [i["institution_id"] for i in listed] == [alliance.b, alliance.a]
    # a bound key links to its own institutions only
    error(api.post(f"/patients/{alliance.pa}/institutions", {"institution_id": alliance.b}, key=alliance.key_a),
          403, "alliance.institution_out_of_scope")


# --- bound keys --------------------------------------------------------------------------

def test_a_bound_key_reaches_only_its_institutions_patients(api: Api, alliance: Alliance) -> None:
    assert api.get(f"/patients/{alliance.pa}", key=alliance.key_a).status_code == 200
    error(api.get(f"/patients/{alliance.pb}", key=alliance.key_a), 404, "patients.not_found")
    error(api.get(f"/patients/{alliance.pb}/points", key=alliance.key_a), 404, "patients.not_found")
    error(api.get(f"/patients/{alliance.pb}/points/entries", key=alliance.key_a), 404, "patients.not_found")
    # the unbound admin key sees both
    assert api.get(f"/patients/{alliance.pb}").status_code == 200
    assert api.get(f"/patients/{alliance.pa}").status_code == 200


def test_a_single_event_out_of_scope_is_refused(api: Api, alliance: Alliance) -> None:
    before = api.balance(alliance.pb)
    error(api.post("/events", _reading(api, {"id": alliance.pb}), key=alliance.key_a), 404, "patients.not_found")
    error(api.post("/events", _reading(api, {"system": SYS_B, "value": "B-1"}), key=alliance.key_a), 403,
          "alliance.identifier_out_of_scope")
    assert api.balance(alliance.pb) == before
    ok = api.post("/events", _reading(api, {"system": SYS_A, "value": "A-1"}), key=alliance.key_a)
    assert ok.status_code == 201, ok.text
    assert api.balance(alliance.pa) == ok.json()["balance"] == 160


def test_a_batch_answers_out_of_scope_items_and_ingests_the_rest(api: Api, alliance: Alliance) -> None:
    items = [_reading(api, {"id": alliance.pa}), _reading(api, {"id": alliance.pb}),
             _reading(api, {"system": SYS_B, "value": "B-1"}), {"type": "nonsense"}]
    r = api.post("/events", {"events": items}, key=alliance.key_a)
    assert r.status_code == 200, r.text
    outs = r.json()["outcomes"]
    assert outs[0]["balance"] == 160
    assert outs[1]["error"] == "patients.not_found"
    assert outs[2]["error"] == "alliance.identifier_out_of_scope"
    assert outs[3]["error"] == "request.invalid"
    assert api.balance(alliance.pb) == 100  # the welcome only


def test_an_event_claiming_another_institution_is_refused(api: Api, alliance: Alliance) -> None:
    error(api.post("/events", _reading(api, {"id": alliance.pa}, institution="B"), key=alliance.key_a), 403,
          "alliance.institution_out_of_scope")
    ok = api.post("/events", _reading(api, {"id": alliance.pa}, institution="A"), key=alliance.key_a)
    assert ok.status_code == 201, ok.text


def test_an_unbound_key_is_unchanged(api: Api, alliance: Alliance) -> None:
    key = api.make_key("integration", "central")
    r = api.post("/events", {"events": [_reading(api, {"id": alliance.pa}), _reading(api, {"id": alliance.pb}),
                                        _reading(api, {"system": SYS_B, "value": "B-1"})]}, key=key)
    assert r.status_code == 200, r.text
    assert [o.get("error") for o in r.json()["outcomes"]] == [None, None, None]
    assert api.balance(alliance.pb) == 170  # 100 + 50 first check-in + 10 + 10 (daily cap aside)


# --- staff -------------------------------------------------------------------------------

def test_staff_of_an_institution_see_its_patients_only(api: Api, alliance: Alliance) -> None:
    token = _staff_token(api, "desk.a", "frontdesk", alliance.a)
    assert api.get(f"/patients/{alliance.pa}", key=token).status_code == 200
    error(api.get(f"/patients/{alliance.pb}", key=token), 404, "patients.not_found")
    error(api.get(f"/patients/{alliance.pb}/points", key=token), 404, "patients.not_found")


def test_alliance_wide_and_unbound_staff_see_everyone(api: Api, alliance: Alliance) -> None:
    wide = _staff_token(api, "desk.wide", "frontdesk", alliance.a, alliance_wide=True)
    legacy = _staff_token(api, "desk.legacy", "frontdesk", None)
    for token in (wide, legacy):
        assert api.get(f"/patients/{alliance.pb}", key=token).status_code == 200
        assert api.get(f"/patients/{alliance.pa}", key=token).status_code == 200


def test_a_phone_lookup_by_bound_staff_is_filtered(api: Api, alliance: Alliance) -> None:
    phone = "13912345678"
    in_a = api.post("/patients", api.patient_body(phone=phone), key=alliance.key_a).json()["id"]
    in_b = api.post("/patients", api.patient_body(phone=phone), key=alliance.key_b).json()["id"]
    token = _staff_token(api, "desk.a2", "frontdesk", alliance.a)
    found = api.get("/patients", params={"phone": phone}, key=token).json()["items"]
    assert [p["id"] for p in found] == [in_a]
    everyone = api.get("/patients", params={"phone": phone}).json()["items"]
    assert {p["id"] for p in everyone} == {in_a, in_b}


def test_links_are_one_row_per_patient_and_institution(api: Api, alliance: Alliance) -> None:
    with read_tx() as session:
        count = session.execute(select(func.count()).select_from(PatientInstitution)).scalar()
    assert count == 2


def test_booking_at_an_institutions_session_links_the_patient(api: Api, alliance: Alliance) -> None:
    from tests.scheduling.test_endpoints import ONLINE_ONLY, ahead, book, hospital, new_session

    ids = hospital(api, "C")
    sess = new_session(api, ids["wang"], ahead(api, 3), **ONLINE_ONLY)
    assert _links(alliance.pa) == {alliance.a}
    appt = book(api, alliance.pa, sess["id"])
    assert _links(alliance.pa) == {alliance.a, ids["institution"]}
    # a record named by its own id: A's key reaches the appointment of A's patient, B's key does not
    r = api.get(f"/appointments/{appt['id']}", key=alliance.key_a)
    assert r.status_code == 200, r.text
    error(api.get(f"/appointments/{appt['id']}", key=alliance.key_b), 404, "patients.not_found")


def test_fhir_ingest_by_a_bound_key_reaches_only_its_institutions_patients(api: Api, alliance: Alliance) -> None:
    at = utc_now() - timedelta(hours=1)
    other = fhir_bp(at, oid="bp-b", subject=f"Patient?identifier={SYS_B}|B-1")
    r = fhir_post(api, other, key=alliance.key_a)
    assert r.status_code == 404, r.text
    by_id = fhir_bp(at, oid="bp-b2", subject=f"Patient/{alliance.pb}")
    assert fhir_post(api, by_id, key=alliance.key_a).status_code == 404
    assert api.balance(alliance.pb) == 100
    own = fhir_bp(at, oid="bp-a", subject=f"Patient?identifier={SYS_A}|A-1")
    r = fhir_post(api, own, key=alliance.key_a)
    assert r.status_code == 201, r.text
    assert api.balance(alliance.pa) == 160
