"""Delivery over a real HTTP gateway stub on loopback, on SQLite and PostgreSQL:
exactly one message per outbox row — also after failures, across two workers at
once and after a crashed worker's lease — backoff, dead letters, quiet hours,
signed webhooks."""

from __future__ import annotations

import hashlib
import hmac
import socket
import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from carepoints.audit import service as audit
from carepoints.config import get_settings
from carepoints.kit.db import read_tx, write_tx
from carepoints.notifications import sending
from carepoints.notifications.channels import Result
from carepoints.patients import service as patients
from tests.conftest import Db
from tests.helpers import enrol, error
from tests.notifications.kit import Gateway, configure, delivery_rows, enqueue, inbox_rows, run, with_sms

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]

NOON = datetime(2026, 6, 15, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai


def remind(pid: str, at: datetime, appointment_id: str = "a1") -> None:
    enqueue(at, "appointment.reminder", {"patient_id": pid, "appointment_id": appointment_id,
                                         "slot_start": (at + timedelta(days=1)).isoformat()})


def phone_of(pid: str) -> str:
    with read_tx() as session:
        return patients.contact(session, [pid])[pid]


def test_one_sms_per_outbox_row_with_only_the_template_text(db: Db, gateway: Gateway,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    with_sms(monkeypatch, gateway)
    pids = [enrol(NOON) for _ in range(3)]
    for i, pid in enumerate(pids):
        remind(pid, NOON, f"a{i}")
    result = run(NOON)
    assert result["deliveries"] == {"sent": 3}
    assert len(gateway.received) == 3
    assert sorted(b["to"] for b in gateway.bodies()) == sorted(phone_of(p) for p in pids)
    for req in gateway.received:
        body = req.json
        assert req.path == "/sms"
        assert req.headers["authorization"] == "Bearer sms-token"
        assert req.headers["idempotency-key"] == body["delivery_id"]
        assert body["text"] == ("温馨提示:您预约的就诊时间为 2026-06-16 12:00,请提前到院签到。"
                                "如不能按时就诊,请提前取消预约。")
        assert set(body) == {"to", "text", "template", "delivery_id"}
        assert "测试患者" not in req.body.decode()  # no name anywhere
    assert {d["status"] for d in delivery_rows()} == {"sent"}
    assert run(NOON + timedelta(hours=1))["deliveries"] == {}
    assert len(gateway.received) == 3
    for d in delivery_rows():  # we never keep the phone number
        assert phone_of(d["recipient_id"]) not in str(d)


def test_a_failing_gateway_is_retried_with_backoff_until_one_gets_through(db: Db, gateway: Gateway,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    with_sms(monkeypatch, gateway, notify_backoff_base_seconds="30")
    pid = enrol(NOON)
    remind(pid, NOON)
    gateway.script = [500, 500]
    assert run(NOON)["deliveries"] == {"pending": 1}
    [d] = delivery_rows(channel="sms")
    assert (d["attempts"], d["last_error"], d["available_at"]) == (1, "http_500", NOON + timedelta(seconds=30))
    assert run(NOON + timedelta(seconds=29))["deliveries"] == {}  # not yet due
    assert run(NOON + timedelta(seconds=30))["deliveries"] == {"pending": 1}
    [d] = delivery_rows(channel="sms")
    assert d["available_at"] == NOON + timedelta(seconds=90)  # 30 s later, then 60 s
    assert run(NOON + timedelta(seconds=89))["deliveries"] == {}
    assert run(NOON + timedelta(seconds=90))["deliveries"] == {"sent": 1}
    assert len(gateway.received) == 3
    assert len({r.json["delivery_id"] for r in gateway.received}) == 1  # the same idempotency key each time
    [d] = delivery_rows(channel="sms")
    assert (d["status"], d["attempts"], d["sent_at"]) == ("sent", 3, NOON + timedelta(seconds=90))
    assert run(NOON + timedelta(days=1))["deliveries"] == {}
    assert len(gateway.received) == 3


def test_dead_letter_after_max_attempts_then_retry_over_the_api(api: Api, gateway: Gateway,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # the retry runs on the real clock: no quiet hours, or it fails in the Shanghai night
    with_sms(monkeypatch, gateway, notify_max_attempts="3", notify_backoff_base_seconds="10", notify_quiet_hours="")
    pid = api.enrol()
    remind(pid, NOON)
    gateway.script = [503, 429, 500, 500]
    at = NOON
    for expected in ("pending", "pending", "dead"):
        assert run(at)["deliveries"] == {expected: 1}
        at += timedelta(hours=1)
    assert run(at + timedelta(days=2))["deliveries"] == {}
    assert len(gateway.received) == 3
    r = api.get("/notifications/deliveries", params={"status": "dead"})
    assert r.status_code == 200, r.text
    [dead] = r.json()["items"]
    assert (dead["channel"], dead["attempts"], dead["last_error"]) == ("sms", 3, "http_500")
    assert "to" not in dead
    assert "content" not in dead
    r = api.post(f"/notifications/deliveries/{dead['id']}/retry")
    assert r.status_code == 200, r.text
    error(api.post(f"/notifications/deliveries/{dead['id']}/retry"), 409, "notifications.delivery_not_dead")
    with read_tx() as session:
        [entry] = audit.entries(session, subject_id=dead["id"])
    assert (entry["action"], entry["patient_id"], entry["details"]) == (
        "notifications:delivery:retry", pid, {"channel": "sms"})
    assert api.get("/notifications/deliveries", params={"status": "dead"}).json()["items"] == []
    gateway.script = [500]  # one more failure: fresh attempts, so it is retried, not dead
    assert run(api.now())["deliveries"] == {"pending": 1}
    assert run(api.now() + timedelta(minutes=1))["deliveries"] == {"sent": 1}
    assert len(gateway.received) == 5


def test_a_permanent_refusal_is_dead_at_once(db: Db, gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    with_sms(monkeypatch, gateway)
    remind(enrol(NOON), NOON)
    gateway.script = [400]
    assert run(NOON)["deliveries"] == {"dead": 1}
    [d] = delivery_rows()
    assert (d["status"], d["attempts"], d["last_error"]) == ("dead", 1, "http_400")


def test_an_unreachable_gateway_is_retried(db: Db, monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch, sms_gateway_url="http://127.0.0.1:9/sms")  # discard port: connection refused
    remind(enrol(NOON), NOON)
    assert run(NOON)["deliveries"] == {"pending": 1}
    assert delivery_rows()[0]["last_error"] == "connection"


def test_a_gateway_that_never_answers_times_out_and_is_retried(db: Db, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as silent:  # accepts connections (backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        configure(monkeypatch, sms_gateway_url=f"http://127.0.0.1:{port}/sms", notify_http_timeout_seconds="0.5")
        remind(enrol(NOON), NOON)
        assert run(NOON)["deliveries"] == {"pending": 1}
    [d] = delivery_rows()
    assert (d["last_error"], d["attempts"]) == ("timeout", 1)


def test_quiet_hours_hold_sms_but_not_the_inbox(db: Db, gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    with_sms(monkeypatch, gateway)
    pid = enrol(NOON)
    late = datetime(2026, 6, 15, 14, 0, tzinfo=UTC)  # 22:00 in Shanghai
    morning = datetime(2026, 6, 15, 23, 30, tzinfo=UTC)  # 07:30 on the 16th
    remind(pid, late)
    run(late)
    assert {m["topic"] for m in inbox_rows(recipient_id=pid)} == {"points.changed", "appointment.reminder"}
    [d] = delivery_rows(channel="sms")
    assert d["available_at"] == morning
    assert run(morning - timedelta(seconds=1))["deliveries"] == {}
    assert gateway.received == []
    assert run(morning)["deliveries"] == {"sent": 1}


def test_a_patient_without_quiet_hours_or_sms(api: Api, gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    with_sms(monkeypatch, gateway)
    late = datetime(2026, 6, 15, 14, 0, tzinfo=UTC)
    night_owl, no_sms = api.enrol(), api.enrol()
    r = api.request("PUT", f"/patients/{night_owl}/notification-preferences", {"no_quiet_hours": True})
    assert r.status_code == 200, r.text
    assert r.json()["quiet_hours"] is None
    r = api.request("PUT", f"/patients/{no_sms}/notification-preferences", {"sms": False})
    assert r.status_code == 200, r.text
    remind(night_owl, late, "a1")
    remind(no_sms, late, "a2")
    assert run(late)["deliveries"] == {"sent": 1}
    assert [b["to"] for b in gateway.bodies()] == [phone_of(night_owl)]
    assert len(inbox_rows(topic="appointment.reminder")) == 2


def test_a_crashed_workers_lease_is_claimed_again(db: Db, gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    with_sms(monkeypatch, gateway, notify_lease_seconds="120")
    remind(enrol(NOON), NOON)
    run(NOON)  # dispatch and send: the gateway got one
    remind(enrol(NOON), NOON, "a2")
    from carepoints.notifications import dispatch

    with write_tx() as session:
        dispatch.dispatch(session.connection(), get_settings(), NOON, 10)
    with write_tx() as session:  # a worker claims it and dies before sending
        ready, _ = sending.claim(session.connection(), NOON, 10, 120)
    assert len(ready) == 1
    assert run(NOON + timedelta(seconds=119))["deliveries"] == {}  # still leased
    assert len(gateway.received) == 1
    assert run(NOON + timedelta(seconds=120))["deliveries"] == {"sent": 1}
    assert len(gateway.received) == 2
    with write_tx() as session:  # the dead worker's late result changes nothing
        assert sending.finish(session.connection(), get_settings(), ready[0], Result("dead", "x"),
                              NOON) == "lost"
    assert {d["status"] for d in delivery_rows()} == {"sent"}


def test_two_workers_at_once_send_each_message_once(racing: Db, gateway: Gateway,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    with_sms(monkeypatch, gateway, notify_batch_size="5")
    pids = [enrol(NOON) for _ in range(12)]
    for i, pid in enumerate(pids):
        remind(pid, NOON, f"a{i}")
    barrier = threading.Barrier(2)
    results: list[Any] = []

    def worker() -> None:
        barrier.wait()
        results.append(run(NOON))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(results) == 2
    ids = [b["delivery_id"] for b in gateway.bodies()]
    assert len(ids) == 12
    assert len(set(ids)) == 12
    assert sorted(b["to"] for b in gateway.bodies()) == sorted(phone_of(p) for p in pids)
    assert sum(r["deliveries"].get("sent", 0) for r in results) == 12
    assert len(inbox_rows(topic="appointment.reminder")) == 12
    assert len(delivery_rows()) == 12


def test_webhooks_are_signed_and_carry_ids_only(api: Api, gateway: Gateway) -> None:
    r = api.post("/webhooks", {"url": gateway.url + "/his", "topics": ["points.changed"], "description": "HIS"})
    assert r.status_code == 201, r.text
    secret = r.json()["secret"]
    assert "secret" not in api.get("/webhooks").json()["items"][0]
    pid = api.enrol()
    assert run(api.now())["deliveries"] == {"sent": 1}
    [req] = gateway.received
    assert req.path == "/his"
    ts, sig = req.headers["x-carepoints-timestamp"], req.headers["x-carepoints-signature"]
    nonce = req.headers["x-carepoints-nonce"]
    # signed as requests to us are (security.signing): METHOD, target, timestamp, nonce, sha256(body)
    canonical = f"POST\n/his\n{ts}\n{nonce}\n{hashlib.sha256(req.body).hexdigest()}".encode()
    assert sig == hmac.new(secret.encode(), canonical, hashlib.sha256).hexdigest()
    assert req.headers["x-carepoints-delivery"] == delivery_rows(channel="webhook")[0]["id"]
    body = req.json
    assert body["topic"] == "points.changed"
    assert body["payload"]["patient_id"] == pid
    assert set(body["payload"]) == {"patient_id", "event_id", "points", "balance"}
    assert abs(int(ts) - int(datetime.now(UTC).timestamp())) < 60


def test_a_deleted_webhook_gets_nothing_more(api: Api, gateway: Gateway) -> None:
    hook = api.post("/webhooks", {"url": gateway.url + "/his", "topics": ["*"]}).json()
    api.enrol()
    from carepoints.notifications.tasks import dispatch_outbox

    dispatch_outbox(api.now(), 100)
    assert [d["status"] for d in delivery_rows(channel="webhook")] == ["pending"]
    assert api.request("DELETE", f"/webhooks/{hook['id']}").status_code == 200
    assert run(api.now())["deliveries"] == {}
    assert gateway.received == []
    assert [d["last_error"] for d in delivery_rows(channel="webhook")] == ["webhook_deleted"]
    api.enrol()
    run(api.now())
    assert gateway.received == []


def test_wechat_template_messages(api: Api, gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch, wechat_gateway_url=gateway.url + "/wx", wechat_gateway_token="wx",
              wechat_template_ids="appointment.reminder=TPL_REMIND", notify_quiet_hours="")  # real clock
    pid = api.enrol()
    r = api.request("PUT", f"/patients/{pid}/notification-preferences", {"wechat": True, "wechat_openid": "oABC_123"})
    assert r.status_code == 200, r.text
    remind(pid, api.now())
    # the reminder has a template id; the welcome's points.changed has none configured: no WeChat for it
    assert run(api.now())["deliveries"] == {"sent": 1}
    [req] = gateway.received
    assert req.path == "/wx"
    assert req.json["touser"] == "oABC_123"
    assert req.json["template_id"] == "TPL_REMIND"
    assert req.json["data"]["title"] == "就诊提醒"
    assert [d["topic"] for d in delivery_rows(channel="wechat")] == ["appointment.reminder"]
    assert len(inbox_rows(recipient_id=pid)) == 2
