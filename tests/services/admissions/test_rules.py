"""The booking rules of admissions, surgery and pre-visit exams, without a database: the admission
window and the patient's cut-off to the microsecond, the reschedule limit, working days and the
earliest surgery date, day surgery's duration and checks, and the pre-visit follow-up boundary
(a session starting exactly when the result is expected is in, one a minute earlier is not)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from carepoints.services.admissions import rules
from carepoints.services.admissions.errors import (
    BeforeAdmissionError,
    ChangeTooLateError,
    ChecksMissingError,
    DateOutsideWindowError,
    DaySurgeryTooLongError,
    NotWorkingDayError,
    RescheduleLimitError,
    SurgeryTooEarlyError,
    SurgeryTooFarError,
)

CST = ZoneInfo("Asia/Shanghai")
ADM = rules.AdmissionPolicy(cutoff_hours=24, max_reschedules=2, book_ahead_days=60)
SUR = rules.SurgeryPolicy(day_min_days=2, elective_min_days=1, day_max_minutes=120, horizon_days=90)
MON = date(2026, 6, 15)  # a Monday
THU = date(2026, 6, 18)


def test_the_admission_window_starts_today_and_ends_at_the_order_or_the_horizon() -> None:
    assert rules.admission_window(MON - timedelta(days=3), MON + timedelta(days=10), MON, ADM) == (
        MON, MON + timedelta(days=10))
    assert rules.admission_window(MON + timedelta(days=2), MON + timedelta(days=200), MON, ADM) == (
        MON + timedelta(days=2), MON + timedelta(days=60))
    first, last = rules.admission_window(MON - timedelta(days=30), MON - timedelta(days=1), MON, ADM)
    assert first > last  # expired: nothing left to book


@pytest.mark.parametrize(("offset", "ok"), [(-1, False), (0, True), (9, True), (10, False)])
def test_a_date_outside_the_window_is_refused(offset: int, ok: bool) -> None:
    day = MON + timedelta(days=offset)
    check = lambda: rules.check_admission_date(day, earliest=MON - timedelta(days=5),  # noqa: E731
                                               valid_until=MON + timedelta(days=9), today=MON, policy=ADM)
    if ok:
        check()
    else:
        with pytest.raises(DateOutsideWindowError) as err:
            check()
        assert err.value.detail.startswith(f"请选择{MON.isoformat()}至{(MON + timedelta(days=9)).isoformat()}")


def test_the_patient_cut_off_is_exact() -> None:
    arrival = rules.arrival_at(THU, "08:30", CST)
    assert arrival == datetime(2026, 6, 18, 0, 30, tzinfo=UTC)
    edge = arrival - timedelta(hours=24)
    assert rules.patient_may_change(arrival, edge - timedelta(microseconds=1), ADM)
    assert not rules.patient_may_change(arrival, edge, ADM)
    with pytest.raises(ChangeTooLateError) as err:
        rules.check_patient_change(arrival, edge, ADM)
    assert err.value.code == "admissions.change_too_late"
    assert err.value.status_code == 409


def test_the_reschedule_limit() -> None:
    rules.check_reschedule(1, ADM)
    with pytest.raises(RescheduleLimitError):
        rules.check_reschedule(2, ADM)


def test_working_days_and_the_earliest_surgery_date() -> None:
    assert [rules.is_working_day(MON + timedelta(days=i)) for i in range(7)] == [True] * 5 + [False] * 2
    assert rules.earliest_surgery_date(THU, "day", SUR) == date(2026, 6, 22)  # Sat → the next Monday
    assert rules.earliest_surgery_date(THU, "elective", SUR) == date(2026, 6, 19)  # Friday
    assert rules.earliest_surgery_date(MON, "elective", SUR, asked=date(2026, 6, 27)) == date(2026, 6, 29)
    assert rules.earliest_surgery_date(MON, "day", SUR, asked=MON) == date(2026, 6, 17)  # never before the gap


def test_day_surgery_duration() -> None:
    rules.check_request("day", 120, SUR)
    rules.check_request("elective", 600, SUR)
    with pytest.raises(DaySurgeryTooLongError) as err:
        rules.check_request("day", 121, SUR)
    assert err.value.status_code == 422
    assert rules.discharge("day") == "same_day"
    assert rules.discharge("elective") == "per_ward"


def _check(day: date, kind: str = "elective", **kw: object) -> None:
    args: dict[str, object] = {"kind": kind, "earliest": date(2026, 6, 17), "today": MON, "policy": SUR,
                               "day_starts_at": datetime.combine(day, datetime.min.time(), tzinfo=CST),
                               "preop_at": None, "anaesthesia_at": None, **kw}
    rules.check_surgery_date(day, **args)  # type: ignore[arg-type]


def test_surgery_dates_follow_the_rules() -> None:
    _check(date(2026, 6, 17))
    with pytest.raises(NotWorkingDayError):
        _check(date(2026, 6, 20))
    with pytest.raises(SurgeryTooEarlyError) as early:
        _check(date(2026, 6, 16))
    assert "2026-06-17" in early.value.detail
    with pytest.raises(SurgeryTooFarError):
        _check(working_after(MON + timedelta(days=91)))
    _check(working_after(MON + timedelta(days=88)))
    with pytest.raises(BeforeAdmissionError):
        _check(date(2026, 6, 17), admission_date=date(2026, 6, 18))
    _check(date(2026, 6, 18), admission_date=date(2026, 6, 18))


def working_after(day: date) -> date:
    while not rules.is_working_day(day):
        day += timedelta(days=1)
    return day


def test_day_surgery_needs_both_checks_before_its_day() -> None:
    day = date(2026, 6, 17)
    start = datetime.combine(day, datetime.min.time(), tzinfo=CST)
    before = start - timedelta(seconds=1)
    with pytest.raises(ChecksMissingError):
        _check(day, "day")
    with pytest.raises(ChecksMissingError):
        _check(day, "day", preop_at=before)
    with pytest.raises(ChecksMissingError):
        _check(day, "day", preop_at=before, anaesthesia_at=start)  # recorded on the day: too late
    _check(day, "day", preop_at=before, anaesthesia_at=before)
    _check(day, "elective")  # elective surgery schedules without them


def test_the_follow_up_goes_in_the_first_session_from_the_expected_result() -> None:
    exam_end = datetime(2026, 6, 16, 1, 30, tzinfo=UTC)
    ready = rules.results_ready_at(exam_end, 2)
    assert ready == datetime(2026, 6, 16, 3, 30, tzinfo=UTC)
    sessions = [(ready + timedelta(hours=1), "later"), (ready - timedelta(minutes=1), "too-early"),
                (ready, "exactly"), (ready - timedelta(days=1), "yesterday")]
    assert rules.followup_candidates(sessions, ready) == ["exactly", "later"]
    assert rules.followup_candidates([(ready - timedelta(microseconds=1), "x")], ready) == []
    assert rules.results_ready_at(exam_end, 0) == exam_end
