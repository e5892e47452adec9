"""`detect-fraud` on real ingested events (both databases): each signal kind raised
above its threshold and not below, re-runs and concurrent runs raise nothing twice."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, select

from carepoints.audit.service import Actor
from carepoints.config import reset_settings
from carepoints.jobs import registry
from carepoints.kit.db import read_tx, table, write_tx
from carepoints.kit.time import utc_now
from carepoints.operations import fraud
from carepoints.operations.errors import FraudSignalReviewedError
from carepoints.operations.models import FraudScanCursor, FraudSignal
from tests.conftest import Db
from tests.helpers import assert_ledger_intact, balance, bp, enrol, event, ingest

_signals = table(FraudSignal)


@pytest.fixture
def fdb(db: Db, monkeypatch: pytest.MonkeyPatch) -> Iterator[Db]:
    """The `db` database, the scan margin off (ids of committed events are read at once)."""
    monkeypatch.setenv("CAREPOINTS_FRAUD_SCAN_MARGIN_SECONDS", "0")
    reset_settings()
    yield db
    reset_settings()


def detect() -> dict[str, Any]:
    return fraud.detect(utc_now())


def signals() -> list[dict[str, Any]]:
    with read_tx() as session:
        return [dict(r) for r in session.connection().execute(
            select(_signals).order_by(_signals.c.kind, _signals.c.subject_key)).mappings()]


def kinds() -> list[tuple[str, str | None]]:
    return [(s["kind"], s["patient_id"]) for s in signals()]


def selfservice(pid: str, at: datetime, **attrs: Any) -> dict[str, Any]:
    return event(pid, "selfservice.used", at, {"action": "query", **attrs})


def reading(pid: str, at: datetime, provenance: str = "device", sys_: int = 132, **extra: Any) -> dict[str, Any]:
    return event(pid, "health.measurement", at, {**bp(provenance, sys_=sys_), **extra})


def test_velocity_above_and_below_threshold(fdb: Db, now: datetime) -> None:
    fast, calm = enrol(now), enrol(now)
    # an hour ago: the registration (at `now`) is outside every burst's window
    ingest(now, *[selfservice(fast, now - timedelta(minutes=60, seconds=-19 * i)) for i in range(31)])
    ingest(now, *[selfservice(calm, now - timedelta(minutes=60, seconds=-19 * i)) for i in range(30)])
    out = detect()
    assert out["signals"] == 1, signals()
    assert out["events"] == 2 + 61  # two registrations and the bursts
    [sig] = signals()
    assert (sig["kind"], sig["patient_id"], sig["window_key"], sig["status"]) == (
        "velocity", fast, "2026-06-15", "open")
    assert sig["details"] == {"events": 31, "minutes": 10, "threshold": 30}
    assert len(sig["event_ids"]) == 31


def test_repeated_readings_device_and_self_not_clinic(fdb: Db, now: datetime) -> None:
    device, self_, clinic, four = enrol(now), enrol(now), enrol(now), enrol(now)
    start = now - timedelta(hours=6)
    runs = ((device, "device", 5), (self_, "self_reported", 5), (clinic, "clinic", 6), (four, "device", 4))
    for pid, prov, n in runs:
        ingest(now, *[reading(pid, start + timedelta(hours=i), prov) for i in range(n)])
    detect()
    assert sorted(kinds()) == sorted([("repeated_reading", device), ("repeated_reading", self_)])
    assert all(s["details"]["run"] == 5 and "132" not in str(s["details"]) for s in signals())


def test_implausible_readings_daily_count_and_jump(fdb: Db, now: datetime) -> None:
    many, twelve, jumpy = enrol(now), enrol(now), enrol(now)
    start = now - timedelta(hours=8)
    ingest(now, *[reading(many, start + timedelta(minutes=30 * i), sys_=110 + i) for i in range(13)])
    ingest(now, *[reading(twelve, start + timedelta(minutes=30 * i), sys_=110 + i) for i in range(12)])
    ingest(now, reading(jumpy, now - timedelta(minutes=20), sys_=100), reading(jumpy, now - timedelta(minutes=14),
                                                                               sys_=175))
    detect()
    found = {s["patient_id"]: s for s in signals()}
    assert set(found) == {many, jumpy}
    assert found[many]["kind"] == found[jumpy]["kind"] == "implausible_reading"
    assert found[many]["details"]["rules"] == ["daily_count"]
    assert found[jumpy]["details"]["rules"] == ["jump"]
    assert len(found[jumpy]["event_ids"]) == 2


def offline(pid: str, at: datetime, staff: str) -> dict[str, Any]:
    return event(pid, "staff.offline_entry", at, {"behaviour": "selfservice.used", "attributes": {"action": "query"},
                                                  "sheet_ref": "sheet-1", "staff_id": staff})


def test_staff_outlier_daily_max(fdb: Db, now: datetime) -> None:
    pids = [enrol(now) for _ in range(3)]
    start = now - timedelta(hours=9)
    ingest(now, *[offline(pids[i % 3], start + timedelta(minutes=3 * i), "nurse-a") for i in range(51)])
    ingest(now, *[offline(pids[i % 3], start + timedelta(minutes=3 * i, seconds=30), "nurse-b") for i in range(50)])
    detect()
    [sig] = signals()
    assert (sig["kind"], sig["staff_id"], sig["subject_key"], sig["patient_id"]) == (
        "staff_outlier", "nurse-a", "staff:nurse-a", None)
    assert sig["details"]["rule"] == "daily_max"
    assert sig["details"]["entries"] == 51


def test_staff_outlier_against_the_median(fdb: Db, now: datetime) -> None:
    pid = enrol(now)
    start = now - timedelta(hours=5)
    evs = [offline(pid, start + timedelta(minutes=10 * i + j), s) for j, s in enumerate("bcd") for i in range(2)]
    evs += [offline(pid, start + timedelta(minutes=7 * i, seconds=5), "heavy") for i in range(11)]
    ingest(now, *evs)
    detect()
    found = [(s["staff_id"], s["details"]["rule"], s["details"]["median"]) for s in signals()]
    assert found == [("heavy", "median", 2)]


def test_shared_phone(fdb: Db, now: datetime) -> None:
    for _ in range(6):
        enrol(now, phone="13811112222")
    for _ in range(5):
        enrol(now, phone="13833334444")
    detect()
    [sig] = signals()
    assert sig["kind"] == "shared_phone"
    assert sig["details"]["patients"] == 6
    assert len(sig["details"]["patient_ids"]) == 6
    assert "1381111" not in str(sig)  # the key is a hash of the blind index, never the number
    assert sig["window_key"] == utc_now().astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")


def test_shared_device_and_kiosk_thresholds(fdb: Db, now: datetime) -> None:
    pids = [enrol(now) for _ in range(6)]
    ingest(now, *[reading(p, now - timedelta(hours=i + 1), device_id="BP-42") for i, p in enumerate(pids)])
    ingest(now, *[reading(p, now - timedelta(hours=i + 1, minutes=30), device_id="BP-7")
                  for i, p in enumerate(pids[:5])])
    ingest(now, *[selfservice(p, now - timedelta(hours=i + 1), kiosk_id="KIOSK-1") for i, p in enumerate(pids)])
    detect()
    [sig] = signals()
    assert (sig["kind"], sig["subject_key"], sig["details"]["patients"]) == ("shared_device", "device:BP-42", 6)
    assert sorted(sig["details"]["patient_ids"]) == sorted(pids)


def test_rerun_raises_nothing_new_and_now_bounds_the_scan(fdb: Db, now: datetime) -> None:
    pid = enrol(now)
    ingest(now, *[selfservice(pid, now - timedelta(minutes=5, seconds=-5 * i)) for i in range(31)])
    # --now before the events were received: nothing is read yet
    assert fraud.detect(utc_now() - timedelta(hours=1)) == {"events": 0, "signals": 0, "batches": 0}
    assert registry.run("detect-fraud", utc_now())["signals"] == 1
    assert registry.run("detect-fraud", utc_now()) == {"events": 0, "signals": 0, "batches": 0}
    with write_tx() as session:  # a lost cursor reads everything again: still nothing twice
        session.connection().execute(delete(table(FraudScanCursor)))
    again = detect()
    assert again["signals"] == 0
    assert again["events"] == 32
    assert len(signals()) == 1


def test_small_batches_judge_windows_across_batches(fdb: Db, now: datetime, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAREPOINTS_FRAUD_BATCH_SIZE", "10")
    reset_settings()
    pid = enrol(now)
    ingest(now, *[selfservice(pid, now - timedelta(minutes=5, seconds=-5 * i)) for i in range(31)])
    out = detect()
    assert out == {"events": 32, "signals": 1, "batches": 4}
    assert kinds() == [("velocity", pid)]


def test_concurrent_runs_raise_each_signal_once(racing: Db, now: datetime, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAREPOINTS_FRAUD_SCAN_MARGIN_SECONDS", "0")
    reset_settings()
    fast = [enrol(now) for _ in range(3)]
    for pid in fast:
        ingest(now, *[selfservice(pid, now - timedelta(minutes=5, seconds=-5 * i)) for i in range(31)])
    ingest(now, *[reading(p, now - timedelta(hours=i + 1), device_id="BP-1") for i, p in
                  enumerate([enrol(now) for _ in range(6)])])
    racers = 4
    gate = threading.Barrier(racers)
    results: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run() -> None:
        gate.wait()
        try:
            out = fraud.detect(utc_now())
            with lock:
                results.append(out)
        except BaseException as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert sum(r["signals"] for r in results) == 4  # three velocity, one shared device: each raised by one run
    assert sorted(k for k, _ in kinds()) == ["shared_device", "velocity", "velocity", "velocity"]
    assert len({(s["kind"], s["subject_key"], s["window_key"]) for s in signals()}) == 4
    assert detect()["signals"] == 0
    assert_ledger_intact()


def test_concurrent_reviews_act_once(racing: Db, now: datetime, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reviewers racing on one signal from separate connections: one freezes and revokes,
    the others answer `fraud.already_reviewed`; the points come back exactly once."""
    monkeypatch.setenv("CAREPOINTS_FRAUD_SCAN_MARGIN_SECONDS", "0")
    reset_settings()
    pid = enrol(now)
    ingest(now, *[selfservice(pid, now - timedelta(minutes=50, seconds=-5 * i)) for i in range(31)])
    assert detect()["signals"] == 1
    [sig] = signals()
    assert balance(pid, now) == 130
    racers = 4
    gate = threading.Barrier(racers)
    results: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(n: int) -> None:
        gate.wait()
        try:
            with write_tx() as session:
                out = fraud.review(session, sig["id"], "freeze_and_revoke", Actor("staff", f"rev-{n}", "admin"),
                                   utc_now())
            with lock:
                results.append(out)
        except BaseException as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(results) == 1
    assert [type(e) for e in errors] == [FraudSignalReviewedError] * (racers - 1)
    assert results[0]["outcome"]["frozen"] == [pid]
    assert len(results[0]["outcome"]["revoked"]) == 31
    assert balance(pid, now) == 100
    [done] = signals()
    assert (done["status"], done["action"], done["reviewed_by_id"]) == (
        "actioned", "freeze_and_revoke", results[0]["review"]["by"]["id"])
    assert_ledger_intact()
