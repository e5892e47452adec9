"""Dispatch of the outbox on SQLite and PostgreSQL: which recipients and channels
each topic reaches, exactly once, and what is skipped or fails."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from carepoints.engagement.care import service as care
from carepoints.engagement.care.schemas import AlertKind
from carepoints.kit.db import write_tx
from tests.conftest import Db
from tests.helpers import enrol, event, ingest_one
from tests.notifications.kit import (
    Gateway,
    configure,
    delivery_rows,
    enqueue,
    inbox_rows,
    outbox_rows,
    run,
    with_sms,
)

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]


def test_a_points_change_lands_in_the_inbox_with_the_right_text(api: Api) -> None:
    pid = api.enrol()  # the welcome: +100
    result = run(api.now())
    assert result["outbox"]["dispatched"] >= 1
    r = api.get(f"/patients/{pid}/messages")
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["unread"] == 1
    [msg] = doc["items"]
    assert msg["topic"] == "points.changed"
    assert msg["title"] == "积分到账"
    assert msg["body"] == "您获得了 100 积分,当前余额 100 积分。"
    assert msg["text"]["en"]["body"] == "You earned 100 points. Your balance is 100 points."
    assert msg["read_at"] is None
    assert [m["status"] for m in outbox_rows("points.changed")] == ["dispatched"]


def test_a_deduction_has_its_own_wording(db: Db, now: datetime) -> None:
    pid = enrol(now)
    enqueue(now, "points.changed", {"patient_id": pid, "event_id": "e", "points": -50, "balance": 50})
    run(now)
    bodies = {m["body_zh"] for m in inbox_rows(recipient_id=pid)}
    assert "您的积分减少了 50 积分,当前余额 50 积分。" in bodies


def test_running_again_writes_nothing_twice(db: Db, now: datetime) -> None:
    pid = enrol(now)
    run(now)
    run(now)
    run(now + timedelta(minutes=5))
    assert len(inbox_rows(recipient_id=pid)) == 1
    assert len(outbox_rows()) == 1


def test_unknown_topic_without_webhook_is_skipped(db: Db, now: datetime) -> None:
    pid = enrol(now)
    run(now)
    enqueue(now, "education.quiz_failed", {"patient_id": pid, "content_id": "c1"})
    result = run(now)
    assert result["outbox"] == {"skipped": 1}
    assert [m["status"] for m in outbox_rows("education.quiz_failed")] == ["skipped"]
    assert len(inbox_rows(recipient_id=pid)) == 1  # only the welcome
    assert delivery_rows() == []


def test_unknown_topic_goes_to_a_matching_webhook_only(api: Api, now: datetime) -> None:
    r = api.post("/webhooks", {"url": "http://127.0.0.1:9/hook", "topics": ["education.quiz_failed"]})
    assert r.status_code == 201, r.text
    enqueue(now, "education.quiz_failed", {"patient_id": "p", "content_id": "c1"})
    assert run(now)["outbox"] == {"dispatched": 1}
    [d] = delivery_rows(channel="webhook")
    assert d["recipient_id"] == r.json()["id"]
    assert d["content"]["topic"] == "education.quiz_failed"
    assert d["content"]["payload"] == {"patient_id": "p", "content_id": "c1"}


def test_a_missing_template_value_fails_the_row_not_the_job(db: Db, now: datetime) -> None:
    pid = enrol(now)
    enqueue(now, "points.expiring", {"patient_id": pid})  # no points, no expires_at
    enqueue(now, "care.inactivity", {"patient_id": pid})
    result = run(now)
    assert result["outbox"]["failed"] == 1
    assert {m["topic"] for m in inbox_rows(recipient_id=pid)} == {"points.changed", "care.inactivity"}
    assert [m["status"] for m in outbox_rows("points.expiring")] == ["failed"]


def test_a_message_for_an_unknown_patient_fails(db: Db, now: datetime) -> None:
    enqueue(now, "care.inactivity", {"patient_id": "0190a000-0000-7000-8000-000000000000"})
    enqueue(now, "care.inactivity", {})
    assert run(now)["outbox"] == {"failed": 2}
    assert inbox_rows() == []


def test_health_advice_uses_the_variant_and_never_goes_by_sms(db: Db, now: datetime, gateway: Gateway,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    with_sms(monkeypatch, gateway)
    pid = enrol(now)
    enqueue(now, "health.advice", {"patient_id": pid, "event_id": "e1", "variant": "bp_high"})
    enqueue(now, "health.advice", {"patient_id": pid, "event_id": "e2", "variant": "glucose_low"})
    run(now)
    bodies = [m["body_zh"] for m in inbox_rows(recipient_id=pid, topic="health.advice")]
    assert bodies[0].startswith("您本次测量的血压偏高。请休息后复测")
    assert "拨打120" in bodies[0]
    assert bodies[1].startswith("您本次测量的血糖偏低")
    assert delivery_rows(topic="health.advice") == []
    assert all(b["template"] != "health.advice" for b in gateway.bodies())


def test_a_care_alert_reaches_the_care_team_not_the_patient(db: Db, now: datetime) -> None:
    pid = enrol(now)
    with write_tx() as session:
        aid = care.raise_alert(session, patient_id=pid, kind=AlertKind.abnormal_reading, source_ref="ev:1",
                               now=now, severity="high")
    run(now)
    [msg] = inbox_rows(topic="care.alert")
    assert (msg["recipient_kind"], msg["recipient_id"]) == ("care_team", "care_team")
    assert msg["body_zh"] == f"新的关怀提醒(异常读数,较高),请在关怀队列中处理。提醒编号 {aid}。"
    assert not msg["urgent"]
    assert [m["topic"] for m in inbox_rows(recipient_id=pid)] == ["points.changed"]


def test_a_critical_value_goes_to_the_clinician_and_the_team_at_once(api: Api, now: datetime) -> None:
    staff = api.make_staff("dr_li", "password-123", "clinician")
    pid = api.enrol()
    late = now.replace(hour=15)  # 23:00 in Shanghai: inside the quiet hours
    enqueue(late, "lab.critical_value", {"alert_id": "a1", "patient_id": pid, "staff_user_id": staff})
    run(late)
    msgs = inbox_rows(topic="lab.critical_value")
    assert {(m["recipient_kind"], m["recipient_id"]) for m in msgs} == {("staff", staff), ("care_team", "care_team")}
    assert all(m["urgent"] for m in msgs)
    assert all("a1" in m["body_zh"] for m in msgs)
    assert inbox_rows(recipient_id=pid, topic="lab.critical_value") == []
    token = api.post("/auth/token", {"username": "dr_li", "password": "password-123"}).json()["access_token"]
    r = api.get("/inbox", key=token)
    assert r.status_code == 200, r.text
    assert {m["topic"] for m in r.json()["items"]} == {"lab.critical_value"}
    assert r.json()["unread"] == 2


def test_the_patient_critical_value_message_uses_the_hospitals_wording(db: Db, now: datetime, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "approved.yaml"
    path.write_text("templates:\n  lab.critical_value.patient:\n"
                    "    zh: {title: 请联系医院, body: '请您今天与主管医生联系。'}\n", encoding="utf-8")
    configure(monkeypatch, notification_templates=str(path))
    pid = enrol(now)
    enqueue(now, "lab.critical_value.patient", {"patient_id": pid, "alert_id": "a1"})
    run(now)
    [msg] = inbox_rows(topic="lab.critical_value.patient")
    assert (msg["title_zh"], msg["body_zh"]) == ("请联系医院", "请您今天与主管医生联系。")
    assert msg["recipient_id"] == pid


def test_budget_alerts_go_to_the_admins(api: Api, now: datetime) -> None:
    enqueue(now, "rewards.budget_alert", {"year": 2026, "percent": 80})
    run(now)
    [msg] = inbox_rows(topic="rewards.budget_alert")
    assert msg["recipient_kind"] == "admins"
    assert msg["body_zh"] == "2026 年度积分兑换预算已使用 80%。"
    nurse = api.make_staff("nurse1", "password-123", "nurse")
    token = api.post("/auth/token", {"username": "nurse1", "password": "password-123"}).json()["access_token"]
    assert api.get("/inbox", key=token).json()["items"] == []  # not for nurses
    assert [m["topic"] for m in api.get("/inbox").json()["items"]] == ["rewards.budget_alert"]  # admin key
    assert nurse


def test_the_sms_channel_follows_the_template_and_the_preferences(db: Db, now: datetime, gateway: Gateway,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    with_sms(monkeypatch, gateway)
    pid = enrol(now)
    slot = (now + timedelta(days=1)).isoformat()
    enqueue(now, "appointment.reminder", {"patient_id": pid, "appointment_id": "a1", "slot_start": slot})
    run(now)
    # points.changed has no SMS by default; the reminder has
    assert [d["topic"] for d in delivery_rows(channel="sms")] == ["appointment.reminder"]
    assert delivery_rows(channel="wechat") == []  # no openid, no WeChat gateway


def test_an_event_ingested_anywhere_is_dispatched(db: Db, now: datetime) -> None:
    pid = enrol(now)
    ingest_one(now, event(pid, "health.measurement", now, {"kind": "blood_pressure", "systolic": 120,
                                                            "diastolic": 80, "provenance": "device"}))
    run(now)
    bodies = [m["body_zh"] for m in inbox_rows(recipient_id=pid, topic="points.changed")]
    assert len(bodies) == 2
    assert bodies[0] == "您获得了 100 积分,当前余额 100 积分。"
    assert bodies[1].startswith("您获得了 ")


@pytest.mark.parametrize("change", ["deceased", "withdrawn"])
def test_no_sms_for_the_deceased_or_after_consent_is_withdrawn(db: Db, now: datetime, gateway: Gateway,
                                                                monkeypatch: pytest.MonkeyPatch, change: str) -> None:
    from sqlalchemy import update

    from carepoints.patients.models import Consent, Patient

    with_sms(monkeypatch, gateway)
    pid = enrol(now, consent={"version": "1.0", "accepted_at": (now - timedelta(days=1)).isoformat(),
                              "purposes": ["points_programme", "notifications"]})
    other = enrol(now)
    with write_tx() as session:
        if change == "deceased":
            session.execute(update(Patient).where(Patient.id == pid).values(status="deceased"))
        else:
            session.execute(update(Consent).where(Consent.patient_id == pid, Consent.purpose == "notifications")
                            .values(withdrawn_at=now))
    for p in (pid, other):
        enqueue(now, "care.inactivity", {"patient_id": p})
    run(now)
    assert [d["recipient_id"] for d in delivery_rows(channel="sms")] == [other]
    # the app still shows it to the deceased's record; without `notifications` consent a nudge is
    # not essential (notifications.dispatch.ESSENTIAL_TEMPLATES) and is not sent at all
    assert len(inbox_rows(recipient_id=pid, topic="care.inactivity")) == (1 if change == "deceased" else 0)


def test_a_run_is_bounded(db: Db, now: datetime, monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch, notify_max_per_run="2", notify_batch_size="1")
    pid = enrol(now)
    for _ in range(2):
        enqueue(now, "care.inactivity", {"patient_id": pid})
    assert run(now)["outbox"] == {"dispatched": 2}
    assert [m["status"] for m in outbox_rows()].count("pending") == 1
    assert run(now)["outbox"] == {"dispatched": 1}
    assert run(now)["outbox"] == {}


def test_answers_and_bookings_of_the_patients_own_care_are_essential() -> None:
    from carepoints.notifications.dispatch import essential

    for key in ("consult.reply", "consult.closed", "complaints.received", "complaints.closed", "admissions.booked",
                "admissions.booked.moved", "surgery.scheduled", "previsit.booked", "appointment.booked"):
        assert essential(key), key
    for key in ("care.inactivity", "improvements.assigned", "satisfaction.dropped", "consultation.reply",
                "admissionsx.booked"):
        assert not essential(key), key
