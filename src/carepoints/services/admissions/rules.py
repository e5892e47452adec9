"""The booking rules of admissions, surgery and pre-visit exams: pure functions, `now` and
`today` passed in, no I/O (tests/services/admissions/test_rules.py).

Admission: a date from the order's earliest date (never before today) to its last valid day and
at most `book_ahead_days` ahead; a patient books, reschedules or cancels online only until
`cutoff_hours` before the ward's arrival time that day (the hospital at any time before
admission), and reschedules at most `max_reschedules` times.

Surgery: on working days (Monday to Friday) only; no earlier than `min_days` after the request
(day surgery: `day_min_days`, elective `elective_min_days`), rolled forward to a working day; at
most `horizon_days` ahead; never before the linked admission date. A day surgery (日间手术) lasts
at most `day_max_minutes`, is discharged the same day, and needs the pre-op exam and the
anaesthesia assessment recorded before its date.

Pre-visit: the result is expected `result_hours` after the exam slot ends; the follow-up is in
the first session of the clinician that starts at or after that instant (a session starting
exactly then is in: the result is ready when the visit begins)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

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


@dataclass(frozen=True, slots=True)
class AdmissionPolicy:
    cutoff_hours: int = 24
    max_reschedules: int = 2
    book_ahead_days: int = 60


@dataclass(frozen=True, slots=True)
class SurgeryPolicy:
    day_min_days: int = 2
    elective_min_days: int = 1
    day_max_minutes: int = 120
    horizon_days: int = 90


# --- admission ------------------------------------------------------------------------------

def arrival_at(day: date, arrival_time: str, tz: ZoneInfo) -> datetime:
    """The instant a patient is expected on the ward that day (local HH:MM)."""
    return datetime.combine(day, time.fromisoformat(arrival_time), tzinfo=tz)


def admission_window(earliest: date, valid_until: date, today: date, policy: AdmissionPolicy) -> tuple[date, date]:
    """The first and last day an order may be booked on (first > last: none left)."""
    return max(earliest, today), min(valid_until, today + timedelta(days=policy.book_ahead_days))


def check_admission_date(day: date, *, earliest: date, valid_until: date, today: date,
                         policy: AdmissionPolicy) -> None:
    first, last = admission_window(earliest, valid_until, today, policy)
    if not first <= day <= last:
        raise DateOutsideWindowError(first=first.isoformat(), last=last.isoformat())


def patient_may_change(arrival: datetime, now: datetime, policy: AdmissionPolicy) -> bool:
    """Whether a patient may still book, move or cancel an admission arriving at `arrival` online."""
    return now < arrival - timedelta(hours=policy.cutoff_hours)


def check_patient_change(arrival: datetime, now: datetime, policy: AdmissionPolicy) -> None:
    if not patient_may_change(arrival, now, policy):
        raise ChangeTooLateError(hours=policy.cutoff_hours)


def check_reschedule(done: int, policy: AdmissionPolicy) -> None:
    if done >= policy.max_reschedules:
        raise RescheduleLimitError(limit=policy.max_reschedules)


# --- surgery --------------------------------------------------------------------------------

def is_working_day(day: date) -> bool:
    return day.isoweekday() <= 5


def next_working_day(day: date) -> date:
    while not is_working_day(day):
        day += timedelta(days=1)
    return day


def earliest_surgery_date(requested_on: date, kind: str, policy: SurgeryPolicy, asked: date | None = None) -> date:
    """The first working day the surgery may be on: `min_days` after the request day (or the
    clinician's own later date)."""
    gap = policy.day_min_days if kind == "day" else policy.elective_min_days
    first = requested_on + timedelta(days=gap)
    return next_working_day(max(first, asked) if asked is not None else first)


def check_request(kind: str, minutes: int, policy: SurgeryPolicy) -> None:
    if kind == "day" and minutes > policy.day_max_minutes:
        raise DaySurgeryTooLongError(minutes=policy.day_max_minutes)


def check_surgery_date(day: date, *, kind: str, earliest: date, today: date, policy: SurgeryPolicy,
                       day_starts_at: datetime, preop_at: datetime | None, anaesthesia_at: datetime | None,
                       admission_date: date | None = None) -> None:
    """Refuse a surgery date that breaks a rule (422 for the date itself, 409 for what is missing)."""
    if not is_working_day(day):
        raise NotWorkingDayError()
    if day < earliest:
        raise SurgeryTooEarlyError(earliest=earliest.isoformat())
    if day > today + timedelta(days=policy.horizon_days):
        raise SurgeryTooFarError(days=policy.horizon_days)
    if admission_date is not None and day < admission_date:
        raise BeforeAdmissionError(day=admission_date.isoformat())
    if kind == "day" and not (_before(preop_at, day_starts_at) and _before(anaesthesia_at, day_starts_at)):
        raise ChecksMissingError()


def _before(at: datetime | None, limit: datetime) -> bool:
    return at is not None and at < limit


def discharge(kind: str) -> str:
    """Planned discharge: a day surgery's patient goes home the same day (当日出院)."""
    return "same_day" if kind == "day" else "per_ward"


# --- pre-visit ------------------------------------------------------------------------------

def results_ready_at(exam_end: datetime, result_hours: int) -> datetime:
    return exam_end + timedelta(hours=result_hours)


S = TypeVar("S")


def followup_candidates(sessions: Iterable[tuple[datetime, S]], ready_at: datetime) -> list[S]:
    """The sessions a follow-up may go in, first first: those starting at or after `ready_at`."""
    return [s for _, s in sorted(((at, s) for at, s in sessions if at >= ready_at), key=lambda p: p[0])]

