"""The pure core of the satisfaction loop (no database): low reviews and surveys, their scores,
department drops, windows and the dashboard's arithmetic."""

from __future__ import annotations

from datetime import date

import pytest

from carepoints.services.satisfaction import detect


@pytest.mark.parametrize(("rating", "low"), [(1, True), (2, True), (3, False), (5, False)])
def test_a_review_is_negative_at_or_below_the_threshold(rating: int, low: bool) -> None:
    v = detect.review_verdict(rating, 2)
    assert (v.score, v.low, v.reasons) == (float(rating), low, ("rating",) if low else ())


def test_survey_scores_use_overall_else_the_mean_of_levels() -> None:
    v = detect.survey_verdict({"overall": "satisfied", "waiting": "very_dissatisfied", "staff": "neutral",
                               "recommend": 9, "comments": "还行"}, 2, 4)
    assert (v.score, v.low, v.reasons) == (4.0, True, ("waiting",))
    v = detect.survey_verdict({"waiting": "dissatisfied", "staff": "very_satisfied"}, 2, 4)
    assert (v.score, v.low, v.reasons) == (3.5, True, ("waiting",))
    v = detect.survey_verdict({"overall": "neutral", "waiting": "satisfied", "recommend": 5}, 2, 4)
    assert (v.score, v.low, v.reasons) == (3.0, False, ())
    assert detect.survey_verdict({"comments": "无"}, 2, 4) == detect.Verdict(None, False, ())


def test_recommend_at_or_below_its_threshold_is_low_and_can_be_turned_off() -> None:
    assert detect.survey_verdict({"overall": "satisfied", "recommend": 4}, 2, 4).reasons == ("recommend",)
    assert detect.survey_verdict({"overall": "satisfied", "recommend": 0}, 2, -1).low is False
    assert detect.survey_verdict({"overall": "satisfied", "recommend": True}, 2, 4).low is False  # not a number
    assert detect.survey_verdict({"overall": "dissatisfied"}, 1, -1).low is False  # threshold 1: only 非常不满意


def test_windows_are_the_last_whole_days_and_the_days_before() -> None:
    cur, prev = detect.windows(date(2026, 6, 15), 14)
    assert (cur.start, cur.end) == (date(2026, 6, 1), date(2026, 6, 14))
    assert (prev.start, prev.end) == (date(2026, 5, 18), date(2026, 5, 31))


def test_a_drop_needs_the_amount_and_enough_scores_in_both_windows() -> None:
    # 14 / 3 = 4.667 before, 11 / 3 = 3.667 now: down 1.0
    assert detect.dropped((11, 3), (14, 3), min_samples=3, amount=0.5) == detect.Drop(3.67, 4.67, 3, 3, 1.0)
    assert detect.dropped((11, 3), (12, 3), min_samples=3, amount=0.5) is None  # 4.0 → 3.667: 0.33
    assert detect.dropped((3, 3), (10, 2), min_samples=3, amount=0.5) is None  # too few before
    assert detect.dropped((0, 0), (12, 3), min_samples=0, amount=0.5) is None  # nothing now
    # exactly the amount, despite float noise (4.3 − 3.8)
    drop = detect.dropped((3.8, 1), (4.3, 1), min_samples=1, amount=0.5)
    assert drop is not None
    assert drop.drop == 0.5


def test_once_per_department_and_window() -> None:
    cur, _prev = detect.windows(date(2026, 6, 15), 14)
    assert detect.may_raise(None, cur)
    assert not detect.may_raise(date(2026, 6, 13), cur)  # yesterday's alerted window overlaps
    assert not detect.may_raise(date(2026, 6, 1), cur)
    assert detect.may_raise(date(2026, 5, 31), cur)


def test_weeks_and_close_times() -> None:
    assert detect.week_of(date(2026, 6, 21)) == date(2026, 6, 15)  # a Sunday → its Monday
    assert detect.weeks(date(2026, 6, 17), 3) == [date(2026, 6, 1), date(2026, 6, 8), date(2026, 6, 15)]
    assert detect.close_stats([2.0, 10.0, 3.0]) == {"closed": 3, "avg_hours": 5.0, "median_hours": 3.0}
    assert detect.close_stats([1.0, 2.0, 4.0, 8.0]) == {"closed": 4, "avg_hours": 3.8, "median_hours": 3.0}
    assert detect.close_stats([]) == {"closed": 0, "avg_hours": None, "median_hours": None}
