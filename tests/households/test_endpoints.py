"""Households and proxy authorisations over HTTP: the endpoints, their errors and
audit rows, and the household in a member's points view."""

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


def referral(api: Api, pid: str, hours: int) -> dict[str, Any]:
    return event(pid, "referral.visit", api.now() - timedelta(hours=hours),
                 {"referral_id": uuid.uuid4().hex, "from_institution": "社区中心"})


def actions(**where: str) -> list[str]:
    with read_tx() as session:
        return sorted(r["action"] for r in audit.entries(session, **where))


def test_a_household_over_http(api: Api) -> None:
    head = api.enrol(external_ids=[{"system": "urn:his:mrn", "value": "MRN-1"}])
    member = api.enrol()
    r = api.post("/households", {"name": "王家", "head": {"system": "urn:his:mrn", "value": "MRN-1"}})
    assert r.status_code == 201, r.text
    hid = r.json()["id"]
    assert r.json()["members"] == [{"patient_id": head, "role": "head", "can_redeem": True,
                                    "joined_at": r.json()["members"][0]["joined_at"], "attributed": 0}]
    r = api.post(f"/households/{hid}/members", {"patient": {"id": member}, "can_redeem": False})
    assert r.status_code == 201, r.text
    assert api.send(referral(api, member, 3))["balance"] == 200
    api.send(referral(api, head, 2))

    doc = api.get(f"/households/{hid}").json()
    assert doc["wallet"] == {"balance": 400, "available": 400, "held": 0, "debt": 0}
    assert {m["patient_id"]: (m["role"], m["can_redeem"], m["attributed"]) for m in doc["members"]} == {
        head: ("head", True, 200), member: ("member", False, 200)}
    view = api.points(member)
    assert (view["balance"], view["household"]) == (100, {"id": hid, "balance": 400, "available": 400,
                                                          "attributed": 200})

    r = api.post(f"/households/{hid}/members/{member}", {"can_redeem": True})
    assert r.status_code == 200, r.text
    r = api.post(f"/households/{hid}/members/{head}/leave")
    assert (r.status_code, r.json()["error"]) == (409, "households.head_must_transfer")
    r = api.post(f"/households/{hid}/members/{member}/head")
    assert r.status_code == 200, r.text
    assert api.get(f"/households/{hid}").json()["head_patient_id"] == member
    r = api.post(f"/households/{hid}/members/{head}/leave")
    assert r.status_code == 200, r.text
    assert (r.json()["points"], r.json()["balance"]) == (200, 300)
    assert api.points(head)["household"] is None
    assert actions(subject_id=hid) == ["households:head:transfer", "households:household:create",
                                       "households:member:add", "households:member:leave",
                                       "households:member:update"]


def test_household_errors_over_http(api: Api) -> None:
    a, b = api.enrol(), api.enrol()
    hid = api.post("/households", {"name": "李家", "head": {"id": a}}).json()["id"]
    r = api.post("/households", {"name": "又一家", "head": {"id": a}})
    assert (r.status_code, r.json()["error"]) == (409, "households.already_member")
    r = api.post(f"/households/{UNKNOWN}/members", {"patient_id": b})
    assert (r.status_code, r.json()["error"]) == (404, "households.not_found")
    r = api.post(f"/households/{hid}/members", {"patient_id": UNKNOWN})
    assert (r.status_code, r.json()["error"]) == (404, "patients.not_found")
    r = api.post(f"/households/{hid}/members/{b}/leave")
    assert (r.status_code, r.json()["error"]) == (409, "households.not_a_member")
    r = api.post(f"/households/{hid}/members", {"patient_id": b, "patient": {"id": b}})
    assert (r.status_code, r.json()["error"]) == (422, "request.invalid")
    assert api.get(f"/households/{UNKNOWN}").status_code == 404
    api.make_staff("nurse.li", PASSWORD, "nurse")
    token = api.client.post("/api/v1/auth/token", json={"username": "nurse.li", "password": PASSWORD}
                            ).json()["access_token"]
    r = api.post(f"/households/{hid}/members", {"patient_id": b}, key=token)
    assert r.status_code == 403, r.text


def test_proxies_over_http(api: Api) -> None:
    patient, carer = api.enrol(), api.enrol()
    r = api.post(f"/patients/{patient}/proxies", {"proxy": {"patient_id": carer}, "scopes": ["view", "redeem"]})
    assert r.status_code == 201, r.text
    aid = r.json()["id"]
    assert (r.json()["kind"], r.json()["scopes"], r.json()["revoked_at"]) == ("patient", ["view", "redeem"], None)
    r = api.post(f"/patients/{patient}/proxies", {"proxy": {"patient_id": carer}, "scopes": ["book"]})
    assert (r.status_code, r.json()["error"]) == (409, "patients.proxy_exists")
    r = api.post(f"/patients/{patient}/proxies", {"proxy": {"kind": "service_window"}, "scopes": ["redeem"]})
    assert r.status_code == 201, r.text
    for bad in ({"proxy": {"patient_id": carer}, "scopes": []},
                {"proxy": {}, "scopes": ["view"]},
                {"proxy": {"kind": "service_window", "patient_id": carer}, "scopes": ["view"]},
                {"proxy": {"patient_id": carer}, "scopes": ["pay"]}):
        assert api.post(f"/patients/{patient}/proxies", bad).status_code == 422, bad

    def check(scope: str) -> int:
        return api.post(f"/patients/{patient}/proxies/check",
                        {"proxy": {"patient_id": carer}, "scope": scope}).status_code

    assert (check("redeem"), check("book")) == (200, 403)
    r = api.post(f"/patients/{patient}/proxies/check", {"proxy": {"patient_id": carer}, "scope": "book"})
    assert r.json()["error"] == "patients.proxy_not_authorised"
    r = api.post(f"/patients/{patient}/proxies/{aid}/revoke")
    assert r.status_code == 200, r.text
    assert r.json()["revoked_at"] is not None
    assert api.post(f"/patients/{patient}/proxies/{aid}/revoke").json() == r.json()
    assert check("redeem") == 403
    assert api.post(f"/patients/{patient}/proxies/{UNKNOWN}/revoke").status_code == 404
    items = api.get(f"/patients/{patient}/proxies").json()["items"]
    assert [(i["kind"], i["revoked_at"] is None) for i in items] == [("service_window", True), ("patient", False)]
    assert api.get(f"/patients/{UNKNOWN}/proxies").status_code == 404
    assert actions(patient_id=patient) == ["patients:proxy:authorise", "patients:proxy:authorise",
                                           "patients:proxy:revoke"]


def test_a_guardian_for_a_child_over_http(api: Api) -> None:
    child = api.enrol(birth_date=(api.now().date() - timedelta(days=365 * 10)).isoformat(),
                      consent={"version": "1.0", "accepted_at": api.now().isoformat(), "source": "guardian"})
    guardian = api.enrol()
    r = api.post(f"/patients/{child}/proxies", {"proxy": {"patient_id": guardian}, "relationship": "guardian"})
    assert r.status_code == 201, r.text
    assert (r.json()["kind"], r.json()["scopes"]) == ("guardian", [])
    r = api.post(f"/patients/{child}/proxies/check", {"proxy": {"patient_id": guardian}, "scope": "redeem"})
    assert r.status_code == 200, r.text
    assert r.json()["authorisation_id"] == api.get(f"/patients/{child}/proxies").json()["items"][0]["id"]
