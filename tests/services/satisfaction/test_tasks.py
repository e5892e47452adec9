"""The loop's jobs on real reviews and surveys (SQLite and PostgreSQL): `detect-improvements`
scores every review and survey response, makes an item of each negative review and low survey
(attributed to the patient's latest visit's department), once — re-runs and concurrent runs from
separate connections create nothing twice; `satisfaction-alerts` raises a department's drop once per
department and window, worked out by hand, and racing runs raise it once."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest

from carepoints.config import reset_settings
from carepoints.jobs import registry
from carepoints.kit.db import write_tx
from carepoints.kit.time import utc_now
from carepoints.services.satisfaction import tasks
from tests.analytics import visits_kit as vk
from tests.conftest import Db
from tests.services.satisfaction.kit import World, alerts, detect, items, levels, outbox, scores, sdb, survey

__all__ = ["sdb"]


def test_negative_reviews_and_low_surveys_become_items_once(sdb: Db) -> None:
    w = World("A", "B")
    d = w.departments
    day = vk.today() - timedelta(days=3)
    bad = w.review("A", day, 2, "等了两个小时")
    w.review("A", day, 3)  # neutral: a score, no item
    good = w.review("B", day, 5)
    visited = w.visit("B", day - timedelta(days=1))  # a survey after this visit counts for B
    low = survey(visited["patient_id"], levels(waiting="very_dissatisfied", recommend=2))
    nobody = w.patient()  # no visit: the item is not attributed to a department
    unattributed = survey(nobody, levels(overall="dissatisfied"))
    fine = survey(w.visit("A", day)["patient_id"], levels(overall="very_satisfied"))
    assert detect() == {"reviews": 3, "surveys": 3, "items": 3}
    got = {(i["kind"], i["source_id"]): i for i in items()}
    assert set(got) == {("review", bad["id"]), ("survey", low["id"]), ("survey", unattributed["id"])}
    r = got[("review", bad["id"])]
    assert (r["department_id"], r["appointment_id"], r["score"], r["reasons"], r["status"]) == (
        d["A"], bad["appointment_id"], 2.0, ["rating"], "open")
    s = got[("survey", low["id"])]
    assert (s["department_id"], s["appointment_id"], s["score"], s["reasons"]) == (
        d["B"], visited["id"], 4.0, ["waiting", "recommend"])
    assert got[("survey", unattributed["id"])]["department_id"] is None
    by_source = {x["source_id"]: x for x in scores()}
    assert len(by_source) == 6
    assert (by_source[good["id"]]["score"], by_source[good["id"]]["department_id"]) == (5.0, d["B"])
    assert by_source[fine["id"]]["low"] is False
    assert by_source[bad["id"]]["day"] == day
    # again: nothing new; a new review later is read from the cursor on
    assert detect() == {"reviews": 0, "surveys": 0, "items": 0}
    later = w.review("B", day, 1)
    assert detect() == {"reviews": 1, "surveys": 0, "items": 1}
    assert len(items()) == 4
    assert any(i["source_id"] == later["id"] for i in items())


def test_the_scan_waits_for_its_margin(db: Db, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAREPOINTS_SATISFACTION_SCAN_MARGIN_SECONDS", "600")
    reset_settings()
    w = World("A")
    w.review("A", vk.today() - timedelta(days=1), 1)
    assert detect()["reviews"] == 0  # written a moment ago: inside the margin
    assert tasks.detect_improvements(utc_now() + timedelta(hours=1))["reviews"] == 0  # never beyond the real clock
    monkeypatch.setenv("CAREPOINTS_SATISFACTION_SCAN_MARGIN_SECONDS", "0")
    reset_settings()
    assert registry.run("detect-improvements") == {"reviews": 1, "surveys": 0, "items": 1}
    reset_settings()


def _race(fn: Any, racers: int) -> list[Any]:
    gate = threading.Barrier(racers)
    out: list[Any] = []
    lock = threading.Lock()

    def run() -> None:
        gate.wait()
        try:
            value = fn()
        except BaseException as exc:  # collected and asserted below
            value = exc
        with lock:
            out.append(value)

    threads = [threading.Thread(target=run) for _ in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not [x for x in out if isinstance(x, BaseException)], out
    return out


def test_concurrent_detect_runs_create_each_item_once(racing: Db, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAREPOINTS_SATISFACTION_SCAN_MARGIN_SECONDS", "0")
    monkeypatch.setenv("CAREPOINTS_SATISFACTION_BATCH_SIZE", "2")  # overlapping batches
    reset_settings()
    w = World("A")
    day = vk.today() - timedelta(days=2)
    for rating in (1, 2, 1, 4, 2):
        w.review("A", day, rating)
    survey(w.visit("A", day)["patient_id"], levels(staff="very_dissatisfied"))
    results = _race(detect, 4)
    assert sum(r["items"] for r in results) == 5  # four reviews and one survey: each created by one run
    assert len(items()) == 5
    assert len({(i["kind"], i["source_id"]) for i in items()}) == 5
    assert len(scores()) == 6
    assert detect()["items"] == 0
    reset_settings()


def test_a_department_drop_raises_one_alert_per_window(sdb: Db, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAREPOINTS_SATISFACTION_ALERT_MIN_SAMPLES", "3")
    reset_settings()
    w = World("A", "B", "C")
    d = w.departments
    today = vk.today()
    before, recent = today - timedelta(days=20), today - timedelta(days=5)  # the previous and the last 14 days
    # A: 5, 5, 4 (4.67) then 4, 3, 4 (3.67): down 1.00 ≥ 0.5 → an alert
    # B: 4, 4, 4 (4.00) then 4, 3, 4 (3.67): down 0.33 → none
    # C: 5, 5 (two scores: too few) then 1, 1, 1 → none
    for dept, old, new in (("A", (5, 5, 4), (4, 3, 4)), ("B", (4, 4, 4), (4, 3, 4)), ("C", (5, 5), (1, 1, 1))):
        for rating in old:
            w.review(dept, before, rating)
        for rating in new:
            w.review(dept, recent, rating)
    w.review("A", today, 1)  # today is not a whole day yet: not counted
    detect()
    now = utc_now()
    assert registry.run("satisfaction-alerts", now) == {"alerts": 1}
    [a] = alerts()
    assert (a["department_id"], a["window_start"], a["window_end"], a["window_days"]) == (
        d["A"], today - timedelta(days=14), today - timedelta(days=1), 14)
    assert (a["current_avg"], a["previous_avg"], a["current_n"], a["previous_n"], a["drop"], a["status"]) == (
        3.67, 4.67, 3, 3, 1.0, "open")
    [msg] = outbox("satisfaction.dropped")
    assert (msg["alert_id"], msg["department_id"], msg["drop"], msg["days"]) == (a["id"], d["A"], "1.00", 14)
    assert tasks.satisfaction_alerts(now) == {"alerts": 0}  # again the same day
    assert tasks.satisfaction_alerts(now + timedelta(days=1)) == {"alerts": 0}  # an overlapping window
    assert len(alerts()) == 1
    reset_settings()


def test_racing_alert_runs_raise_once(racing: Db, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAREPOINTS_SATISFACTION_SCAN_MARGIN_SECONDS", "0")
    monkeypatch.setenv("CAREPOINTS_SATISFACTION_ALERT_MIN_SAMPLES", "1")
    reset_settings()
    w = World("A")
    today = vk.today()
    w.review("A", today - timedelta(days=20), 5)
    w.review("A", today - timedelta(days=3), 3)
    detect()
    now = utc_now()

    def once() -> int:
        with write_tx() as s:
            return tasks.raise_alerts(s, now)

    assert sorted(_race(once, 4)) == [0, 0, 0, 1]
    assert len(alerts()) == 1
    reset_settings()
