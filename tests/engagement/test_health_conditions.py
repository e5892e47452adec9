"""The chronic-disease registry over HTTP: recorded, updated, ended and recorded again,
audited with codes only (never the note), and 4xx for every bad input."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from carepoints.audit import service as audit
from carepoints.kit.db import read_tx
from tests.engagement.test_health_kit import UNKNOWN, bp_body
from tests.helpers import error

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]


def test_conditions_are_recorded_updated_and_ended(api: Api) -> None:
    pid = api.enrol()
    r = api.request("PUT", f"/patients/{pid}/conditions/hypertension",
                    {"source": "his", "diagnosed_on": "2020-03-01", "note": "家族史"})
    assert r.status_code == 201, r.text
    doc = r.json()
    assert doc["names"] == {"zh": "高血压", "en": "Hypertension"}
    assert (doc["source"], doc["diagnosed_on"], doc["active"]) == ("his", "2020-03-01", True)
    again = api.request("PUT", f"/patients/{pid}/conditions/hypertension", {"source": "staff"})
    assert again.status_code == 200
    assert again.json()["source"] == "staff"
    assert again.json()["since"] == doc["since"]  # still active since it was first recorded
    assert api.request("PUT", f"/patients/{pid}/conditions/diabetes", {}).status_code == 201
    listed = api.get(f"/patients/{pid}/conditions").json()["items"]
    assert [c["code"] for c in listed] == ["diabetes", "hypertension"]
    ended = api.request("DELETE", f"/patients/{pid}/conditions/diabetes")
    assert ended.status_code == 200
    assert ended.json()["active"] is False
    error(api.request("DELETE", f"/patients/{pid}/conditions/diabetes"), 404, "health.condition_not_found")
    error(api.request("DELETE", f"/patients/{pid}/conditions/copd"), 404, "health.condition_not_found")
    assert [c["code"] for c in api.get(f"/patients/{pid}/conditions").json()["items"]] == ["hypertension"]
    everything = api.get(f"/patients/{pid}/conditions", params={"include_ended": True}).json()["items"]
    assert [(c["code"], c["active"]) for c in everything] == [("diabetes", False), ("hypertension", True)]
    restarted = api.request("PUT", f"/patients/{pid}/conditions/diabetes", {})
    assert restarted.status_code == 201
    assert restarted.json()["ended_at"] is None
    with read_tx() as session:
        trail = audit.entries(session, patient_id=pid)
    ours = [(e["action"], e["details"]) for e in reversed(trail) if e["action"].startswith("health:condition")]
    assert ours == [("health:condition:set", {"code": "hypertension", "source": "his"}),
                    ("health:condition:set", {"code": "hypertension", "source": "staff"}),
                    ("health:condition:set", {"code": "diabetes", "source": "staff"}),
                    ("health:condition:end", {"code": "diabetes"}),
                    ("health:condition:set", {"code": "diabetes", "source": "staff"})]
    assert all(e["actor_kind"] == "api_key" for e in trail if e["action"].startswith("health:"))


def test_conditions_offer_tasks(api: Api) -> None:
    pid = api.enrol()
    api.request("PUT", f"/patients/{pid}/conditions/diabetes", {})
    api.request("PUT", f"/patients/{pid}/conditions/hypertension", {})
    tasks = api.get(f"/patients/{pid}/tasks").json()
    assert [(i["kind"], i["done"]) for i in tasks["items"]] == [("measure_bp", False), ("measure_glucose", False)]
    r = api.post(f"/patients/{pid}/measurements", bp_body(api.now() - timedelta(minutes=1)))
    assert r.status_code == 201
    tasks = api.get(f"/patients/{pid}/tasks").json()
    assert [(i["kind"], i["done"]) for i in tasks["items"]] == [("measure_bp", True), ("measure_glucose", False)]
    clinic = api.enrol()
    api.request("PUT", f"/patients/{clinic}/conditions/hypertension", {})
    api.post(f"/patients/{clinic}/measurements", bp_body(api.now() - timedelta(minutes=1), provenance="clinic"))
    assert [i["done"] for i in api.get(f"/patients/{clinic}/tasks").json()["items"]] == [False]


@pytest.mark.parametrize(("code", "body"), [
    ("flu", {}), ("HYPERTENSION", {}), ("hypertension", {"source": "patient"}),
    ("hypertension", {"diagnosed_on": "2020-02-30"}), ("hypertension", {"note": "x" * 501}),
    ("hypertension", {"colour": "red"}), ("hypertension", []),
])
def test_bad_conditions_are_422(api: Api, code: str, body: Any) -> None:
    pid = api.enrol()
    error(api.request("PUT", f"/patients/{pid}/conditions/{code}", body), 422, "request.invalid")
    assert api.get(f"/patients/{pid}/conditions").json()["items"] == []


def test_a_diagnosis_in_the_future_and_unknown_patients(api: Api) -> None:
    pid = api.enrol()
    future = (api.now() + timedelta(days=2)).date().isoformat()
    error(api.request("PUT", f"/patients/{pid}/conditions/copd", {"diagnosed_on": future}),
          422, "health.diagnosed_in_future")
    today = api.now().date().isoformat()
    assert api.request("PUT", f"/patients/{pid}/conditions/copd", {"diagnosed_on": today}).status_code == 201
    error(api.request("PUT", f"/patients/{UNKNOWN}/conditions/copd", {}), 404, "patients.not_found")
    error(api.get(f"/patients/{UNKNOWN}/conditions"), 404, "patients.not_found")
    error(api.request("DELETE", f"/patients/{UNKNOWN}/conditions/copd"), 404, "patients.not_found")
