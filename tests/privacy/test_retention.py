"""Retention (kit.retention and the `apply-retention` job): each registered kind of record
goes when it is past its period and not before; the audit log keeps at least 183 days; a
second run finds nothing more to do."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from carepoints.engagement.health.models import HealthMeasurement
from carepoints.events.models import Event
from carepoints.events.retention import redacted
from carepoints.jobs import registry
from carepoints.kit import retention
from carepoints.kit.db import read_tx, table
from tests.conftest import Db
from tests.helpers import assert_ledger_intact, balance, enrol, event, ingest_one
from tests.notifications.kit import configure, enqueue, inbox_rows, outbox_rows, run

DAYS = "event_health_values=30,health_measurements=30,notifications=30,audit_log=10"


def reading(pid: str, at: datetime, key: str) -> dict[str, Any]:
    return event(pid, "health.measurement", at, {"kind": "blood_pressure", "systolic": 131, "diastolic": 85,
                                                 "pulse": 70, "provenance": "device"}, key=key)


def attributes(key: str) -> dict[str, Any]:
    e = table(Event)
    with read_tx() as session:
        return dict(session.connection().execute(select(e.c.attributes).where(e.c.source_event_id == key)).scalar_one())


def measurement_events(pid: str) -> list[str]:
    m = table(HealthMeasurement)
    with read_tx() as session:
        return [r[0] for r in session.connection().execute(select(m.c.event_id).where(m.c.patient_id == pid))]


def test_the_setting_parses_and_the_audit_minimum_holds() -> None:
    assert retention.parse_days(" audit = 200 ,notifications=30,") == {"audit": 200, "notifications": 30}
    with pytest.raises(ValueError, match="kind=days"):
        retention.parse_days("audit=forever")
    days = retention.periods(DAYS)
    assert days["audit_log"] == 183  # never below six months
    assert days["notifications"] == 30
    assert retention.periods("")["event_health_values"] == 3 * 365
    with pytest.raises(ValueError, match="minimum"):
        retention.register("nothing", 1, lambda _s, _c: 0, min_days=2)


def test_redaction_keeps_what_the_rules_need() -> None:
    attrs = {"kind": "blood_pressure", "systolic": 131, "diastolic": 85, "pulse": 70, "provenance": "device"}
    assert redacted("health.measurement", attrs) == {"kind": "blood_pressure", "provenance": "device",
                                                     "redacted": True}
    offline = {"behaviour": "health.measurement", "attributes": attrs, "sheet_ref": "S1", "staff_id": "x"}
    out = redacted("staff.offline_entry", offline)
    assert out["attributes"] == {"kind": "blood_pressure", "provenance": "device", "redacted": True}
    assert out["sheet_ref"] == "S1"
    assert redacted("lab.critical_value", {"test": "K", "value": 7.1, "unit": "mmol/L", "clinician": "c1"}) == {
        "clinician": "c1", "redacted": True}


def test_the_job_removes_only_what_is_past_its_period_and_is_rerunnable(db: Db, now: datetime,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch, retention_days=DAYS)
    pid = enrol(now - timedelta(days=60))
    ingest_one(now, reading(pid, now - timedelta(days=40), "old"))
    ingest_one(now, reading(pid, now - timedelta(days=10), "new"))
    points = balance(pid, now)
    old_at = now - timedelta(days=45)
    enqueue(old_at, "appointment.booked", {"patient_id": pid, "appointment_id": "a-old"})
    run(old_at)
    enqueue(now, "appointment.booked", {"patient_id": pid, "appointment_id": "a-new"})
    assert len(measurement_events(pid)) == 2
    inbox_before = len(inbox_rows(recipient_id=pid))

    report = registry.run("apply-retention", now)
    kinds = report["kinds"]
    assert kinds["event_health_values"]["purged"] == 1
    assert kinds["health_measurements"]["purged"] == 1
    assert kinds["notifications"]["purged"] >= 2  # the old outbox row and its inbox message
    assert kinds["audit_log"]["days"] == 183
    assert attributes("old") == {"kind": "blood_pressure", "provenance": "device", "redacted": True}
    assert attributes("new")["systolic"] == 131
    assert len(measurement_events(pid)) == 1
    assert "a-old" not in [r["payload"].get("appointment_id") for r in outbox_rows()]
    assert "a-new" in [r["payload"].get("appointment_id") for r in outbox_rows()]  # pending: never touched
    assert len(inbox_rows(recipient_id=pid)) < inbox_before
    assert balance(pid, now) == points  # the events stay, and with them the ledger
    assert_ledger_intact()

    again = registry.run("apply-retention", now)
    purged = {k: v["purged"] for k, v in again["kinds"].items()}
    assert {"event_health_values", "health_measurements", "notifications", "audit_log"} <= set(purged)
    assert set(purged.values()) == {0}  # nothing more (other domains' kinds included)
    assert attributes("new")["systolic"] == 131
    # a replay of the redacted event is still a duplicate, not a conflict
    assert ingest_one(now, reading(pid, now - timedelta(days=40), "old"))["duplicate"] is True


def test_unknown_kinds_in_the_setting_are_reported(db: Db, now: datetime, monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch, retention_days="notifications=400,chat_logs=30")
    report = registry.run("apply-retention", now)
    assert report["unknown"] == ["chat_logs"]
    assert report["kinds"]["notifications"]["days"] == 400
    assert "apply-retention" in registry.SCHEDULE
