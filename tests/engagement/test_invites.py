"""Invites end to end over HTTP: code, accept, first visit pays the inviter 50 once."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from tests.helpers import error

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]


def code_of(api: Api, pid: str) -> str:
    r = api.get(f"/patients/{pid}/invite-code")
    assert r.status_code == 200, r.text
    return str(r.json()["code"])


def attended(api: Api, pid: str, appt: str) -> dict[str, Any]:
    at = api.now() - timedelta(hours=1)
    return api.send({"type": "appointment.attended", "patient": {"id": pid}, "occurred_at": at.isoformat(),
                     "source": "his", "source_event_id": f"att-{appt}",
                     "attributes": {"appointment_id": appt, "slot_start": at.isoformat(),
                                    "booked_at": (at - timedelta(days=1)).isoformat()}})


def test_invite_flow_pays_inviter_50_once(api: Api) -> None:
    inviter, invitee = api.enrol(), api.enrol()
    code = code_of(api, inviter)
    assert len(code) == 8
    assert code_of(api, inviter) == code
    r = api.post("/invites/accept", {"code": code.lower(), "patient_id": invitee})
    assert r.status_code == 201, r.text
    listed = api.get(f"/patients/{inviter}/invites").json()["items"]
    assert [(i["invitee_id"], i["status"]) for i in listed] == [(invitee, "accepted")]
    before = api.balance(inviter)
    attended(api, invitee, "a1")
    assert api.balance(inviter) == before + 50
    attended(api, invitee, "a2")
    assert api.balance(inviter) == before + 50
    listed = api.get(f"/patients/{inviter}/invites").json()["items"]
    assert [i["status"] for i in listed] == ["completed"]
    error(api.post("/invites/accept", {"code": code, "patient_id": invitee}), 409, "engagement.invite_already_accepted")


def test_refusals(api: Api) -> None:
    inviter, other = api.enrol(), api.enrol()
    code = code_of(api, inviter)
    error(api.post("/invites/accept", {"code": code, "patient_id": inviter}), 422, "engagement.invite_self")
    error(api.post("/invites/accept", {"code": "ZZZZZZZZ", "patient_id": other}), 404,
          "engagement.invite_code_not_found")
    hh = api.post("/households", {"name": "家", "head": {"id": inviter}})
    assert hh.status_code == 201, hh.text
    assert api.post(f"/households/{hh.json()['id']}/members", {"patient_id": other}).status_code == 201
    error(api.post("/invites/accept", {"code": code, "patient_id": other}), 422, "engagement.invite_same_household")
    for body in ({"code": "ab", "patient_id": other}, {"code": code}, {"code": code, "patient_id": other, "x": 1}):
        r = api.post("/invites/accept", body)
        assert r.status_code == 422, body
        assert r.json()["error"], body
    assert api.get("/patients/nobody/invite-code").status_code == 404
    assert api.get("/patients/nobody/invites").status_code == 404


def test_only_recently_enrolled(api: Api) -> None:
    from sqlalchemy import update

    from carepoints.config import get_settings
    from carepoints.kit.db import write_tx
    from carepoints.models import Patient

    inviter, late = api.enrol(), api.enrol()
    days = get_settings().invite_window_days
    with write_tx() as s:
        s.execute(update(Patient).where(Patient.id == late).values(
            created_at=api.now() - timedelta(days=days, minutes=5)))
    error(api.post("/invites/accept", {"code": code_of(api, inviter), "patient_id": late}), 422,
          "engagement.invite_too_late")


def test_first_visit_through_the_scheduling_api(api: Api) -> None:
    from tests.scheduling.test_endpoints import ONLINE_ONLY, book, hospital, new_session, soon

    ids = hospital(api)
    day, start, end = soon(api)
    sess = new_session(api, ids["wang"], day, start, end, slot_minutes=10, **ONLINE_ONLY)
    inviter, invitee = api.enrol(), api.enrol()
    assert api.post("/invites/accept", {"code": code_of(api, inviter), "patient_id": invitee}).status_code == 201
    before = api.balance(inviter)
    doc = book(api, invitee, sess["id"])
    assert api.balance(inviter) == before  # booking is not a visit
    assert api.post(f"/appointments/{doc['id']}/check-in", {"channel": "kiosk"}).status_code == 200
    r = api.post(f"/appointments/{doc['id']}/attend")
    assert r.status_code == 200, r.text
    assert api.balance(inviter) == before + 50
    second = book(api, invitee, sess["id"], key="k2")
    assert api.post(f"/appointments/{second['id']}/check-in", {"channel": "kiosk"}).status_code == 200
    assert api.post(f"/appointments/{second['id']}/attend").status_code == 200
    assert api.balance(inviter) == before + 50
