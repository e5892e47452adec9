"""The fraud review queue over HTTP (both databases): listing, reviews (dismiss, freeze,
revoke), earning freezes, who may do what, and that earning really stops and resumes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import select

from carepoints.audit.models import AuditEntry
from carepoints.config import reset_settings
from carepoints.events.models import Event
from carepoints.kit.db import read_tx, table
from carepoints.kit.outbox import OutboxMessage
from carepoints.kit.time import utc_now
from carepoints.operations import fraud
from tests.conftest import Db
from tests.helpers import assert_ledger_intact, bp, error, event

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]

UNKNOWN = "0190a5f0-0000-7000-8000-000000000000"


@pytest.fixture
def fdb(db: Db, monkeypatch: pytest.MonkeyPatch) -> Iterator[Db]:
    monkeypatch.setenv("CAREPOINTS_FRAUD_SCAN_MARGIN_SECONDS", "0")
    reset_settings()
    yield db
    reset_settings()


def token(api: Api, username: str, role: str) -> str:
    api.make_staff(username, "pw-123456789", role)
    r = api.post("/auth/token", {"username": username, "password": "pw-123456789"}, auth=False)
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def burst(api: Api, pid: str) -> list[dict[str, Any]]:
    """31 self-service uses within 10 minutes, an hour ago (30 points: the daily cap)."""
    start = api.now() - timedelta(hours=1)
    return api.batch([event(pid, "selfservice.used", start + timedelta(seconds=15 * i), {"action": "query"})
                      for i in range(31)])


def velocity_signal(api: Api) -> tuple[str, dict[str, Any]]:
    pid = api.enrol()
    burst(api, pid)
    assert fraud.detect(utc_now())["signals"] == 1
    r = api.get("/fraud/signals", params={"kind": "velocity"})
    assert r.status_code == 200, r.text
    [sig] = [s for s in r.json()["items"] if s["patient_id"] == pid]
    return pid, sig


def audit_actions(subject_id: str) -> list[str]:
    a = table(AuditEntry)
    with read_tx() as session:
        return sorted(session.connection().execute(select(a.c.action).where(a.c.subject_id == subject_id)).scalars())


def topics(pid: str) -> list[str]:
    o = table(OutboxMessage)
    with read_tx() as session:
        return [str(t) for t in session.connection().execute(select(o.c.topic).where(o.c.key == pid)
                                                              .order_by(o.c.created_at, o.c.id)).scalars()]


def measurement(api: Api, pid: str) -> dict[str, Any]:
    return api.send(event(pid, "health.measurement", api.now() - timedelta(minutes=1), bp("device")))


def test_freeze_stops_earning_and_unfreeze_resumes_it(fdb: Db, api: Api) -> None:
    pid, sig = velocity_signal(api)
    assert sig["status"] == "open"
    assert sig["window"] == (api.now() - timedelta(hours=1)).date().isoformat()  # the burst's local day
    assert sig["details"]["events"] == 31
    r = api.post(f"/fraud/signals/{sig['id']}/review", {"action": "freeze", "note": "burst from one terminal"})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["status"] == "actioned"
    assert doc["review"]["action"] == "freeze"
    assert doc["review"]["by"]["kind"] == "api_key"
    assert doc["outcome"] == {"frozen": [pid], "revoked": []}
    error(api.post(f"/fraud/signals/{sig['id']}/review", {"action": "dismiss"}), 409, "fraud.already_reviewed")
    before = api.balance(pid)
    out = measurement(api, pid)
    assert out["awards"] == []
    assert [n["code"] for n in out["notices"]] == ["rules.earning_frozen"]
    assert api.balance(pid) == before
    again = api.post(f"/patients/{pid}/earning-freeze")  # already frozen: unchanged, nothing sent twice
    assert again.status_code == 200, again.text
    assert (again.json()["earning_frozen"], again.json()["changed"]) == (True, False)
    r = api.request("DELETE", f"/patients/{pid}/earning-freeze")
    assert r.status_code == 200, r.text
    assert (r.json()["earning_frozen"], r.json()["changed"]) == (False, True)
    out = measurement(api, pid)
    assert sum(a["points"] for a in out["awards"]) > 0
    assert api.balance(pid) > before
    assert audit_actions(sig["id"]) == ["operations:fraud_signal:freeze"]
    trail = audit_actions(pid)
    assert (trail.count("operations:earning:freeze"), trail.count("operations:earning:unfreeze")) == (1, 1)
    a = table(AuditEntry)
    with read_tx() as session:
        details = session.connection().execute(select(a.c.details).where(a.c.subject_id == sig["id"])).scalar_one()
    assert details["frozen"] == [pid]
    assert "burst" not in str(details)  # the reviewer's note stays on the signal
    assert [t for t in topics(pid) if t.startswith("points.earning")] == ["points.earning_frozen",
                                                                          "points.earning_resumed"]


def test_revoke_events_reverses_their_points(fdb: Db, api: Api) -> None:
    pid, sig = velocity_signal(api)
    assert api.balance(pid) == 130  # welcome 100 + self-service 30 (daily cap)
    stranger = api.enrol()
    other = api.send(event(stranger, "selfservice.used", api.now() - timedelta(minutes=2), {"action": "pay"}))
    error(api.post(f"/fraud/signals/{sig['id']}/review", {"action": "revoke_events", "event_ids": [other["event_id"]]}),
          400, "fraud.event_not_in_signal")
    error(api.post(f"/fraud/signals/{sig['id']}/review", {"action": "freeze", "patient_ids": [stranger]}),
          400, "fraud.patient_not_in_signal")
    r = api.post(f"/fraud/signals/{sig['id']}/review", {"action": "revoke_events"})
    assert r.status_code == 200, r.text
    revoked = r.json()["outcome"]["revoked"]
    assert len(revoked) == 31
    assert sum(x["points"] for x in revoked) == -30  # the change each revocation made
    assert api.balance(pid) == 100
    assert api.balance(stranger) == 110
    e = table(Event)
    with read_tx() as session:
        rows = session.connection().execute(select(e.c.status, e.c.revoke_reason).where(
            e.c.id.in_(sig["event_ids"]))).all()
    assert {tuple(r) for r in rows} == {("revoked", f"fraud:{sig['id']}")}
    assert_ledger_intact()


def test_freeze_and_revoke_a_chosen_event(fdb: Db, api: Api) -> None:
    pid, sig = velocity_signal(api)
    awarded = sig["event_ids"][:1]
    r = api.post(f"/fraud/signals/{sig['id']}/review", {"action": "freeze_and_revoke", "event_ids": awarded})
    assert r.status_code == 200, r.text
    assert r.json()["outcome"]["frozen"] == [pid]
    assert [x["event_id"] for x in r.json()["outcome"]["revoked"]] == awarded
    assert audit_actions(sig["id"]) == ["operations:fraud_signal:freeze_and_revoke"]


def test_queue_listing_dismissal_and_errors(fdb: Db, api: Api) -> None:
    _pid, sig = velocity_signal(api)
    _pid2, sig2 = velocity_signal(api)
    r = api.get("/fraud/signals", params={"limit": 1})
    assert r.status_code == 200, r.text
    page = r.json()
    assert [s["id"] for s in page["items"]] == [sig2["id"]]  # newest first
    r = api.get("/fraud/signals", params={"limit": 1, "before": page["next"]})
    assert [s["id"] for s in r.json()["items"]] == [sig["id"]]
    r = api.post(f"/fraud/signals/{sig['id']}/review", {"action": "dismiss", "note": "family shares one phone"})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["outcome"]) == ("dismissed", {"frozen": [], "revoked": []})
    assert [s["id"] for s in api.get("/fraud/signals").json()["items"]] == [sig2["id"]]
    assert [s["id"] for s in api.get("/fraud/signals", params={"status": "dismissed"}).json()["items"]] == [sig["id"]]
    assert api.get(f"/fraud/signals/{sig['id']}").json()["review"]["note"] == "family shares one phone"
    error(api.get(f"/fraud/signals/{UNKNOWN}"), 404, "fraud.signal_not_found")
    error(api.get("/fraud/signals/not-an-id"), 404, "fraud.signal_not_found")
    error(api.post(f"/fraud/signals/{UNKNOWN}/review", {"action": "dismiss"}), 404, "fraud.signal_not_found")
    error(api.post(f"/fraud/signals/{sig2['id']}/review", {"action": "ban"}), 422, "request.invalid")
    error(api.get("/fraud/signals", params={"kind": "nope"}), 422, "request.invalid")
    error(api.post(f"/patients/{UNKNOWN}/earning-freeze"), 404, "patients.not_found")
    error(api.post(f"/patients/{_pid}/earning-freeze", {"signal_id": UNKNOWN}), 404, "fraud.signal_not_found")


def test_who_may_read_and_review(fdb: Db, api: Api) -> None:
    pid, sig = velocity_signal(api)
    desk = token(api, "desk1", "frontdesk")
    auditor = token(api, "audit1", "auditor")
    his = api.make_key("integration", "his")
    for key in (desk, his):
        error(api.get("/fraud/signals", key=key), 403, "auth.forbidden")
        error(api.post(f"/fraud/signals/{sig['id']}/review", {"action": "dismiss"}, key=key), 403, "auth.forbidden")
        error(api.post(f"/patients/{pid}/earning-freeze", key=key), 403, "auth.forbidden")
        error(api.request("DELETE", f"/patients/{pid}/earning-freeze", key=key), 403, "auth.forbidden")
    assert api.get("/fraud/signals", key=auditor).status_code == 200
    assert api.get(f"/fraud/signals/{sig['id']}", key=auditor).status_code == 200
    error(api.post(f"/fraud/signals/{sig['id']}/review", {"action": "dismiss"}, key=auditor), 403, "auth.forbidden")
    assert api.get(f"/fraud/signals/{sig['id']}").json()["status"] == "open"
