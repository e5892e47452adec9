"""The pure core of the satisfaction loop: is a review or a survey response low (negative), what
does it score, did a department's satisfaction drop, and the dashboard's arithmetic. No I/O;
days and thresholds are parameters.

Scores are on the survey's 1–5 scale: a review's star rating as it is; a survey response's
answer to `overall` (非常满意 5 … 非常不满意 1), or the mean of its level answers when a template
has no `overall` question. A response is low when any level answer is at or below the level
threshold (default 不满意) or its 0–10 `recommend` answer is at or below the recommend threshold."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

LEVELS: dict[str, int] = {"very_satisfied": 5, "satisfied": 4, "neutral": 3, "dissatisfied": 2,
                          "very_dissatisfied": 1}
OVERALL = "overall"
RECOMMEND = "recommend"
RATING = "rating"
# float noise (4.3 − 3.8 = 0.5000000000000004) must not decide an alert
_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class Verdict:
    score: float | None  # None: nothing on the 1–5 scale to average
    low: bool
    reasons: tuple[str, ...]  # codes only: question ids or "rating"


def review_verdict(rating: int, low_rating: int) -> Verdict:
    """A visit review: negative when its 1–5 star rating is at or below `low_rating`."""
    low = rating <= low_rating
    return Verdict(float(rating), low, (RATING,) if low else ())


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def survey_verdict(answers: Mapping[str, Any], low_level: int, low_recommend: int) -> Verdict:
    """A monthly survey response: its score and the question ids that make it low (a level answer
    scoring at or below `low_level`, `recommend` at or below `low_recommend`; -1 turns that off)."""
    levels = {qid: LEVELS[v] for qid, v in answers.items() if isinstance(v, str) and v in LEVELS}
    if OVERALL in levels:
        score: float | None = float(levels[OVERALL])
    elif levels:
        score = round(sum(levels.values()) / len(levels), 4)
    else:
        score = None
    reasons = sorted(q for q, v in levels.items() if v <= low_level)
    rec = answers.get(RECOMMEND)
    if rec is not None and _number(rec) and rec <= low_recommend:
        reasons.append(RECOMMEND)
    return Verdict(score, bool(reasons), tuple(reasons))


# --- department drops -------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Window:
    start: date  # inclusive, local days
    end: date


def windows(today: date, days: int) -> tuple[Window, Window]:
    """The last `days` whole local days before `today` and the `days` before those."""
    current = Window(today - timedelta(days=days), today - timedelta(days=1))
    return current, Window(current.start - timedelta(days=days), current.start - timedelta(days=1))


@dataclass(frozen=True, slots=True)
class Drop:
    current_avg: float
    previous_avg: float
    current_n: int
    previous_n: int
    drop: float


def dropped(current: tuple[float, int], previous: tuple[float, int], *, min_samples: int,
            amount: float) -> Drop | None:
    """(sum, count) of the scores of the current and the previous window: the drop when both have
    at least `min_samples` scores and the average fell by `amount` or more, else None."""
    (cur_sum, cur_n), (prev_sum, prev_n) = current, previous
    if cur_n < max(1, min_samples) or prev_n < max(1, min_samples):
        return None
    cur, prev = cur_sum / cur_n, prev_sum / prev_n
    if prev - cur + _EPS < amount:
        return None
    return Drop(round(cur, 2), round(prev, 2), cur_n, prev_n, round(prev - cur, 2))


def may_raise(last_alert_end: date | None, window: Window) -> bool:
    """Once per department and window: a new alert only for a window that does not overlap the
    department's last alerted one (a drop that lasts is not raised again every day)."""
    return last_alert_end is None or last_alert_end < window.start


# --- the dashboard ----------------------------------------------------------------------------

def week_of(day: date) -> date:
    """The Monday of `day`'s ISO week."""
    return day - timedelta(days=day.weekday())


def weeks(today: date, n: int) -> list[date]:
    """The Mondays of the last `n` weeks, the current one last."""
    last = week_of(today)
    return [last - timedelta(weeks=n - 1 - i) for i in range(n)]


def median(values: Sequence[float]) -> float | None:
    if not values:
        return None
    s = sorted(values)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


def close_stats(hours: Iterable[float]) -> dict[str, Any]:
    """Count, mean and median hours from creation to closing (one decimal)."""
    values = list(hours)
    med = median(values)
    return {"closed": len(values), "avg_hours": round(sum(values) / len(values), 1) if values else None,
            "median_hours": round(med, 1) if med is not None else None}
