"""The fraud detectors as pure functions (no database)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from carepoints.operations import fraud_rules as rules

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 6, 15, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
T = rules.Thresholds()
_n = itertools.count()


def ev(pid: str, at: datetime, type_: str = "selfservice.used", **attrs: Any) -> rules.Ev:
    return rules.Ev(f"e{next(_n):06d}", type_, pid, at, at, attrs)


def reading(pid: str, at: datetime, sys_: int = 130, dia: int = 80, provenance: str = "device", **extra: Any
            ) -> rules.Ev:
    return ev(pid, at, "health.measurement", kind="blood_pressure", systolic=sys_, diastolic=dia,
              provenance=provenance, **extra)


def test_velocity_counts_events_within_the_window_only() -> None:
    burst = [ev("p1", T0 + timedelta(seconds=19 * i)) for i in range(31)]  # 31 within 9.5 minutes
    found = rules.velocity(burst, T, TZ)
    assert [(c.kind, c.subject_key, c.window_key, c.details["events"]) for c in found] == [
        ("velocity", "p1", "2026-06-15", 31)]
    assert found[0].event_ids == [e.id for e in burst]
    assert rules.velocity(burst[:30], T, TZ) == []
    spread = [ev("p1", T0 + timedelta(seconds=21 * i)) for i in range(31)]  # 31 over 10.5 minutes
    assert rules.velocity(spread, T, TZ) == []


def test_repeated_readings_need_k_identical_in_a_row() -> None:
    same = [reading("p1", T0 + timedelta(hours=i)) for i in range(5)]
    found = rules.repeated_readings(same, T, TZ)
    assert [(c.details["run"], c.details["kind"]) for c in found] == [(5, "blood_pressure")]
    assert "systolic" not in str(found[0].details)  # never a value
    broken = [*same[:2], reading("p1", T0 + timedelta(hours=2, minutes=30), sys_=131), *same[2:4]]
    assert rules.repeated_readings(broken, T, TZ) == []
    clinic = [reading("p1", T0 + timedelta(hours=i), provenance="clinic") for i in range(6)]
    assert rules.repeated_readings(clinic, T, TZ) == []


def test_implausible_daily_count_and_jump() -> None:
    day = [reading("p1", T0 + timedelta(minutes=30 * i), sys_=120 + i) for i in range(13)]
    found = rules.implausible_readings(day, T, TZ)
    assert [(c.window_key, c.details["rules"], c.details["readings"]) for c in found] == [
        ("2026-06-15", ["daily_count"], 13)]
    assert rules.implausible_readings(day[:12], T, TZ) == []
    jump = [reading("p2", T0, sys_=100, dia=60), reading("p2", T0 + timedelta(minutes=5), sys_=170, dia=90)]
    found = rules.implausible_readings(jump, T, TZ)
    assert [(c.details["rules"], c.details["jumps"], c.event_ids) for c in found] == [
        (["jump"], 1, [jump[0].id, jump[1].id])]
    slow = [reading("p2", T0, sys_=100, dia=60), reading("p2", T0 + timedelta(minutes=11), sys_=170, dia=90)]
    small = [reading("p2", T0, sys_=100, dia=60), reading("p2", T0 + timedelta(minutes=5), sys_=160, dia=90)]
    assert rules.implausible_readings(slow, T, TZ) == []
    assert rules.implausible_readings(small, T, TZ) == []


def test_staff_outliers_by_daily_max_and_by_median() -> None:
    day = "2026-06-15"
    entries = [rules.Entry("a", day, f"a{i}") for i in range(51)]
    found = rules.staff_outliers(entries, {day}, T)
    assert [(c.subject_key, c.staff_id, c.details["rule"], c.details["entries"]) for c in found] == [
        ("staff:a", "a", "daily_max", 51)]
    assert rules.staff_outliers(entries[:50], {day}, T) == []
    assert rules.staff_outliers(entries, {"2026-06-16"}, T) == []  # only the days asked for
    team = [rules.Entry(s, day, f"{s}{i}") for s in ("b", "c", "d") for i in range(2)]
    heavy = [rules.Entry("e", day, f"e{i}") for i in range(11)]
    found = rules.staff_outliers(team + heavy, {day}, T)
    assert [(c.staff_id, c.details["rule"], c.details["median"]) for c in found] == [("e", "median", 2)]
    assert rules.staff_outliers(team + heavy[:10], {day}, T) == []  # 10 = 5 x median: not more


def test_shared_devices_kiosks_have_their_own_threshold() -> None:
    evs = [reading(f"p{i}", T0 + timedelta(minutes=i), device_id="D1") for i in range(6)]
    found = rules.shared_devices(evs, evs[-1:], T, TZ)
    assert [(c.subject_key, c.details["patients"], c.details["device_kind"]) for c in found] == [
        ("device:D1", 6, "device")]
    assert rules.shared_devices(evs[:5], evs[:5], T, TZ) == []
    kiosk = [ev(f"p{i}", T0 + timedelta(minutes=i), kiosk_id="K1", action="pay") for i in range(6)]
    assert rules.shared_devices(kiosk, kiosk, T, TZ) == []
    assert len(rules.shared_devices(kiosk, kiosk, rules.Thresholds(shared_kiosk_patients=5), TZ)) == 1
    assert rules.shared_devices(evs, [], T, TZ) == []  # nothing new on it: not judged again
