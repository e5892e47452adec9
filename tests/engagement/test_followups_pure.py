"""The pure core: answer validation, alert rules, the plan calendar (DB-free)."""

from __future__ import annotations

from datetime import date

import pytest

from carepoints.engagement.followups import scoring

QUESTIONS = [
    {"id": "pain", "type": "single", "required": True,
     "choices": [{"value": "none"}, {"value": "mild"}, {"value": "severe_pain"}],
     "alerts": [{"any_of": ["severe_pain"], "severity": "high"}]},
    {"id": "temp", "type": "number", "min": 34, "max": 43, "required": True,
     "alerts": [{"gte": 38.5, "severity": "high"}, {"gte": 40, "severity": "critical"}]},
    {"id": "symptoms", "type": "multi", "required": False,
     "choices": [{"value": "cough"}, {"value": "bleeding"}],
     "alerts": [{"any_of": ["bleeding"], "severity": "critical"}]},
    {"id": "note", "type": "text", "required": False, "alerts": []},
]


@pytest.mark.parametrize(("start", "offset", "due"), [
    (date(2026, 1, 28), 3, date(2026, 1, 31)), (date(2026, 1, 28), 7, date(2026, 2, 4)),
    (date(2026, 1, 28), 30, date(2026, 2, 27)), (date(2026, 12, 29), 3, date(2027, 1, 1)),
    (date(2028, 2, 26), 3, date(2028, 2, 29)), (date(2028, 2, 29), 30, date(2028, 3, 30)),
])
def test_due_days_cross_month_year_and_leap_day(start: date, offset: int, due: date) -> None:
    assert scoring.due_on(start, offset) == due


def test_state_at_window_boundaries() -> None:
    due = date(2026, 1, 31)
    over = scoring.overdue_on(due, 2)
    assert over == date(2026, 2, 3)
    assert scoring.state(due, over, date(2026, 1, 30)) == "upcoming"
    assert scoring.state(due, over, due) == "due"
    assert scoring.state(due, over, date(2026, 2, 2)) == "due"
    assert scoring.state(due, over, date(2026, 2, 3)) == "overdue"


def test_valid_answers_have_no_errors() -> None:
    assert scoring.validate(QUESTIONS, {"pain": "mild", "temp": 37.0}) == []


@pytest.mark.parametrize(("answers", "bad"), [
    ({"temp": 37}, "pain"), ({"pain": "x", "temp": 37}, "pain"), ({"pain": "mild", "temp": 44}, "temp"),
    ({"pain": "mild", "temp": True}, "temp"), ({"pain": "mild", "temp": "37"}, "temp"),
    ({"pain": "mild", "temp": 37, "symptoms": ["cough", "cough"]}, "symptoms"),
    ({"pain": "mild", "temp": 37, "note": "  "}, "note"), ({"pain": "mild", "temp": 37, "zz": 1}, "zz"),
])
def test_invalid_answers_name_the_field(answers: dict[str, object], bad: str) -> None:
    errors = scoring.validate(QUESTIONS, answers)
    assert [e["loc"] for e in errors] == [["answers", bad]]


def test_alert_rules_highest_severity_per_question() -> None:
    assert scoring.abnormal(QUESTIONS, {"pain": "mild", "temp": 38.4}) == []
    assert scoring.abnormal(QUESTIONS, {"pain": "severe_pain", "temp": 38.5}) == [("pain", "high"), ("temp", "high")]
    assert scoring.abnormal(QUESTIONS, {"pain": "none", "temp": 40, "symptoms": ["cough", "bleeding"]}) == [
        ("temp", "critical"), ("symptoms", "critical")]


def test_survey_periods() -> None:
    assert scoring.period_open("2027-01", date(2027, 1, 31))
    assert scoring.period_open("2026-12", date(2027, 1, 1))
    assert not scoring.period_open("2026-11", date(2027, 1, 1))
    assert not scoring.period_open("2027-02", date(2027, 1, 31))
    assert scoring.parse_offsets("3,7,30") == [3, 7, 30]
