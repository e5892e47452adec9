"""The pure rules engine against the default programme (DESIGN.md "Rules").

DB-free: a `Patient` threads one `PatientState` through evaluate() and apply()
exactly as the ingest service does, so every test is a sequence of events and
the exact awards and notices each one produced."""

from __future__ import annotations

import copy
import itertools
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from carepoints.rules.engine import (
    CompiledProgramme,
    Decision,
    EventView,
    NoShowRec,
    PatientState,
    ProgrammeSet,
    SuspensionRec,
    add_day,
    apply,
    condition_holds,
    evaluate,
    in_off_peak,
    parse_ts,
    remove_day,
    streak_units,
    text_length,
)
from carepoints.rules.programme import AttrCondition, Programme
from carepoints.rules.service import default_programme_text, parse_programme

TZ = ZoneInfo("Asia/Shanghai")
DEFAULT = parse_programme(default_programme_text())
PROGRAMMES = ProgrammeSet([CompiledProgramme(1, DEFAULT, TZ)])
NOW = datetime(2027, 6, 1, tzinfo=UTC)  # the clock: after every event below, within max_event_age
H720 = timedelta(hours=720)
SECOND = timedelta(seconds=1)
STREAK = "health_checkin"  # the streak group of the default programme
SUSPENDED_TO_0531 = ("rules.suspended", "因多次爽约,积分获取暂停至2026-05-31 09:00,本次不计积分")
CLINIC_UNMET = ("rules.condition_not_met", "门诊测量的数据已记录,自我监测的数据才计积分")


def local(y: int, m: int, d: int, hh: int = 9, mm: int = 0, ss: int = 0) -> datetime:
    """An instant given as Shanghai wall-clock time."""
    return datetime(y, m, d, hh, mm, ss, tzinfo=TZ)


def iso(value: datetime) -> str:
    """An attribute timestamp as parse_event stores it (UTC ISO 8601)."""
    return value.astimezone(UTC).isoformat()


def custom(rules: list[dict[str, Any]], **settings: Any) -> ProgrammeSet:
    doc = {"name": {"zh": "测试方案", "en": "Test"}, "settings": settings, "rules": rules}
    return ProgrammeSet([CompiledProgramme(1, Programme.model_validate(doc), TZ)])


def got(decision: Decision) -> list[tuple[str, int]]:
    return [(a.rule, a.points) for a in decision.awards]


def said(decision: Decision) -> list[tuple[str, str]]:
    return [(n.code, n.message) for n in decision.notices]


def codes(decision: Decision) -> list[str]:
    return [n.code for n in decision.notices]


class Patient:
    """One patient's rule state, threaded through evaluate() and apply() as ingest does."""

    def __init__(self, programmes: ProgrammeSet = PROGRAMMES, **state: Any) -> None:
        self.programmes = programmes
        self.state = PatientState("p1", **state)
        self._ids = itertools.count(1)
        self.last_id = ""
        self.totals: Counter[str] = Counter()

    def send(self, etype: str, at: datetime, *, now: datetime = NOW, **attrs: Any) -> Decision:
        self.last_id = f"e{next(self._ids)}"
        decision = evaluate(self.programmes, EventView(self.last_id, etype, at, attrs), self.state, now)
        if decision.suspension is not None and not decision.suspension.id:
            decision.suspension.id = f"s-{self.last_id}"  # the service assigns a new id here
        apply(self.state, decision)
        for award in decision.awards:
            self.totals[award.rule] += award.points
        return decision

    def reading(self, at: datetime, provenance: str = "self_reported", **kw: Any) -> Decision:
        return self.send("health.measurement", at, kind="blood_pressure", systolic=120, diastolic=80,
                         provenance=provenance, **kw)

    def attended(self, slot: datetime, *, booked_at: datetime, checked_in_at: datetime | None = None,
                 appointment_id: str = "A1", **extra: Any) -> Decision:
        attrs: dict[str, Any] = {"appointment_id": appointment_id, "slot_start": iso(slot),
                                 "booked_at": iso(booked_at), **extra}
        if checked_in_at is not None:
            attrs["checked_in_at"] = iso(checked_in_at)
        return self.send("appointment.attended", slot + timedelta(hours=1), **attrs)

    def no_show(self, slot: datetime, appointment_id: str | None = None) -> Decision:
        return self.send("appointment.no_show", slot + timedelta(minutes=30),
                         appointment_id=appointment_id or f"NS-{slot.isoformat()}", slot_start=iso(slot))

    def referral(self, at: datetime, referral_id: str = "R1") -> Decision:
        return self.send("referral.visit", at, referral_id=referral_id, from_institution="社区卫生服务中心")

    def review(self, at: datetime, text: str, appointment_id: str = "A1") -> Decision:
        return self.send("review.submitted", at, appointment_id=appointment_id, rating=5, text=text)


def read_days(p: Patient, first: date, days: list[int], hour: int = 9) -> dict[int, Decision]:
    """One self-monitoring reading at `hour` local on each 1-based day of a run starting at `first`."""
    out = {}
    for n in days:
        d = first + timedelta(days=n - 1)
        out[n] = p.reading(local(d.year, d.month, d.day, hour))
    return out


# --- text length ------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("", 0),
    ("好", 1),
    ("e\u0301", 1),  # decomposed é: NFC makes it one code point
    ("é", 1),
    ("a b\u3000c\n\td\r\n", 4),  # ASCII space, ideographic space, newline, tab, CRLF
    ("\u3000 \n", 0),
    ("😀", 1),  # one astral code point, not two UTF-16 units
])
def test_text_length_counts_nfc_code_points_without_whitespace(text: str, expected: int) -> None:
    assert text_length(text) == expected


@pytest.mark.parametrize(("text", "earns"), [
    ("好" * 49, False),
    ("好" * 50, True),
    ("好" * 49 + " \u3000\n\t", False),  # trailing whitespace of every kind is ignored
    ("好" * 25 + "\u3000\n" + "好" * 24, False),
    ("好" * 25 + "\u3000\n" + "好" * 25, True),
    ("好" * 49 + "e\u0301", True),  # 49 + one NFC code point = 50
    ("好" * 48 + "e\u0301", False),  # the decomposed é is one, not two
])
def test_review_needs_50_code_points(text: str, earns: bool) -> None:
    p = Patient()
    decision = p.review(local(2026, 6, 15), text)
    if earns:
        assert got(decision) == [("review", 20)]
        assert decision.awards[0].message == "感谢您的评价,奖励20积分"
        assert said(decision) == []
    else:
        assert got(decision) == []
        assert said(decision) == [("rules.condition_not_met", "评价满50字可获得积分")]
        assert decision.counters == {}


# --- book_ahead, on_time, off-peak ----------------------------------------------

MON_0900 = local(2026, 6, 15, 9)  # Monday, not off-peak


@pytest.mark.parametrize(("booked_at", "expected"), [
    (MON_0900 - timedelta(hours=72), [("book_ahead", 30)]),  # exactly 72 h ahead
    (MON_0900 - timedelta(hours=72) + SECOND, []),  # 72 h minus one second
    (MON_0900 - timedelta(hours=72) - SECOND, [("book_ahead", 30)]),
    (MON_0900 - timedelta(days=30), [("book_ahead", 30)]),
    (MON_0900 + SECOND, []),  # booked after the slot
])
def test_book_ahead_at_exactly_72_hours(booked_at: datetime, expected: list[tuple[str, int]]) -> None:
    p = Patient()
    decision = p.attended(MON_0900, booked_at=booked_at, checked_in_at=MON_0900 + SECOND)  # late: no on_time
    assert got(decision) == expected
    if not expected:
        assert said(decision) == [("rules.condition_not_met", "未满足「提前预约」的积分条件")]


def test_book_ahead_compares_instants_across_offsets() -> None:
    p = Patient()
    decision = p.send("appointment.attended", MON_0900 + timedelta(hours=1), appointment_id="A1",
                      slot_start="2026-06-15T01:00:00+00:00", booked_at="2026-06-12T09:00:00+08:00")
    assert got(decision) == [("book_ahead", 30)]
    decision = p.send("appointment.attended", MON_0900 + timedelta(hours=1), appointment_id="A2",
                      slot_start="2026-06-15T01:00:00Z", booked_at="2026-06-12T09:00:01+08:00")
    assert got(decision) == []


@pytest.mark.parametrize(("booked_by", "expected"), [
    ("clinician", []),
    ("staff", []),
    ("patient", [("book_ahead", 30)]),
    (None, [("book_ahead", 30)]),  # absent: a patient booking
])
def test_book_ahead_only_when_the_patient_booked(booked_by: str | None, expected: list[tuple[str, int]]) -> None:
    extra = {} if booked_by is None else {"booked_by": booked_by}
    p = Patient()
    decision = p.attended(MON_0900, booked_at=MON_0900 - timedelta(days=7), **extra)
    assert got(decision) == expected


@pytest.mark.parametrize(("checked_in_at", "expected"), [
    (MON_0900, [("on_time", 10)]),
    (MON_0900 - timedelta(minutes=40), [("on_time", 10)]),
    (MON_0900 + SECOND, []),
    (None, []),
])
def test_on_time_means_checked_in_no_later_than_slot_start(
        checked_in_at: datetime | None, expected: list[tuple[str, int]]) -> None:
    p = Patient()
    decision = p.attended(MON_0900, booked_at=MON_0900 - timedelta(hours=1), checked_in_at=checked_in_at)
    assert got(decision) == expected
    if expected:
        assert decision.awards[0].message == "准时就诊,奖励10积分"


@pytest.mark.parametrize(("slot", "factor"), [
    (local(2026, 6, 15, 10), 2),  # Monday 10:00 Shanghai (02:00 UTC)
    (local(2026, 6, 15, 10, 59, 59), 2),
    (local(2026, 6, 15, 11), 1),
    (local(2026, 6, 15, 9, 59, 59), 1),
    (local(2026, 6, 15, 14), 2),
    (local(2026, 6, 19, 14, 59, 59), 2),  # Friday
    (local(2026, 6, 15, 15), 1),
    (local(2026, 6, 20, 10), 1),  # Saturday
    (local(2026, 6, 21, 14, 30), 1),  # Sunday
])
def test_off_peak_doubles_attendance_awards(slot: datetime, factor: int) -> None:
    p = Patient()
    decision = p.attended(slot, booked_at=slot - timedelta(days=4), checked_in_at=slot)
    assert got(decision) == [("book_ahead", 30 * factor), ("on_time", 10 * factor)]
    assert in_off_peak(slot, DEFAULT.settings, TZ) is (factor == 2)


def test_off_peak_doubles_exam_and_the_flag_on_the_event_is_ignored() -> None:
    p = Patient()
    in_window = p.send("exam.attended", local(2026, 6, 15, 11), exam_id="X1", modality="CT",
                       slot_start=iso(local(2026, 6, 15, 10, 30)))
    assert got(in_window) == [("exam_attended", 20)]
    flagged = p.send("exam.attended", local(2026, 6, 15, 12), exam_id="X2", modality="MRI",
                     slot_start=iso(local(2026, 6, 15, 11, 30)), off_peak=True)
    assert got(flagged) == [("exam_attended", 10)]


def test_off_peak_award_then_the_same_appointment_again_earns_nothing() -> None:
    slot = local(2026, 6, 15, 10)
    p = Patient()
    first = p.attended(slot, booked_at=slot - timedelta(days=4), checked_in_at=slot)
    assert got(first) == [("book_ahead", 60), ("on_time", 20)]
    # the once-per limit counts awards, not points: one occurrence each
    assert first.counters["book_ahead:once:A1"] == (1, 1)
    assert first.counters["on_time:once:A1"] == (1, 1)
    again = p.attended(slot, booked_at=slot - timedelta(days=4), checked_in_at=slot)
    assert got(again) == []
    assert said(again) == [("rules.once_per_appointment", "该项目已获得过「提前预约」积分")]
    other = p.attended(slot, booked_at=slot - timedelta(days=4), checked_in_at=slot, appointment_id="A2")
    assert got(other) == [("book_ahead", 60), ("on_time", 20)]


def test_multiplier_is_applied_before_the_rules_own_limits() -> None:
    programmes = custom([
        {"code": "exam", "names": {"zh": "检查", "en": "Exam"}, "event": "exam.attended", "points": 15,
         "limits": {"daily_points": 20}},
        {"code": "double", "names": {"zh": "加倍", "en": "Double"}, "event": "exam.attended", "multiplier": 2,
         "conditions": [{"type": "off_peak"}]},
    ], off_peak=[{"weekdays": [1, 2, 3, 4, 5], "start": "10:00", "end": "11:00"}])
    p = Patient(programmes)
    first = p.send("exam.attended", local(2026, 6, 15, 12), exam_id="X1", modality="CT",
                   slot_start=iso(local(2026, 6, 15, 10)))
    assert got(first) == [("exam", 20)]  # 15 × 2 = 30, then cut to the daily cap of 20
    assert first.awards[0].message == "检查+20积分"
    capped = p.send("exam.attended", local(2026, 6, 15, 13), exam_id="X2", modality="CT",
                    slot_start=iso(local(2026, 6, 15, 9)))
    assert got(capped) == []
    assert said(capped) == [("rules.daily_cap", "今日「检查」积分已达上限20分")]


# --- daily caps and the local day ---------------------------------------------------

def test_health_checkin_third_reading_of_a_local_day_earns_nothing() -> None:
    p = Patient()
    first = p.reading(local(2026, 6, 15, 7))
    assert got(first) == [("first_checkin", 50), ("health_checkin", 10)]
    assert [a.message for a in first.awards] == ["首次完成健康打卡,额外奖励50积分!", "健康打卡,奖励10积分"]
    assert said(first) == []
    second = p.reading(local(2026, 6, 15, 12))
    assert got(second) == [("health_checkin", 10)]
    assert said(second) == []  # first_checkin's once-ever block is quiet when something was earned
    third = p.reading(local(2026, 6, 15, 21))
    assert got(third) == []
    assert said(third) == [("rules.daily_cap", "今日「健康打卡」积分已达上限20分")]
    assert third.counters == {"health_checkin:day:2026-06-15": (1, None)}  # the day is counted, no limit used
    assert third.days == [(STREAK, date(2026, 6, 15))]
    assert p.state.counters["health_checkin:d:2026-06-15"] == 20
    assert p.state.counters["annual:2026"] == 70
    assert p.state.runs[STREAK] == [(date(2026, 6, 15), date(2026, 6, 15))]


def test_medication_daily_cap_is_30() -> None:
    p = Patient()
    decisions = [p.send("medication.taken", local(2026, 6, 15, h), plan_id="M1") for h in (7, 12, 18, 22)]
    assert [got(d) for d in decisions] == [[("medication", 10)]] * 3 + [[]]
    assert said(decisions[3]) == [("rules.daily_cap", "今日「服药打卡」积分已达上限30分")]
    assert got(p.send("medication.taken", local(2026, 6, 16, 0), plan_id="M1")) == [("medication", 10)]


def test_medication_pays_once_per_planned_time() -> None:
    p = Patient()
    planned = local(2026, 6, 15, 8).isoformat()
    first = p.send("medication.taken", local(2026, 6, 15, 8), plan_id="M1", scheduled_for=planned)
    again = p.send("medication.taken", local(2026, 6, 15, 9), plan_id="M1", scheduled_for=planned)
    other = p.send("medication.taken", local(2026, 6, 15, 20), plan_id="M1",
                   scheduled_for=local(2026, 6, 15, 20).isoformat())
    assert [got(d) for d in (first, again, other)] == [[("medication", 10)], [], [("medication", 10)]]
    assert [c for c, _m in said(again)] == ["rules.once_per_plan_scheduled_for"]


def test_daily_points_cap_truncates_to_the_remaining_room() -> None:
    programmes = custom([{"code": "post", "names": {"zh": "分享", "en": "Post"},
                          "event": "community.post_approved", "points": 15, "limits": {"daily_points": 20}}])
    p = Patient(programmes)
    decisions = [p.send("community.post_approved", local(2026, 6, 15, h), post_id=f"P{h}") for h in (8, 9, 10)]
    assert [got(d) for d in decisions] == [[("post", 15)], [("post", 5)], []]
    assert said(decisions[1]) == []
    assert said(decisions[2]) == [("rules.daily_cap", "今日「分享」积分已达上限20分")]
    assert p.state.counters["post:d:2026-06-15"] == 20


def test_local_midnight_starts_a_new_day_within_one_utc_day() -> None:
    times = [local(2026, 6, 15, 23, 59, 58), local(2026, 6, 15, 23, 59, 59), local(2026, 6, 16, 0, 0, 0)]
    assert {t.astimezone(UTC).date() for t in times} == {date(2026, 6, 15)}
    p = Patient()
    decisions = [p.reading(t) for t in times]
    assert [got(d) for d in decisions] == [
        [("first_checkin", 50), ("health_checkin", 10)], [("health_checkin", 10)], [("health_checkin", 10)]]
    assert [d.days for d in decisions] == [
        [(STREAK, date(2026, 6, 15))], [(STREAK, date(2026, 6, 15))], [(STREAK, date(2026, 6, 16))]]
    assert p.state.runs[STREAK] == [(date(2026, 6, 15), date(2026, 6, 16))]


def test_utc_midnight_does_not_start_a_new_local_day() -> None:
    times = [local(2026, 6, 16, 7, 59, 59), local(2026, 6, 16, 8, 0, 0), local(2026, 6, 16, 9)]
    assert times[0].astimezone(UTC).date() == date(2026, 6, 15)
    assert times[1].astimezone(UTC).date() == date(2026, 6, 16)
    p = Patient()
    decisions = [p.reading(t) for t in times]
    assert [got(d) for d in decisions] == [[("first_checkin", 50), ("health_checkin", 10)],
                                           [("health_checkin", 10)], []]
    assert codes(decisions[2]) == ["rules.daily_cap"]
    assert p.state.runs[STREAK] == [(date(2026, 6, 16), date(2026, 6, 16))]


# --- streaks ----------------------------------------------------------------------

def test_streak_pays_7_day_units_and_30_day_units_over_60_days() -> None:
    p = Patient()
    decisions = read_days(p, date(2026, 3, 1), list(range(1, 61)))
    streak_awards = {n: [r for r in got(d) if r[0].startswith("checkin_streak")] for n, d in decisions.items()}
    assert streak_awards[6] == []
    assert got(decisions[7]) == [("health_checkin", 10), ("checkin_streak_7", 50)]
    assert decisions[7].awards[1].message == "连续7天健康打卡,奖励50积分!"
    assert got(decisions[14]) == [("health_checkin", 10), ("checkin_streak_7", 50)]
    assert got(decisions[28]) == [("health_checkin", 10), ("checkin_streak_7", 50)]
    assert got(decisions[29]) == [("health_checkin", 10)]
    assert got(decisions[30]) == [("health_checkin", 10), ("checkin_streak_30", 200)]
    assert decisions[30].awards[1].message == "连续30天健康打卡,额外奖励200积分!"
    assert got(decisions[60]) == [("health_checkin", 10), ("checkin_streak_30", 200)]
    paying = {n for n, awards in streak_awards.items() if awards}
    assert paying == {7, 14, 21, 28, 30, 35, 42, 49, 56, 60}
    assert p.totals == {"first_checkin": 50, "health_checkin": 600, "checkin_streak_7": 400,
                        "checkin_streak_30": 400}
    assert p.state.runs[STREAK] == [(date(2026, 3, 1), date(2026, 4, 29))]


def test_late_gap_day_joins_two_runs_and_pays_once() -> None:
    p = Patient()
    first = date(2026, 6, 1)
    before = read_days(p, first, [1, 2, 3, 5, 6, 7])
    assert all(not any(r.startswith("checkin_streak") for r, _ in got(d)) for d in before.values())
    assert p.state.runs[STREAK] == [(date(2026, 6, 1), date(2026, 6, 3)), (date(2026, 6, 5), date(2026, 6, 7))]
    gap = p.reading(local(2026, 6, 4, 9))
    assert got(gap) == [("health_checkin", 10), ("checkin_streak_7", 50)]
    assert p.state.runs[STREAK] == [(date(2026, 6, 1), date(2026, 6, 7))]
    assert got(p.reading(local(2026, 6, 4, 20))) == [("health_checkin", 10)]  # the same day again
    assert got(p.reading(local(2026, 6, 8, 9))) == [("health_checkin", 10)]  # day 8: ⌊8/7⌋ = 1, paid
    assert p.totals["checkin_streak_7"] == 50


def test_joining_a_paid_run_pays_only_the_difference() -> None:
    p = Patient()
    read_days(p, date(2026, 6, 1), [1, 2, 3, 4, 5, 6, *range(8, 15)])  # runs of 6 and 7: one unit paid
    assert p.totals["checkin_streak_7"] == 50
    gap = p.reading(local(2026, 6, 7, 9))  # one run of 14: ⌊14/7⌋ − (⌊6/7⌋ + ⌊7/7⌋) = 1
    assert got(gap) == [("health_checkin", 10), ("checkin_streak_7", 50)]
    assert p.totals["checkin_streak_7"] == 100


def test_streak_totals_do_not_depend_on_arrival_order() -> None:
    p = Patient()
    read_days(p, date(2026, 3, 1), list(range(30, 0, -1)))  # newest first
    assert p.totals == {"first_checkin": 50, "health_checkin": 300, "checkin_streak_7": 200,
                        "checkin_streak_30": 200}


def test_a_day_counts_once_however_many_readings() -> None:
    p = Patient()
    for n in range(7):
        for hour in (6, 12, 22):
            p.reading(local(2026, 6, 1 + n, hour))
    assert p.totals == {"first_checkin": 50, "health_checkin": 140, "checkin_streak_7": 50}
    assert p.state.runs[STREAK] == [(date(2026, 6, 1), date(2026, 6, 7))]


def test_clinic_reading_earns_nothing_and_records_no_streak_day() -> None:
    p = Patient()
    clinic = p.reading(local(2026, 6, 4, 9), provenance="clinic")
    assert got(clinic) == []
    assert said(clinic) == [CLINIC_UNMET]
    assert clinic.days == []
    assert clinic.runs == {}
    assert clinic.counters == {}
    read_days(p, date(2026, 6, 1), [1, 2, 3, 5, 6, 7])  # the clinic day does not bridge the gap
    assert p.totals["checkin_streak_7"] == 0
    assert p.state.runs[STREAK] == [(date(2026, 6, 1), date(2026, 6, 3)), (date(2026, 6, 5), date(2026, 6, 7))]


def test_device_readings_earn_like_self_reported_ones() -> None:
    p = Patient()
    assert got(p.reading(local(2026, 6, 1), provenance="device")) == [("first_checkin", 50),
                                                                       ("health_checkin", 10)]


# --- add_day / remove_day / streak_units ----------------------------------------------

D = date(2026, 6, 10)


def days(a: int, b: int) -> tuple[date, date]:
    return D + timedelta(days=a), D + timedelta(days=b)


@pytest.mark.parametrize(("runs", "day", "new_runs", "merged", "length"), [
    ([], 0, [days(0, 0)], [], 1),
    ([days(0, 2)], 3, [days(0, 3)], [3], 4),  # extends on the right
    ([days(1, 2)], 0, [days(0, 2)], [2], 3),  # extends on the left
    ([days(0, 2), days(4, 6)], 3, [days(0, 6)], [3, 3], 7),  # joins two
    ([days(0, 2), days(8, 9)], 5, [days(0, 2), days(5, 5), days(8, 9)], [], 1),
])
def test_add_day(runs: list[tuple[date, date]], day: int, new_runs: list[tuple[date, date]],
                 merged: list[int], length: int) -> None:
    assert add_day(runs, D + timedelta(days=day)) == (new_runs, merged, length)


@pytest.mark.parametrize("day", [0, 1, 2])
def test_add_day_already_counted_is_none(day: int) -> None:
    assert add_day([days(0, 2), days(5, 6)], D + timedelta(days=day)) is None


@pytest.mark.parametrize(("day", "expected"), [
    (0, [days(1, 6)]),
    (6, [days(0, 5)]),
    (3, [days(0, 2), days(4, 6)]),
    (9, [days(0, 6)]),
])
def test_remove_day(day: int, expected: list[tuple[date, date]]) -> None:
    assert remove_day([days(0, 6)], D + timedelta(days=day)) == expected


@pytest.mark.parametrize(("n", "merged", "length", "units"), [
    (7, [], 6, 0), (7, [], 7, 1), (7, [6], 7, 1), (7, [3, 3], 7, 1), (7, [6, 7], 14, 1),
    (7, [7], 8, 0), (30, [29], 30, 1), (7, [13], 14, 1), (7, [14, 13], 28, 1),
])
def test_streak_units(n: int, merged: list[int], length: int, units: int) -> None:
    assert streak_units(n, merged, length) == units


# --- the annual cap -----------------------------------------------------------------

def test_annual_cap_reduces_an_award_to_the_remaining_room() -> None:
    p = Patient(counters={"annual:2026": 9995})
    decision = p.referral(local(2026, 6, 15))
    assert got(decision) == [("referral", 5)]
    assert said(decision) == [("rules.annual_cap", "已达本年度积分上限10000分,本次按剩余额度发放")]
    assert decision.counters == {"annual:2026": (5, 10000), "referral:once:R1": (1, 1)}
    full = p.referral(local(2026, 6, 16), "R2")
    assert got(full) == []
    assert said(full) == [("rules.annual_cap", "本年度积分已达上限10000分")]
    assert full.counters == {}  # a withheld award consumes nothing
    assert p.state.counters["annual:2026"] == 10000


def test_annual_cap_truncates_the_first_rule_and_withholds_the_rest() -> None:
    p = Patient(counters={"annual:2026": 9955})
    decision = p.reading(local(2026, 6, 15))
    assert got(decision) == [("first_checkin", 45)]
    assert codes(decision) == ["rules.annual_cap"]
    assert "health_checkin:d:2026-06-15" not in p.state.counters
    assert p.state.counters["annual:2026"] == 10000


def test_annual_cap_is_per_local_calendar_year() -> None:
    p = Patient(counters={"annual:2026": 10000})
    last_second = p.referral(local(2026, 12, 31, 23, 59, 59))
    assert got(last_second) == []
    assert codes(last_second) == ["rules.annual_cap"]
    new_year = local(2027, 1, 1, 0, 0, 0)
    assert new_year.astimezone(UTC).year == 2026
    decision = p.referral(new_year)  # the same referral: the withheld award consumed no once-per room
    assert got(decision) == [("referral", 200)]
    assert decision.counters["annual:2027"] == (200, 10000)


def test_the_welcome_bonus_counts_against_the_annual_cap_and_penalties_do_not() -> None:
    p = Patient(counters={"annual:2026": 9950})
    welcome = p.send("account.registered", local(2026, 6, 1))
    assert got(welcome) == [("welcome", 50)]
    assert codes(welcome) == ["rules.annual_cap"]
    penalty = p.no_show(local(2026, 6, 2))
    assert got(penalty) == [("no_show", -50)]
    assert "annual:2026" not in penalty.counters
    assert p.state.counters["annual:2026"] == 10000


# --- suspension ---------------------------------------------------------------------

S1, S2, S3 = local(2026, 3, 2), local(2026, 4, 1), local(2026, 5, 1)  # 60 days from first to third
END = S3 + H720  # 2026-05-31 09:00 Shanghai


def suspended_patient() -> Patient:
    p = Patient()
    for slot in (S1, S2, S3):
        p.no_show(slot)
    return p


def test_third_no_show_within_90_days_suspends_for_720_hours() -> None:
    p = Patient()
    first, second = p.no_show(S1), p.no_show(S2)
    assert got(first) == [("no_show", -50)]
    assert first.awards[0].message == "预约未就诊(爽约),扣除50积分"
    assert first.no_show == NoShowRec("e1", S1, "counted")
    assert second.suspension is None
    third = p.no_show(S3)
    assert got(third) == [("no_show", -50)]
    assert third.no_show == NoShowRec("e3", S3, "consumed")
    assert third.no_show_updates == {"e1": "consumed", "e2": "consumed"}
    assert third.suspension == SuspensionRec("s-e3", S3, END, "e3")
    assert local(2026, 5, 31, 9) == END
    assert [n.status for n in p.state.no_shows] == ["consumed"] * 3


@pytest.mark.parametrize(("at", "earns"), [
    (S3 - SECOND, True),  # before the third no-show's slot (arriving late): not suspended
    (S3, False),
    (END - SECOND, False),
    (END, True),
])
def test_suspension_window_edges(at: datetime, earns: bool) -> None:
    p = suspended_patient()
    decision = p.referral(at)
    if earns:
        assert got(decision) == [("referral", 200)]
        assert said(decision) == []
    else:
        assert got(decision) == []
        assert said(decision) == [SUSPENDED_TO_0531]
        assert decision.counters == {}


@pytest.mark.parametrize(("third_after", "suspends"), [
    (timedelta(days=90), True),
    (timedelta(days=91), False),
])
def test_suspension_window_is_90_days(third_after: timedelta, suspends: bool) -> None:
    p = Patient()
    p.no_show(S1)
    p.no_show(S1 + timedelta(days=45))
    third = p.no_show(S1 + third_after)
    assert (third.suspension is not None) is suspends
    if not suspends:
        assert [n.status for n in p.state.no_shows] == ["counted"] * 3
        assert p.state.suspensions == []


def test_the_window_slides_over_no_shows() -> None:
    p = Patient()
    for slot in (S1, S1 + timedelta(days=45), S1 + timedelta(days=91)):
        assert p.no_show(slot).suspension is None
    fourth = p.no_show(S1 + timedelta(days=100))  # the last three span 55 days
    assert fourth.suspension is not None
    assert fourth.suspension.starts_at == S1 + timedelta(days=100)
    assert fourth.no_show_updates == {"e2": "consumed", "e3": "consumed"}
    assert p.state.no_shows[0].status == "counted"


def test_no_shows_that_triggered_a_suspension_are_not_counted_again() -> None:
    p = suspended_patient()
    s4, s5, s6 = END, END + timedelta(days=1), END + timedelta(days=2)
    assert p.no_show(s4).suspension is None  # at the end: not during it, and counted
    assert p.no_show(s5).suspension is None  # only two counted no-shows so far
    sixth = p.no_show(s6)
    assert sixth.suspension == SuspensionRec("s-e6", s6, s6 + H720, "e6")


def test_a_no_show_during_a_suspension_restarts_it() -> None:
    p = suspended_patient()
    s4 = S3 + timedelta(days=10)
    fourth = p.no_show(s4)
    assert got(fourth) == [("no_show", -50)]  # penalties go on
    assert fourth.no_show == NoShowRec("e4", s4, "consumed")
    assert fourth.suspension == SuspensionRec("s-e3", S3, s4 + H720, "e3")
    assert p.state.suspensions == [SuspensionRec("s-e3", S3, s4 + H720, "e3")]
    assert codes(p.referral(s4 + H720 - SECOND)) == ["rules.suspended"]
    assert got(p.referral(s4 + H720, "R2")) == [("referral", 200)]


def test_a_no_show_one_second_before_the_end_restarts_it() -> None:
    p = suspended_patient()
    last = p.no_show(END - SECOND)
    assert last.suspension == SuspensionRec("s-e3", S3, END - SECOND + H720, "e3")


def test_penalties_still_apply_during_a_suspension() -> None:
    p = suspended_patient()
    decision = p.send("conduct.violation", S3 + timedelta(days=1), reason="插队并辱骂工作人员", staff_id="N7")
    assert got(decision) == [("misconduct", -20)]
    assert decision.awards[0].message == "违反就诊秩序,扣除20积分"


def test_streak_days_inside_a_suspension_count_but_earn_nothing() -> None:
    p = suspended_patient()
    inside = [p.reading(local(2026, 5, d, 8)) for d in (29, 30, 31)]  # 31 May 08:00 < END (09:00)
    for d, decision in zip((29, 30, 31), inside, strict=True):
        assert got(decision) == []
        assert said(decision) == [SUSPENDED_TO_0531]
        assert decision.days == [(STREAK, date(2026, 5, d))]
    after = [p.reading(local(2026, 6, d, 8)) for d in (1, 2, 3, 4)]
    assert got(after[0]) == [("first_checkin", 50), ("health_checkin", 10)]
    assert got(after[3]) == [("health_checkin", 10), ("checkin_streak_7", 50)]  # day 7 of the run


def test_evaluate_does_not_change_the_state() -> None:
    p = Patient()
    p.no_show(S1)
    p.no_show(S2)
    p.reading(local(2026, 4, 2))
    before = copy.deepcopy(p.state)
    decision = evaluate(PROGRAMMES, EventView("x", "appointment.no_show", S3, {
        "appointment_id": "Z", "slot_start": iso(S3)}), p.state, NOW)
    assert decision.suspension is not None
    evaluate(PROGRAMMES, EventView("y", "health.measurement", local(2026, 4, 3), {
        "kind": "blood_glucose", "glucose_mmol_l": 5.6, "provenance": "device"}), p.state, NOW)
    assert p.state == before


def test_consecutive_policy_resets_the_count_on_attendance() -> None:
    settings = DEFAULT.settings.model_copy(update={"suspension": DEFAULT.settings.suspension.model_copy(
        update={"consecutive": True})})
    p = Patient(ProgrammeSet([CompiledProgramme(1, DEFAULT.model_copy(update={"settings": settings}), TZ)]))
    p.no_show(S1)
    p.no_show(S1 + timedelta(days=1))
    visit = S1 + timedelta(days=2)
    attended = p.attended(visit, booked_at=visit - timedelta(hours=2))
    assert attended.no_show_updates == {"e1": "reset", "e2": "reset"}
    assert p.no_show(S1 + timedelta(days=3)).suspension is None
    assert p.no_show(S1 + timedelta(days=4)).suspension is None
    assert p.no_show(S1 + timedelta(days=5)).suspension is not None


def test_attendance_does_not_reset_the_count_by_default() -> None:
    p = Patient()
    p.no_show(S1)
    p.no_show(S1 + timedelta(days=1))
    visit = S1 + timedelta(days=2)
    assert p.attended(visit, booked_at=visit - timedelta(hours=2)).no_show_updates == {}
    assert p.no_show(S1 + timedelta(days=3)).suspension is not None


def test_the_same_appointment_missed_is_one_no_show_for_suspension() -> None:
    p = Patient()
    p.no_show(S1, "A1")
    duplicate = p.no_show(S1, "A1")
    assert got(duplicate) == []
    assert codes(duplicate) == ["rules.once_per_appointment"]
    third = p.no_show(S2, "A2")
    assert third.suspension is None  # two appointments missed, not three


# --- once-per and other limits ------------------------------------------------------

LONG = ("医生非常耐心地解释了病情和用药注意事项,护士也很热情,"
        "整个就诊流程清晰顺畅,候诊时间比预期短,非常满意这次的就诊体验。")


def test_long_text_is_long() -> None:
    assert text_length(LONG) >= 50


def test_review_once_per_appointment() -> None:
    p = Patient()
    short = p.review(local(2026, 6, 15, 10), "很好")
    assert got(short) == []
    assert short.counters == {}  # a zero award consumes nothing
    assert got(p.review(local(2026, 6, 15, 11), LONG)) == [("review", 20)]
    again = p.review(local(2026, 6, 15, 12), LONG)
    assert got(again) == []
    assert said(again) == [("rules.once_per_appointment", "该项目已获得过「就诊评价」积分")]
    assert got(p.review(local(2026, 6, 15, 13), LONG, appointment_id="A2")) == [("review", 20)]


def cancel(p: Patient, at: datetime, appointment_id: str, *, slot: datetime | None = None,
           by: str = "patient") -> Decision:
    slot = slot or at + timedelta(days=3)
    return p.send("appointment.cancelled", at, appointment_id=appointment_id, slot_start=iso(slot),
                  cancelled_at=iso(at), by=by)


@pytest.mark.parametrize(("ahead", "by", "earns"), [
    (timedelta(hours=24), "patient", True),
    (timedelta(hours=24) - SECOND, "patient", False),
    (timedelta(days=5), "hospital", False),
])
def test_cancel_early_conditions(ahead: timedelta, by: str, earns: bool) -> None:
    slot = local(2026, 6, 20, 9)
    p = Patient()
    decision = cancel(p, slot - ahead, "C1", slot=slot, by=by)
    assert got(decision) == ([("cancel_early", 20)] if earns else [])


def test_cancel_early_at_most_twice_per_local_month() -> None:
    p = Patient()
    assert got(cancel(p, local(2026, 6, 1), "C1")) == [("cancel_early", 20)]
    assert got(cancel(p, local(2026, 6, 1), "C1")) == []  # once per appointment
    assert got(cancel(p, local(2026, 6, 10), "C2")) == [("cancel_early", 20)]
    third = cancel(p, local(2026, 6, 30, 23, 59, 59), "C3")
    assert got(third) == []
    assert said(third) == [("rules.monthly_limit", "本月「提前取消」次数已达上限")]
    july = local(2026, 7, 1, 0, 0, 0)  # still 30 June in UTC
    assert got(cancel(p, july, "C3")) == [("cancel_early", 20)]


def test_welcome_once_ever() -> None:
    p = Patient()
    first = p.send("account.registered", local(2026, 6, 1), channel="app")
    assert got(first) == [("welcome", 100)]
    assert first.awards[0].message == "新用户注册即送100积分"
    again = p.send("account.registered", local(2026, 6, 2))
    assert got(again) == []
    assert said(again) == [("rules.once_ever", "「新用户注册」积分已领取")]


def test_education_needs_a_pass_once_per_content_and_a_daily_cap_of_40() -> None:
    p = Patient()

    def learn(hour: int, content: str, score: float) -> Decision:
        return p.send("education.completed", local(2026, 6, 15, hour), content_id=content, score=score,
                      pass_mark=60)

    failed = learn(8, "C1", 59.5)
    assert said(failed) == [("rules.condition_not_met", "测验未通过,可以再试一次")]
    assert got(learn(9, "C1", 60)) == [("education", 20)]
    assert codes(learn(10, "C1", 100)) == ["rules.once_per_content"]
    assert got(learn(11, "C2", 80)) == [("education", 20)]
    capped = learn(12, "C3", 80)
    assert said(capped) == [("rules.daily_cap", "今日「健康学习」积分已达上限40分")]
    assert got(p.send("education.completed", local(2026, 6, 16, 8), content_id="C3", score=80,
                      pass_mark=60)) == [("education", 20)]


def test_followup_once_per_plan_step_by_kind() -> None:
    p = Patient()

    def follow(step: str | int, kind: str) -> Decision:
        return p.send("followup.completed", local(2026, 6, 15), plan_id="P1", step=step, kind=kind, channel="app")

    assert got(follow(1, "routine")) == [("followup", 30)]
    assert said(follow("1", "routine")) == [("rules.once_per_plan_step", "该项目已获得过「随访反馈」积分")]
    assert got(follow(2, "routine")) == [("followup", 30)]
    assert got(follow(1, "rehab")) == [("rehab_questionnaire", 50)]


def test_once_per_keys_of_different_items_do_not_collide() -> None:
    p = Patient()
    first = p.send("followup.completed", local(2026, 6, 15), plan_id="P|1", step="2", kind="routine", channel="app")
    assert got(first) == [("followup", 30)]
    other = p.send("followup.completed", local(2026, 6, 15), plan_id="P", step="1|2", kind="routine", channel="app")
    assert got(other) == [("followup", 30)]


def test_long_once_per_values_are_hashed_not_truncated() -> None:
    p = Patient()
    first, second = "L" * 64 + "1", "L" * 64 + "2"  # same first 64 characters
    assert got(p.send("lecture.attended", local(2026, 6, 15), lecture_id=first)) == [("lecture", 30)]
    assert got(p.send("lecture.attended", local(2026, 6, 15), lecture_id=second)) == [("lecture", 30)]
    assert codes(p.send("lecture.attended", local(2026, 6, 16), lecture_id=first)) == ["rules.once_per_lecture"]
    exact = "L" * 64  # up to 64 characters the value itself is the key
    assert got(p.send("lecture.attended", local(2026, 6, 16), lecture_id=exact)) == [("lecture", 30)]
    assert p.state.counters[f"lecture:once:{exact}"] == 1


def test_per_day_and_lifetime_counts() -> None:
    pset = custom([
        {"code": "kiosk", "names": {"zh": "自助", "en": "Kiosk"}, "event": "selfservice.used", "points": 1,
         "limits": {"per_day": 2}},
        {"code": "photo", "names": {"zh": "拍照", "en": "Photo"}, "event": "photo.checkin", "points": 3,
         "limits": {"lifetime": 2}},
    ])
    p = Patient(pset)
    kiosk = [got(p.send("selfservice.used", local(2026, 6, 15, h), action="pay")) for h in (8, 9, 10)]
    assert kiosk == [[("kiosk", 1)], [("kiosk", 1)], []]
    assert said(p.send("selfservice.used", local(2026, 6, 15, 11), action="pay")) == [
        ("rules.daily_cap", "今日「自助」次数已达上限")]
    assert got(p.send("selfservice.used", local(2026, 6, 16, 0), action="pay")) == [("kiosk", 1)]
    photos = [p.send("photo.checkin", local(2026, 6, 15 + i), task_id="T", photo_id=f"F{i}") for i in range(3)]
    assert [got(d) for d in photos] == [[("photo", 3)], [("photo", 3)], []]
    assert said(photos[2]) == [("rules.once_ever", "「拍照」积分次数已满")]


def test_survey_once_per_period() -> None:
    p = Patient()
    assert got(p.send("survey.completed", local(2026, 6, 15), survey_id="S", period="2026-06")) == [("survey", 50)]
    assert codes(p.send("survey.completed", local(2026, 6, 20), survey_id="S", period="2026-06")) == [
        "rules.once_per_period"]
    assert got(p.send("survey.completed", local(2026, 7, 1), survey_id="S", period="2026-07")) == [("survey", 50)]


def test_invite_at_most_ten_per_year() -> None:
    p = Patient()
    results = [got(p.send("invite.completed", local(2026, 6, 1) + timedelta(days=i), invitee_id=f"I{i}"))
               for i in range(11)]
    assert results == [[("invite", 50)]] * 10 + [[]]
    assert said(p.send("invite.completed", local(2026, 12, 31, 23), invitee_id="I99")) == [
        ("rules.yearly_limit", "今年「推荐好友」次数已达上限")]
    assert got(p.send("invite.completed", local(2027, 1, 1, 0), invitee_id="I99")) == [("invite", 50)]


def test_misconduct_needs_a_reason() -> None:
    p = Patient()
    assert got(p.send("conduct.violation", local(2026, 6, 15), reason=" \u3000", staff_id="N1")) == []
    assert got(p.send("conduct.violation", local(2026, 6, 15), reason="插队", staff_id="N1")) == [("misconduct", -20)]
    assert got(p.send("conduct.violation", local(2026, 6, 15), reason="插队", staff_id="N1")) == [("misconduct", -20)]


@pytest.mark.parametrize(("etype", "attrs", "expected"), [
    ("selfservice.used", {"action": "pay"}, [("self_service", 10)]),
    ("lecture.attended", {"lecture_id": "L1"}, [("lecture", 30)]),
    ("profile.item_completed", {"item": "allergies"}, [("profile_item", 30)]),
    ("referral.visit", {"referral_id": "R1", "from_institution": "CHC"}, [("referral", 200)]),
    ("public_health.completed", {"programme": "vaccination", "item": "flu-2026"}, [("public_health", 100)]),
    ("photo.checkin", {"task_id": "T1", "photo_id": "F1"}, [("photo_checkin", 10)]),
    ("community.post_approved", {"post_id": "P1"}, [("community_post", 20)]),
    ("medication.taken", {"plan_id": "M1"}, [("medication", 10)]),
    ("exam.attended", {"exam_id": "X1", "modality": "CT", "slot_start": "2026-06-15T01:00:00+00:00"},
     [("exam_attended", 10)]),
])
def test_base_points_of_the_default_programme(etype: str, attrs: dict[str, Any],
                                              expected: list[tuple[str, int]]) -> None:
    decision = Patient().send(etype, local(2026, 6, 15), **attrs)
    assert got(decision) == expected
    assert said(decision) == []


def test_daily_caps_of_self_service_photo_and_community_posts() -> None:
    p = Patient()
    kiosk = [got(p.send("selfservice.used", local(2026, 6, 15, h), action="print_report")) for h in (8, 9, 10, 11)]
    assert kiosk == [[("self_service", 10)]] * 3 + [[]]
    photos = [got(p.send("photo.checkin", local(2026, 6, 15, h), task_id="T", photo_id=f"F{h}")) for h in (8, 9)]
    assert photos == [[("photo_checkin", 10)], []]
    posts = [got(p.send("community.post_approved", local(2026, 6, 15, h), post_id=f"P{h}")) for h in (8, 9)]
    assert posts == [[("community_post", 20)], []]


# --- gates: age, consent, rule-less events, offline entry -------------------------------

def test_max_event_age_is_1095_days() -> None:
    p = Patient()
    oldest = NOW - timedelta(days=1095)
    assert got(p.referral(oldest, "R1")) == [("referral", 200)]
    too_old = p.referral(oldest - SECOND, "R2")
    assert got(too_old) == []
    assert said(too_old) == [("rules.event_too_old", "行为发生已超过1095天,不计积分")]
    assert too_old.counters == {}
    stale = p.reading(oldest - SECOND)
    assert stale.days == []
    assert codes(stale) == ["rules.event_too_old"]


def test_consent_missing_earns_and_records_nothing() -> None:
    p = Patient(consent=False)
    for decision in (p.reading(local(2026, 6, 15)), p.no_show(S1), p.send("account.registered", S1)):
        assert got(decision) == []
        assert said(decision) == [("consent.missing", "尚未同意参加积分计划,本次不计积分")]
        assert decision.days == []
        assert decision.no_show is None
    assert p.state.counters == {}


def test_lab_critical_value_has_no_rule_and_no_notice() -> None:
    decision = Patient().send("lab.critical_value", local(2026, 6, 15), test="K+", value=6.8, unit="mmol/L")
    assert got(decision) == []
    assert said(decision) == []
    assert decision.counters == {}


@pytest.mark.parametrize("etype", ["appointment.booked", "appointment.checked_in"])
def test_other_rule_less_events_say_so(etype: str) -> None:
    decision = Patient().send(etype, local(2026, 6, 15), appointment_id="A1", slot_start=iso(MON_0900))
    assert got(decision) == []
    assert said(decision) == [("rules.no_rule", "该行为暂不计积分")]


def offline(p: Patient, at: datetime, behaviour: str, **attrs: Any) -> Decision:
    return p.send("staff.offline_entry", at, behaviour=behaviour, attributes=attrs, sheet_ref="SHEET-1",
                  staff_id="N7")


def test_offline_entry_is_scored_as_its_behaviour_and_shares_its_limits() -> None:
    p = Patient()
    for hour in (7, 8):
        p.send("medication.taken", local(2026, 6, 15, hour), plan_id="M1")
    paper = offline(p, local(2026, 6, 15, 12), "medication.taken", plan_id="M1")
    assert got(paper) == [("medication", 10)]
    assert codes(offline(p, local(2026, 6, 15, 13), "medication.taken", plan_id="M1")) == ["rules.daily_cap"]


def test_offline_entry_of_a_reading_records_the_streak_day() -> None:
    p = Patient()
    paper = offline(p, local(2026, 6, 15), "health.measurement", kind="blood_glucose", glucose_mmol_l=6.1,
                    provenance="self_reported")
    assert got(paper) == [("first_checkin", 50), ("health_checkin", 10)]
    assert paper.days == [(STREAK, date(2026, 6, 15))]


def test_offline_entry_of_an_off_peak_visit_is_doubled() -> None:
    slot = local(2026, 6, 15, 14, 30)
    paper = offline(Patient(), slot + timedelta(hours=1), "appointment.attended", appointment_id="A1",
                    slot_start=iso(slot), booked_at=iso(slot - timedelta(days=5)), checked_in_at=iso(slot))
    assert got(paper) == [("book_ahead", 60), ("on_time", 20)]


def test_offline_entry_of_an_unknown_behaviour_earns_nothing() -> None:
    decision = Patient().send("staff.offline_entry", local(2026, 6, 15), behaviour="x.y", attributes="bad")
    assert got(decision) == []
    assert codes(decision) == ["rules.no_rule"]


# --- programme versions and the less common conditions -----------------------------

def welcome_programme(points: int) -> Programme:
    doc = {"name": {"zh": "方案", "en": "P"}, "rules": [
        {"code": "welcome", "names": {"zh": "欢迎", "en": "W"}, "event": "account.registered", "points": points}]}
    return Programme.model_validate(doc)


def test_the_version_in_force_at_occurred_at_decides() -> None:
    switch = local(2026, 7, 1, 0)
    pset = ProgrammeSet([CompiledProgramme(2, welcome_programme(200), TZ, effective_from=switch),
                         CompiledProgramme(1, welcome_programme(100), TZ)])
    assert pset.latest.version == 2
    before = evaluate(pset, EventView("a", "account.registered", switch - SECOND, {}), PatientState("p"), NOW)
    assert (before.version, got(before)) == (1, [("welcome", 100)])
    after = evaluate(pset, EventView("b", "account.registered", switch, {}), PatientState("p"), NOW)
    assert (after.version, got(after)) == (2, [("welcome", 200)])
    assert before.awards[0].message == "欢迎+100积分"


def test_programme_set_needs_a_version() -> None:
    with pytest.raises(ValueError, match="no programme loaded"):
        ProgrammeSet([])


def test_validity_window_and_status_of_a_rule() -> None:
    pset = custom([
        {"code": "june", "names": {"zh": "六月", "en": "June"}, "event": "lecture.attended", "points": 5,
         "valid_from": "2026-06-01", "valid_to": "2026-06-30"},
        {"code": "draft", "names": {"zh": "草稿", "en": "Draft"}, "event": "lecture.attended", "points": 9,
         "status": "draft"},
    ])
    expected = {local(2026, 5, 31, 23, 59, 59): [], local(2026, 6, 1, 0): [("june", 5)],
                local(2026, 6, 30, 23, 59, 59): [("june", 5)], local(2026, 7, 1, 0): []}
    for at, awards in expected.items():
        decision = Patient(pset).send("lecture.attended", at, lecture_id="L1")
        assert got(decision) == awards
        assert codes(decision) == ([] if awards else ["rules.no_rule"])


def test_local_time_and_patient_conditions() -> None:
    pset = custom([
        {"code": "early", "names": {"zh": "早服药", "en": "Early"}, "event": "medication.taken", "points": 5,
         "conditions": [{"type": "local_time", "start": "06:00", "end": "09:00"}]},
        {"code": "senior", "names": {"zh": "长者", "en": "Senior"}, "event": "lecture.attended", "points": 10,
         "conditions": [{"type": "patient", "field": "age", "op": "gte", "value": 65}]},
        {"code": "gold", "names": {"zh": "金卡", "en": "Gold"}, "event": "lecture.attended", "points": 7,
         "conditions": [{"type": "patient", "field": "tier", "op": "in", "value": ["gold"]}]},
    ])
    med = {local(2026, 6, 15, 5, 59, 59): [], local(2026, 6, 15, 6): [("early", 5)],
           local(2026, 6, 15, 8, 59, 59): [("early", 5)], local(2026, 6, 15, 9): []}
    for at, awards in med.items():
        assert got(Patient(pset).send("medication.taken", at, plan_id="M")) == awards
    born = date(1961, 6, 16)
    eve = local(2026, 6, 15, 23, 59, 59)
    birthday = local(2026, 6, 16, 0)  # 65 on the local date, still the 15th in UTC
    assert got(Patient(pset, birth_date=born).send("lecture.attended", eve, lecture_id="L")) == []
    assert got(Patient(pset, birth_date=born).send("lecture.attended", birthday, lecture_id="L")) == [("senior", 10)]
    assert got(Patient(pset).send("lecture.attended", birthday, lecture_id="L")) == []  # no birth date
    gold = Patient(pset, tier="gold", birth_date=born).send("lecture.attended", birthday, lecture_id="L")
    assert got(gold) == [("senior", 10), ("gold", 7)]


@pytest.mark.parametrize(("op", "value", "attrs", "holds"), [
    ("eq", "a", {"x": "a"}, True),
    ("ne", "a", {"x": "a"}, False),
    ("ne", "a", {}, True),
    ("in", ["a", "b"], {"x": "b"}, True),
    ("in", None, {"x": "b"}, False),
    ("not_in", ["a"], {"x": "b"}, True),
    ("present", None, {"x": ""}, False),
    ("present", None, {"x": 0}, True),
    ("present", None, {}, False),
    ("gt", 3, {"x": 3}, False),
    ("gte", 3, {"x": 3}, True),
    ("lt", 3, {"x": 2.5}, True),
    ("lte", 3, {"x": 4}, False),
    ("gt", 3, {}, False),
    ("gt", 3, {"x": "4"}, False),  # str vs int: a TypeError is "does not hold"
])
def test_attribute_conditions(op: str, value: Any, attrs: dict[str, Any], holds: bool) -> None:
    cond = AttrCondition(attr="x", op=op, value=value)  # type: ignore[arg-type]
    prog = PROGRAMMES.latest
    assert condition_holds(cond, EventView("e", "lecture.attended", NOW, attrs), PatientState("p"), prog) is holds


@pytest.mark.parametrize(("value", "expected"), [
    ("2026-06-15T10:00:00+08:00", datetime(2026, 6, 15, 2, tzinfo=UTC)),
    ("2026-06-15T02:00:00Z", datetime(2026, 6, 15, 2, tzinfo=UTC)),
    (datetime(2026, 6, 15, 2, tzinfo=UTC), datetime(2026, 6, 15, 2, tzinfo=UTC)),
    ("2026-06-15T10:00:00", None),
    (datetime(2026, 6, 15, 2), None),  # noqa: DTZ001 - a naive value on purpose
    ("yesterday", None),
    (1781488800, None),
    (None, None),
])
def test_parse_ts_accepts_only_aware_timestamps(value: Any, expected: datetime | None) -> None:
    assert parse_ts(value) == expected
