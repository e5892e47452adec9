"""The experiments API over HTTP: creation and its validation, the lifecycle and its illegal
transitions, overlapping experiments, permissions, audit rows and a patient's assignment."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from carepoints.audit import service as audit
from carepoints.kit.db import read_tx
from tests.experiments.support import consent, create, design, variant_of
from tests.helpers import error, staff_token

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]

UNKNOWN = "0190a5f0-0000-7000-8000-000000000000"


@pytest.mark.parametrize(("change", "status", "code"), [
    ({"ethics_ref": None}, 422, "experiments.ethics_ref_required"),
    ({"ethics_ref": "   "}, 422, "experiments.ethics_ref_required"),
    ({"variants": [{"code": "control"}, {"code": "t", "overrides": [{"rule": "no_such_rule", "points": 5}]}]},
     422, "experiments.unknown_rule"),
    ({"variants": [{"code": "control"}, {"code": "t", "overrides": [{"rule": "no_show", "points": 10}]}]},
     422, "experiments.bad_override"),  # a penalty stays a penalty
    ({"variants": [{"code": "control"}, {"code": "t", "overrides": [{"rule": "off_peak", "points": 10}]}]},
     422, "experiments.bad_override"),  # a multiplier is only switched on or off
    ({"variants": [{"code": "control"}, {"code": "t", "overrides": [{"rule": "review", "daily_points": 40}]}]},
     422, "experiments.bad_override"),  # the review rule has no daily cap to change
    ({"variants": [{"code": "control", "weight": 0}, {"code": "t", "overrides": [{"rule": "review", "points": 9}]}]},
     422, "request.invalid"),
    ({"variants": [{"code": "control"}]}, 422, "request.invalid"),
])
def test_creation_is_validated(api: Api, change: dict[str, Any], status: int, code: str) -> None:
    body = {k: v for k, v in {**design(), **change}.items() if v is not None}
    r = api.post("/experiments", body)
    doc = error(r, status, code)
    if code == "experiments.unknown_rule":
        assert "no_such_rule" in doc["detail"]
    assert api.get("/experiments").json()["items"] == []  # nothing stored


def test_creation_is_idempotent_on_code_and_body(api: Api) -> None:
    r = api.post("/experiments", design())
    assert r.status_code == 201, r.text
    doc = r.json()
    assert (doc["status"], doc["ethics_ref"], doc["started_at"]) == ("draft", "2026-伦审-017", None)
    assert [(v["code"], v["share"], v["control"], v["overrides"]) for v in doc["variants"]] == [
        ("control", 0.5, True, []), ("double", 0.5, False, [{"rule": "health_checkin", "points": 20}])]
    again = api.post("/experiments", design())
    assert (again.status_code, again.json()) == (200, doc)
    error(api.post("/experiments", design(ethics_ref="2026-伦审-018")), 409, "experiments.code_taken")
    assert [d["id"] for d in api.get("/experiments").json()["items"]] == [doc["id"]]
    assert api.get(f"/experiments/{doc['id']}").json() == doc


def test_start_and_stop_and_every_illegal_transition(api: Api) -> None:
    doc = create(api, start=False)
    eid = doc["id"]
    error(api.post(f"/experiments/{eid}/stop"), 409, "experiments.not_running")
    r = api.post(f"/experiments/{eid}/start")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "running"
    assert r.json()["started_at"] is not None
    body = error(api.post(f"/experiments/{eid}/start"), 409, "experiments.not_draft")
    assert "running" in body["detail"]
    r = api.post(f"/experiments/{eid}/stop")
    assert (r.status_code, r.json()["status"]) == (200, "stopped")
    assert r.json()["stopped_at"] >= r.json()["started_at"]
    error(api.post(f"/experiments/{eid}/stop"), 409, "experiments.not_running")
    error(api.post(f"/experiments/{eid}/start"), 409, "experiments.not_draft")
    for path in (f"/experiments/{UNKNOWN}", "/experiments/not-an-id"):
        error(api.get(path), 404, "experiments.not_found")
        error(api.post(path + "/start"), 404, "experiments.not_found")
    assert [d["status"] for d in api.get("/experiments", params={"status": "stopped"}).json()["items"]] == ["stopped"]
    assert api.get("/experiments", params={"status": "draft"}).json()["items"] == []
    with read_tx() as session:
        rows = audit.entries(session, subject_id=eid)
    assert sorted(r["action"] for r in rows) == ["experiments:experiment:create", "experiments:experiment:start",
                                                 "experiments:experiment:stop"]
    assert all(set(r["details"]) <= {"code", "variants", "rules"} for r in rows)  # codes only


def test_two_running_experiments_never_override_the_same_rule(api: Api) -> None:
    first = create(api)
    clash = create(api, design("bp_cap", [{"rule": "health_checkin", "daily_points": 40}]), start=False)
    body = error(api.post(f"/experiments/{clash['id']}/start"), 409, "experiments.overlap")
    assert "bp_points" in body["detail"]
    assert "health_checkin" in body["detail"]
    assert api.get(f"/experiments/{clash['id']}").json()["status"] == "draft"  # the refused start left nothing
    other = create(api, design("review_more", [{"rule": "review", "points": 40}]))
    assert other["status"] == "running"
    assert api.post(f"/experiments/{first['id']}/stop").status_code == 200
    assert api.post(f"/experiments/{clash['id']}/start").status_code == 200  # free once the first stopped


def test_writes_are_for_admins_and_reads_for_auditors(api: Api) -> None:
    doc = create(api, start=False)
    integration = api.make_key("integration")
    error(api.post("/experiments", design("x2"), key=integration), 403, "auth.forbidden")
    error(api.get("/experiments", key=integration), 403, "auth.forbidden")
    auditor = staff_token(api, "auditor.li", "auditor")
    assert api.get(f"/experiments/{doc['id']}", key=auditor).status_code == 200
    error(api.post(f"/experiments/{doc['id']}/start", key=auditor), 403, "auth.forbidden")
    assert api.get(f"/experiments/{doc['id']}").json()["status"] == "draft"


def test_the_assignment_of_a_patient(api: Api) -> None:
    doc = create(api, start=False)
    eid = doc["id"]
    consenting = api.enrol(consent=consent())
    without = api.enrol(consent=consent(research=False))
    r = api.get(f"/experiments/{eid}/assignment/{consenting}")
    assert r.json() == {"experiment_id": eid, "code": "bp_points", "patient_id": consenting, "variant": None,
                        "reason": "not_running"}
    api.post(f"/experiments/{eid}/start")
    first = api.get(f"/experiments/{eid}/assignment/{consenting}").json()
    assert first["variant"] == variant_of(doc, consenting)
    assert first["control"] == (first["variant"] == "control")
    assert first["overrides"] == ([] if first["control"] else [{"rule": "health_checkin", "points": 20}])
    assert [api.get(f"/experiments/{eid}/assignment/{consenting}").json() for _ in range(3)] == [first] * 3
    assert api.get(f"/experiments/{eid}/assignment/{without}").json()["reason"] == "no_research_consent"
    r = api.request("DELETE", f"/patients/{consenting}/consents/research")
    assert r.status_code == 200, r.text
    gone = api.get(f"/experiments/{eid}/assignment/{consenting}").json()
    assert (gone["variant"], gone["reason"]) == (None, "no_research_consent")
    error(api.get(f"/experiments/{eid}/assignment/{UNKNOWN}"), 404, "patients.not_found")
    error(api.get(f"/experiments/{UNKNOWN}/assignment/{without}"), 404, "experiments.not_found")
