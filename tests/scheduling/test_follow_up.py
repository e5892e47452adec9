"""诊间复诊预约 over HTTP: a signed-in clinician books a follow-up in their own session,
before it opens to the public, and it earns no booking-ahead points."""

from __future__ import annotations

from datetime import time, timedelta
from typing import TYPE_CHECKING

from tests.scheduling.test_endpoints import ahead, error, hospital, new_session

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]


def staff_token(api: Api, username: str, role: str = "clinician") -> tuple[str, str]:
    from tests.api_client import make_staff  # a plugin module: imported once pytest has rewritten it

    uid = make_staff(username, "correct horse battery", role)
    r = api.post("/auth/token", {"username": username, "password": "correct horse battery"}, auth=False)
    assert r.status_code == 200, r.text
    return uid, str(r.json()["access_token"])


def test_a_clinician_books_a_follow_up_in_their_own_session(api: Api) -> None:
    uid, token = staff_token(api, "dr.wang")
    ids = hospital(api)
    own = api.post("/clinicians", {"department_id": ids["department"], "code": "wang2", "name": "王医生",
                                   "staff_user_id": uid}).json()["id"]
    later = (api.now() + timedelta(days=1)).isoformat()
    mine = new_session(api, own, ahead(api, 20), release_at=later)  # not open to the public yet
    other = new_session(api, ids["li"], ahead(api, 20), start=time(14), end=time(15), release_at=later)
    pid = api.enrol()
    body = {"patient_id": pid, "session_id": mine["id"], "idempotency_key": "fu-1"}
    error(api.post("/appointments", body), 409, "scheduling.not_open")  # the public waits for the release
    r = api.post("/appointments/follow-up", body, key=token)
    assert r.status_code == 201, r.text
    assert (r.json()["booked_by"], r.json()["status"], r.json()["seq"]) == ("clinician", "booked", 1)
    again = api.post("/appointments/follow-up", body, key=token)
    assert again.status_code == 200
    assert again.json()["id"] == r.json()["id"]
    theirs = api.post("/appointments/follow-up", {**body, "session_id": other["id"], "idempotency_key": "fu-2"},
                      key=token)
    error(theirs, 403, "scheduling.not_own_session")
    error(api.post("/appointments/follow-up", {**body, "idempotency_key": "fu-3"}), 403, "auth.forbidden")
    _nurse, nurse = staff_token(api, "nurse.li", "nurse")
    error(api.post("/appointments/follow-up", {**body, "idempotency_key": "fu-4"}, key=nurse), 403, "auth.forbidden")
