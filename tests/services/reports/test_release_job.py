"""The `release-reports` job on SQLite and PostgreSQL: a held report whose critical alert a clinician
acknowledged in the care queue (or whose release delay passed) reaches the patient at the job's run
with its one `reports.new` message; held reports still awaiting review stay held. And `reports.new`
is a message about the patient's own care: sent even after the `notifications` consent is withdrawn."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import update

from carepoints.config import get_settings
from carepoints.jobs import registry
from carepoints.kit.db import write_tx
from carepoints.kit.time import utc_now
from carepoints.notifications.dispatch import essential
from carepoints.patients.models import Consent
from carepoints.services.reports import service
from tests.helpers import staff_token
from tests.notifications.kit import inbox_rows, run
from tests.services.reports.kit import alerts, critical, outbox, patient_token, push

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]


def _listed(api: Api, pid: str) -> list[str]:
    return [i["id"] for i in api.get(f"/patients/{pid}/reports", key=patient_token(pid)).json()["items"]]


def test_the_job_is_scheduled_every_ten_minutes() -> None:
    assert registry.SCHEDULE["release-reports"] == timedelta(minutes=10)
    assert "release-reports" in registry.JOBS


def test_an_acknowledged_report_is_released_by_the_job(api: Api) -> None:
    pid = api.enrol()
    waiting = api.enrol()
    rid = push(api, critical(pid)).json()["id"]
    push(api, critical(waiting, "LIS-W"))
    [alert] = alerts(pid)
    clinician = staff_token(api, "doc-job", "clinician")
    assert api.post(f"/care-alerts/{alert['id']}/acknowledge", key=clinician).status_code == 200
    assert outbox("reports.new", pid) == []  # acknowledging alone tells nobody yet
    assert registry.run("release-reports") == {"released": 1}
    assert outbox("reports.new", pid) == [{"topic": "reports.new", "key": pid,
                                           "payload": {"patient_id": pid, "report_id": rid}}]
    [staff_view] = api.get(f"/patients/{pid}/reports").json()["items"]
    assert (staff_view["held"], staff_view["released_at"] is not None) == (False, True)
    assert _listed(api, pid) == [rid]
    assert api.get(f"/patients/{pid}/reports/{rid}", key=patient_token(pid)).status_code == 200
    assert len(outbox("reports.new", pid)) == 1  # opening it after the job tells nobody again
    # the other patient's report still awaits review
    assert api.get(f"/patients/{waiting}/reports").json()["items"][0]["held"] is True
    assert outbox("reports.new", waiting) == []
    assert registry.run("release-reports") == {"released": 0}


def test_the_delay_releases_an_unreviewed_report(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    pid = api.enrol()
    rid = push(api, {**critical(pid), "issued_at": "2026-01-01T08:00:00+08:00"}).json()["id"]
    recent = push(api, {**critical(pid, "LIS-NOW"), "issued_at": utc_now().isoformat()}).json()["id"]
    assert registry.run("release-reports") == {"released": 0}  # default: no delay, review only
    monkeypatch.setenv("CAREPOINTS_REPORTS_RELEASE_DELAY_HOURS", "2")
    get_settings.cache_clear()
    try:
        assert registry.run("release-reports") == {"released": 1}
    finally:
        monkeypatch.delenv("CAREPOINTS_REPORTS_RELEASE_DELAY_HOURS")
        get_settings.cache_clear()
    assert [m["payload"]["report_id"] for m in outbox("reports.new", pid)] == [rid]
    held = {i["id"]: i["held"] for i in api.get(f"/patients/{pid}/reports").json()["items"]}
    assert held == {rid: False, recent: True}


def test_new_report_message_is_sent_without_notifications_consent(api: Api) -> None:
    assert essential("reports.new")
    assert essential("reports.new") == essential("health.advice")
    assert not essential("appointment.reminder")
    now = utc_now()
    when = api.patient_body()["consent"]["accepted_at"]
    consent = {"version": "1.0", "accepted_at": when, "purposes": ["points_programme", "notifications", "health_data"]}
    withdrew = api.enrol(consent=consent)
    with write_tx() as s:
        s.execute(update(Consent).where(Consent.patient_id == withdrew, Consent.purpose == "notifications")
                  .values(withdrawn_at=now))
    rid = push(api, critical(withdrew)).json()["id"]
    assert api.post(f"/patients/{withdrew}/reports/{rid}/release",
                    key=staff_token(api, "doc-msg", "clinician")).status_code == 200
    run(utc_now() + timedelta(seconds=1))  # after the release, however slow the machine
    [msg] = inbox_rows(recipient_id=withdrew, topic="reports.new")
    assert msg["body_zh"].startswith("您有一份新的检查报告")
    assert "6.9" not in msg["body_zh"]


def test_a_backlog_awaiting_review_never_hides_a_due_report(api: Api) -> None:
    first, second = api.enrol(), api.enrol()
    push(api, {**critical(first), "issued_at": "2026-01-01T08:00:00+08:00"})  # older, still awaiting review
    rid = push(api, critical(second, "LIS-2")).json()["id"]
    [alert] = alerts(second)
    assert api.post(f"/care-alerts/{alert['id']}/acknowledge",
                    key=staff_token(api, "doc-backlog", "clinician")).status_code == 200
    with write_tx() as session:
        assert service.release_due(session, utc_now(), limit=1) == {"released": 1}
    assert [m["payload"]["report_id"] for m in outbox("reports.new")] == [rid]
