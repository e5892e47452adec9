"""GET /patients/{id}/tier and PUT /patients/{id}/advisor over HTTP; the advisor on
the patient and on their points."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from carepoints.audit import service as audit
from carepoints.kit.db import read_tx
from tests.helpers import event

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]

UNKNOWN = "0190a5f0-0000-7000-8000-000000000000"
PASSWORD = "correct horse battery"


def _token(api: Api, username: str) -> str:
    r = api.client.post("/api/v1/auth/token", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def _earn(api: Api, pid: str, referrals: int) -> None:
    at = api.now() - timedelta(hours=1)
    api.batch([event(pid, "referral.visit", at, {"referral_id": uuid.uuid4().hex, "from_institution": "社区中心"})
               for _ in range(referrals)])


def _advisor(api: Api, pid: str, staff_user_id: str | None, **kwargs: Any) -> Any:
    return api.request("PUT", f"/patients/{pid}/advisor", {"staff_user_id": staff_user_id}, **kwargs)


def test_the_tier_view_shows_progress_and_history(api: Api) -> None:
    pid = api.enrol()
    r = api.get(f"/patients/{pid}/tier")
    assert r.status_code == 200, r.text
    assert r.json() == {"tier": "standard", "earned_12m": 100, "next": {"tier": "silver", "points_needed": 1900},
                        "advisor": None, "history": []}
    _earn(api, pid, 10)
    doc = api.get(f"/patients/{pid}/tier").json()
    assert (doc["tier"], doc["earned_12m"], doc["next"]) == ("silver", 2100, {"tier": "gold", "points_needed": 2900})
    assert [(h["from"], h["to"], h["reason"], h["earned"]) for h in doc["history"]] == [
        ("standard", "silver", "upgrade", 2100)]
    assert api.points(pid)["tier"] == "silver"
    assert api.get(f"/patients/{UNKNOWN}/tier").json()["error"] == "patients.not_found"
    assert api.get("/patients/not-an-id/tier").status_code == 404


def test_a_gold_patient_gets_an_advisor_shown_on_the_patient_and_their_points(api: Api) -> None:
    pid = api.enrol()
    staff = api.make_staff("nurse.wu", PASSWORD, "nurse")
    r = _advisor(api, pid, staff)
    assert (r.status_code, r.json()["error"]) == (409, "tiers.advisor_not_included")  # standard has none
    _earn(api, pid, 25)
    assert api.points(pid)["tier"] == "gold"
    r = _advisor(api, pid, staff)
    assert r.status_code == 200, r.text
    assert r.json() == {"advisor": {"id": staff, "name": "nurse.wu"}}
    assert api.points(pid)["advisor"] == {"id": staff, "name": "nurse.wu"}
    assert api.get(f"/patients/{pid}").json()["advisor"] == {"id": staff, "name": "nurse.wu"}
    assert api.get(f"/patients/{pid}/tier").json()["advisor"] == {"id": staff, "name": "nurse.wu"}
    other = api.make_staff("nurse.he", PASSWORD, "nurse")
    assert _advisor(api, pid, other).json()["advisor"]["id"] == other  # replaces
    r = _advisor(api, pid, None)
    assert (r.status_code, r.json()) == (200, {"advisor": None})
    with read_tx() as session:
        logged = audit.entries(session, patient_id=pid)
    assert [(e["action"], e["subject_id"]) for e in reversed(logged)] == [
        ("tiers:advisor:assign", staff), ("tiers:advisor:assign", other), ("tiers:advisor:end", None)]
    assert api.points(pid)["advisor"] is None
    assert api.get(f"/patients/{pid}").json()["advisor"] is None


def test_assigning_an_advisor_checks_the_patient_and_the_staff_user(api: Api) -> None:
    pid = api.enrol()
    _earn(api, pid, 25)
    staff = api.make_staff("nurse.qian", PASSWORD, "nurse")
    assert _advisor(api, UNKNOWN, staff).json()["error"] == "patients.not_found"
    r = _advisor(api, pid, UNKNOWN)
    assert (r.status_code, r.json()["error"]) == (404, "tiers.staff_not_found")
    assert _advisor(api, pid, "nope").status_code == 404
    r = api.request("PUT", f"/patients/{pid}/advisor", {"staff": staff})
    assert (r.status_code, r.json()["error"]) == (422, "request.invalid")


def test_front_desk_may_assign_an_advisor_a_nurse_or_a_hospital_system_may_not(api: Api) -> None:
    pid = api.enrol()
    _earn(api, pid, 25)
    staff = api.make_staff("nurse.sun", PASSWORD, "nurse")
    api.make_staff("desk.zhou", PASSWORD, "frontdesk")
    r = _advisor(api, pid, staff, key=_token(api, "nurse.sun"))
    assert (r.status_code, r.json()["error"]) == (403, "auth.forbidden")
    r = _advisor(api, pid, staff, key=api.make_key("integration"))
    assert r.status_code == 403
    r = _advisor(api, pid, staff, key=_token(api, "desk.zhou"))
    assert r.status_code == 200, r.text
    # the nurse may read the tier (points:read) but not change its advisor
    assert api.get(f"/patients/{pid}/tier", key=_token(api, "nurse.sun")).json()["advisor"]["id"] == staff
