"""Care signals: the inactivity step of `care-alerts` (local-day boundaries, thresholds,
re-runs, a new gap) and critical lab values (to the clinician / care team; the patient
only where enabled; ids only in payloads). The job tests run on the fixed test clock
(2026-06-15 10:30 Shanghai): the gap is 12-14 June, the lookback 13 May - 11 June."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pytest

from carepoints.config import reset_settings
from carepoints.jobs import registry
from tests.engagement.test_health_kit import alerts, outbox
from tests.helpers import bp, enrol, event, ingest_one

if TYPE_CHECKING:
    from tests.api_client import Api
    from tests.conftest import Db

pytest_plugins = ["tests.api_client"]
CST = ZoneInfo("Asia/Shanghai")


def read_on(pid: str, days: list[date], now: datetime, *, hour: int = 9, minute: int = 0,
            provenance: str = "device") -> None:
    for d in days:
        at = datetime(d.year, d.month, d.day, hour, minute, tzinfo=CST)
        ingest_one(now, event(pid, "health.measurement", at, bp(provenance)))


def days(first: date, n: int) -> list[date]:
    return [first + timedelta(days=i) for i in range(n)]


def test_a_patient_who_stopped_is_flagged_once(db: Db, now: datetime) -> None:
    pid = enrol(now)
    read_on(pid, days(date(2026, 6, 2), 9), now)
    read_on(pid, [date(2026, 6, 11)], now, hour=23, minute=59)  # the last lookback day, at 23:59
    assert registry.run("care-alerts", now)["inactive"] == 1
    [alert] = alerts(pid, "inactivity")
    assert alert["source_ref"] == f"inactivity:{pid}:2026-06-11"
    assert alert["details"] == {"last_reading_day": "2026-06-11"}
    assert outbox("care.inactivity", pid) == [{"patient_id": pid, "alert_id": alert["id"]}]
    assert registry.run("care-alerts", now + timedelta(hours=3))["inactive"] == 0  # the same day
    assert registry.run("care-alerts", now + timedelta(days=1))["inactive"] == 0  # the next day
    assert len(alerts(pid, "inactivity")) == 1
    assert len(outbox("care.inactivity", pid)) == 1
    # back for a day, then another gap: a new alert
    later = now + timedelta(days=1)
    read_on(pid, [date(2026, 6, 16)], later)
    assert registry.run("care-alerts", now + timedelta(days=4))["inactive"] == 0  # gap 17-18 June only
    assert registry.run("care-alerts", now + timedelta(days=5))["inactive"] == 1  # 17-19 June: a gap
    assert [a["source_ref"] for a in alerts(pid, "inactivity")] == [
        f"inactivity:{pid}:2026-06-11", f"inactivity:{pid}:2026-06-16"]


def test_a_reading_at_00_01_on_the_first_gap_day_is_not_a_gap(db: Db, now: datetime) -> None:
    pid = enrol(now)
    read_on(pid, days(date(2026, 6, 2), 10), now)
    read_on(pid, [date(2026, 6, 12)], now, hour=0, minute=1)
    assert registry.run("care-alerts", now)["inactive"] == 0


def test_nine_days_are_not_enough(db: Db, now: datetime) -> None:
    nine = enrol(now)
    read_on(nine, days(date(2026, 6, 3), 9), now)
    twice_a_day = enrol(now)  # a day counts once
    read_on(twice_a_day, days(date(2026, 6, 3), 9), now)
    read_on(twice_a_day, days(date(2026, 6, 3), 9), now, hour=20)
    outside = enrol(now)  # the tenth day lies before the lookback
    read_on(outside, [date(2026, 5, 12), *days(date(2026, 6, 3), 9)], now)
    clinic = enrol(now)  # clinic readings are not self-monitoring
    read_on(clinic, days(date(2026, 6, 2), 10), now, provenance="clinic")
    edge = enrol(now)  # the tenth day is the lookback's first (13 May)
    read_on(edge, [date(2026, 5, 13), *days(date(2026, 6, 3), 9)], now)
    assert registry.run("care-alerts", now)["inactive"] == 1
    assert [len(alerts(p, "inactivity")) for p in (nine, twice_a_day, outside, clinic, edge)] == [0, 0, 0, 0, 1]


def test_inactivity_settings(db: Db, now: datetime, monkeypatch: pytest.MonkeyPatch) -> None:
    pid = enrol(now)
    read_on(pid, days(date(2026, 6, 5), 5), now)  # 5-9 June, nothing since
    assert registry.run("care-alerts", now)["inactive"] == 0
    monkeypatch.setenv("CAREPOINTS_INACTIVITY_MIN_DAYS", "5")
    monkeypatch.setenv("CAREPOINTS_INACTIVITY_GAP_DAYS", "5")  # gap 10-14 June
    reset_settings()
    try:
        assert registry.run("care-alerts", now)["inactive"] == 1
    finally:
        monkeypatch.delenv("CAREPOINTS_INACTIVITY_MIN_DAYS")
        monkeypatch.delenv("CAREPOINTS_INACTIVITY_GAP_DAYS")
        reset_settings()


def test_the_job_is_scheduled_daily_in_the_morning() -> None:
    assert registry.SCHEDULE["care-alerts"] == (8, 0)
    assert registry.SCHEDULE["remind-medication"] == timedelta(minutes=5)


# --- critical lab values -------------------------------------------------------------------

def critical(pid: str, at: datetime, clinician: str | None = None, key: str | None = None) -> dict[str, object]:
    attrs: dict[str, object] = {"test": "血钾", "value": 6.9, "unit": "mmol/L"}
    if clinician is not None:
        attrs["clinician"] = clinician
    return event(pid, "lab.critical_value", at, attrs, key=key, source="lis")


def test_a_critical_value_goes_to_the_clinician_at_once(api: Api) -> None:
    pid = api.enrol()
    sid = api.make_staff("dr_wang", "correct horse battery", "clinician")
    at = api.now() - timedelta(minutes=2)
    by_id = api.send(critical(pid, at, sid, key="lab-1"))
    api.send(critical(pid, at, sid, key="lab-1"))  # a replay
    by_name = api.send(critical(pid, at, "dr_wang", key="lab-2"))
    unknown = api.send(critical(pid, at, "dr_nobody", key="lab-3"))
    nobody = api.send(critical(pid, at, key="lab-4"))
    raised = alerts(pid, "critical_value")
    assert [a["source_ref"] for a in raised] == [by_id["event_id"], by_name["event_id"], unknown["event_id"],
                                                 nobody["event_id"]]
    assert {a["severity"] for a in raised} == {"critical"}
    assert raised[0]["details"] == {"event_id": by_id["event_id"], "clinician": sid}
    assert raised[3]["details"] == {"event_id": nobody["event_id"]}
    sent = outbox("lab.critical_value", pid)
    assert sent == [{"alert_id": raised[0]["id"], "patient_id": pid, "staff_user_id": sid},
                    {"alert_id": raised[1]["id"], "patient_id": pid, "staff_user_id": sid},
                    {"alert_id": raised[2]["id"], "patient_id": pid},
                    {"alert_id": raised[3]["id"], "patient_id": pid}]
    assert outbox("lab.critical_value.patient", pid) == []  # off by default
    queue = api.get("/care-alerts", params={"patient_id": pid}).json()["items"]
    assert {q["severity"] for q in queue} == {"critical"}


def test_an_inactive_clinician_is_not_addressed(api: Api) -> None:
    from carepoints.kit.db import write_tx
    from carepoints.security import service as security

    pid = api.enrol()
    api.make_staff("dr_li", "correct horse battery", "clinician")
    with write_tx() as session:
        security.deactivate_staff(session, "dr_li")
    api.send(critical(pid, api.now() - timedelta(minutes=2), "dr_li"))
    assert "staff_user_id" not in outbox("lab.critical_value", pid)[0]


def test_the_patient_is_told_only_where_enabled(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAREPOINTS_CRITICAL_VALUE_NOTIFY_PATIENT", "true")
    reset_settings()
    try:
        pid = api.enrol()
        api.send(critical(pid, api.now() - timedelta(minutes=2)))
        [alert] = alerts(pid, "critical_value")
        assert outbox("lab.critical_value.patient", pid) == [{"patient_id": pid, "alert_id": alert["id"]}]
    finally:
        monkeypatch.delenv("CAREPOINTS_CRITICAL_VALUE_NOTIFY_PATIENT")
        reset_settings()
