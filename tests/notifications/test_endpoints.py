"""The notifications API over HTTP, on SQLite and PostgreSQL: the patient inbox,
preferences, the staff inbox, webhooks and deliveries; every bad input a 4xx
with a code."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from carepoints.audit import service as audit
from carepoints.kit.db import read_tx
from tests.helpers import error
from tests.notifications.kit import Gateway, enqueue, run, with_sms

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]

UNKNOWN = "0190a000-0000-7000-8000-000000000000"


def inbox(api: Api, pid: str, **params: Any) -> dict[str, Any]:
    r = api.get(f"/patients/{pid}/messages", params=params)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_inbox_paging_unread_and_read(api: Api) -> None:
    pid = api.enrol()
    for _ in range(4):
        enqueue(api.now(), "care.inactivity", {"patient_id": pid})
    run(api.now())
    first = inbox(api, pid, limit=3)
    assert first["unread"] == 5
    assert len(first["items"]) == 3
    rest = inbox(api, pid, limit=3, before=first["next"])
    assert rest["next"] is None
    ids = [m["id"] for m in first["items"] + rest["items"]]
    assert len(set(ids)) == 5
    assert ids == sorted(ids, reverse=True)
    r = api.post(f"/patients/{pid}/messages/{ids[0]}/read")
    assert r.status_code == 200, r.text
    read_at = r.json()["read_at"]
    assert read_at
    assert api.post(f"/patients/{pid}/messages/{ids[0]}/read").json()["read_at"] == read_at  # again: unchanged
    assert inbox(api, pid)["unread"] == 4
    assert ids[0] not in [m["id"] for m in inbox(api, pid, unread_only=True)["items"]]


def test_inbox_in_english_when_the_patient_prefers_it(api: Api) -> None:
    pid = api.enrol()
    assert api.request("PUT", f"/patients/{pid}/notification-preferences", {"language": "en"}).status_code == 200
    run(api.now())
    [msg] = inbox(api, pid)["items"]
    assert msg["body"] == "You earned 100 points. Your balance is 100 points."
    assert msg["text"]["zh"]["body"] == "您获得了 100 积分,当前余额 100 积分。"


def test_a_patient_cannot_read_anothers_message(api: Api) -> None:
    a, b = api.enrol(), api.enrol()
    run(api.now())
    [msg] = inbox(api, a)["items"]
    error(api.post(f"/patients/{b}/messages/{msg['id']}/read"), 404, "notifications.message_not_found")
    error(api.post(f"/patients/{a}/messages/not-an-id/read"), 404, "notifications.message_not_found")
    error(api.post(f"/patients/{a}/messages/{UNKNOWN}/read"), 404, "notifications.message_not_found")
    error(api.get(f"/patients/{UNKNOWN}/messages"), 404, "patients.not_found")
    error(api.get(f"/patients/{a}/messages", params={"limit": 0}), 422, "request.invalid")
    error(api.get(f"/patients/{a}/messages", params={"limit": 101}), 422, "request.invalid")
    error(api.get(f"/patients/{a}/messages", params={"before": "x" * 37}), 422, "request.invalid")


def test_preferences_defaults_changes_and_audit(api: Api, gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    pid = api.enrol()
    r = api.get(f"/patients/{pid}/notification-preferences")
    assert r.status_code == 200, r.text
    assert r.json() | {"updated_at": None} == {
        "patient_id": pid, "sms": True, "wechat": True, "wechat_openid": None,
        "quiet_hours": {"start": "21:30", "end": "07:30"}, "language": "zh", "offered": [], "updated_at": None}
    error(api.request("PUT", f"/patients/{pid}/notification-preferences", {"sms": True}), 409,
          "notifications.channel_unavailable")
    with_sms(monkeypatch, gateway)
    r = api.request("PUT", f"/patients/{pid}/notification-preferences",
                    {"sms": True, "quiet_hours": {"start": "22:00", "end": "06:00"}})
    assert r.status_code == 200, r.text
    assert r.json()["quiet_hours"] == {"start": "22:00", "end": "06:00"}
    assert r.json()["offered"] == ["sms"]
    r = api.request("PUT", f"/patients/{pid}/notification-preferences", {"language": "en"})
    assert r.json()["quiet_hours"] == {"start": "22:00", "end": "06:00"}  # kept
    assert r.json()["language"] == "en"
    with read_tx() as session:
        entries = audit.entries(session, patient_id=pid, action="notifications:preferences:update")
    assert [e["details"]["fields"] for e in entries] == [["language"], ["quiet_hours", "sms"]]


@pytest.mark.parametrize("body", [
    {"sms": "sometimes"},
    {"language": "fr"},
    {"quiet_hours": {"start": "25:00", "end": "07:00"}},
    {"quiet_hours": {"start": "21:30"}},
    {"quiet_hours": {"start": "08:00", "end": "08:00"}},
    {"wechat_openid": "has spaces"},
    {"wechat_openid": "x" * 65},
    {"phone": "13800000000"},
])
def test_bad_preferences_are_422(api: Api, body: dict[str, Any]) -> None:
    pid = api.enrol()
    error(api.request("PUT", f"/patients/{pid}/notification-preferences", body), 422, "request.invalid")


def test_wechat_needs_a_gateway_and_an_openid(api: Api, gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.notifications.kit import configure

    pid = api.enrol()
    error(api.request("PUT", f"/patients/{pid}/notification-preferences", {"wechat": True, "wechat_openid": "o1"}),
          409, "notifications.channel_unavailable")
    configure(monkeypatch, wechat_gateway_url=gateway.url)
    error(api.request("PUT", f"/patients/{pid}/notification-preferences", {"wechat": True}), 409,
          "notifications.wechat_openid_required")
    error(api.request("PUT", f"/patients/{UNKNOWN}/notification-preferences", {"language": "en"}), 404,
          "patients.not_found")


@pytest.mark.parametrize("body", [
    {"url": "ftp://example.org/x", "topics": ["points.changed"]},
    {"url": "http://example.org/x", "topics": []},
    {"url": "http://example.org/x", "topics": ["Points Changed"]},
    {"url": "http://example.org/x", "topics": ["points.changed"], "secret": "mine"},
    {"url": "http://" + "a" * 500, "topics": ["*"]},
    {"topics": ["*"]},
])
def test_bad_webhooks_are_422(api: Api, body: dict[str, Any]) -> None:
    error(api.post("/webhooks", body), 422, "request.invalid")


def test_webhook_lifecycle_and_permissions(api: Api) -> None:
    r = api.post("/webhooks", {"url": "https://his.example.org/carepoints", "topics": ["points.changed", "*",
                                                                                       "points.changed"]})
    assert r.status_code == 201, r.text
    hook = r.json()
    assert hook["secret"].startswith("whsec_")
    assert hook["topics"] == ["points.changed", "*"]
    assert [h["id"] for h in api.get("/webhooks").json()["items"]] == [hook["id"]]
    assert api.request("DELETE", f"/webhooks/{hook['id']}").json() == {"id": hook["id"], "deleted": True}
    error(api.request("DELETE", f"/webhooks/{hook['id']}"), 404, "notifications.webhook_not_found")
    error(api.request("DELETE", "/webhooks/nope"), 404, "notifications.webhook_not_found")
    assert api.get("/webhooks").json()["items"] == []
    integration = api.make_key("integration", "his")
    error(api.post("/webhooks", {"url": "https://x.org", "topics": ["*"]}, key=integration), 403, "auth.forbidden")
    error(api.get("/notifications/deliveries", key=integration), 403, "auth.forbidden")
    error(api.get("/inbox", key=integration), 403, "auth.forbidden")
    error(api.get("/webhooks", auth=False), 401, "auth.unauthenticated")


def test_deliveries_bad_input(api: Api) -> None:
    error(api.get("/notifications/deliveries", params={"status": "lost"}), 422, "request.invalid")
    error(api.get("/notifications/deliveries", params={"channel": "fax"}), 422, "request.invalid")
    error(api.post(f"/notifications/deliveries/{UNKNOWN}/retry"), 404, "notifications.delivery_not_found")
    error(api.post("/notifications/deliveries/x/retry"), 404, "notifications.delivery_not_found")
    assert api.get("/notifications/deliveries").json() == {"items": [], "next": None}


def test_a_sent_delivery_cannot_be_retried(api: Api, gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    with_sms(monkeypatch, gateway)
    pid = api.enrol()
    enqueue(api.now(), "care.inactivity", {"patient_id": pid})
    no_quiet = api.request("PUT", f"/patients/{pid}/notification-preferences", {"no_quiet_hours": True})
    assert no_quiet.status_code == 200
    run(api.now())
    [sent] = api.get("/notifications/deliveries", params={"status": "sent"}).json()["items"]
    assert sent["topic"] == "care.inactivity"
    error(api.post(f"/notifications/deliveries/{sent['id']}/retry"), 409, "notifications.delivery_not_dead")


def test_the_staff_inbox_and_marking_read(api: Api) -> None:
    nurse = api.make_staff("nurse_wang", "password-123", "nurse")
    other = api.make_staff("dr_zhao", "password-123", "clinician")
    pid = api.enrol()
    enqueue(api.now(), "lab.critical_value", {"alert_id": "a1", "patient_id": pid, "staff_user_id": other})
    enqueue(api.now(), "care.alert", {"alert_id": "a2", "patient_id": pid, "kind": "inactivity",
                                      "severity": "normal"})
    run(api.now())
    token = api.post("/auth/token", {"username": "nurse_wang", "password": "password-123"}).json()["access_token"]
    doc = api.get("/inbox", key=token).json()
    assert sorted(m["topic"] for m in doc["items"]) == ["care.alert", "lab.critical_value"]  # team, not dr_zhao's own
    assert doc["unread"] == 2
    critical = next(m for m in doc["items"] if m["topic"] == "lab.critical_value")
    assert critical["urgent"] is True
    r = api.post(f"/inbox/{critical['id']}/read", key=token)
    assert r.status_code == 200, r.text
    assert api.get("/inbox", key=token).json()["unread"] == 1
    clin = api.post("/auth/token", {"username": "dr_zhao", "password": "password-123"}).json()["access_token"]
    mine = [m for m in api.get("/inbox", key=clin).json()["items"] if m["topic"] == "lab.critical_value"]
    assert len(mine) == 2  # the team's copy and the clinician's own
    own = next(m["id"] for m in mine if m["id"] != critical["id"])
    error(api.post(f"/inbox/{own}/read", key=token), 404, "notifications.message_not_found")
    assert nurse
