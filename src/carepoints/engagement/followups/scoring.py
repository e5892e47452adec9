"""The pure core of questionnaires and follow-up plans: checking answers against a
template version, evaluating its alert rules, and the calendar of a plan's steps.
No I/O; `today` and `now` are parameters.

Questions are the stored template dicts: `{id, type, choices?: [{value}], min?, max?,
required, alerts: [{any_of?, gte?, lte?, severity}]}`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any

SEVERITY_ORDER = {"normal": 0, "high": 1, "critical": 2}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _answer_error(q: Mapping[str, Any], value: Any) -> str | None:
    """Why `value` is not a valid answer to `q`, or None."""
    kind = q["type"]
    values = {c["value"] for c in q.get("choices") or []}
    if kind == "single":
        if not isinstance(value, str) or value not in values:
            return "not one of the choices"
    elif kind == "multi":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return "a list of choice values"
        if len(set(value)) != len(value) or not set(value) <= values:
            return "distinct values among the choices"
        if q.get("required", True) and not value:
            return "at least one choice"
    elif kind == "number":
        if not _is_number(value):
            return "a number"
        if q.get("min") is not None and value < q["min"]:
            return f"at least {q['min']}"
        if q.get("max") is not None and value > q["max"]:
            return f"at most {q['max']}"
    elif not isinstance(value, str) or not value.strip():
        return "a non-empty text"
    return None


def validate(questions: Sequence[Mapping[str, Any]], answers: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Field errors (`{loc: ["answers", id], msg}`) of `answers` against the questions:
    unknown questions, missing required answers, types, choices and ranges."""
    by_id = {q["id"]: q for q in questions}
    errors = [{"loc": ["answers", k], "msg": "unknown question"} for k in answers if k not in by_id]
    for q in questions:
        value = answers.get(q["id"])
        if value is None:
            if q.get("required", True):
                errors.append({"loc": ["answers", q["id"]], "msg": "required"})
            continue
        why = _answer_error(q, value)
        if why is not None:
            errors.append({"loc": ["answers", q["id"]], "msg": why})
    return errors


def _matches(rule: Mapping[str, Any], value: Any) -> bool:
    if rule.get("any_of") is not None:
        chosen = set(value) if isinstance(value, list) else {value}
        return bool(chosen & set(rule["any_of"]))
    if not _is_number(value):
        return False
    return (rule.get("gte") is not None and value >= rule["gte"]) or (
        rule.get("lte") is not None and value <= rule["lte"])


def abnormal(questions: Sequence[Mapping[str, Any]], answers: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(question id, severity) of every answer that matches one of its question's alert
    rules, in question order; the highest severity when several rules match."""
    found: list[tuple[str, str]] = []
    for q in questions:
        value = answers.get(q["id"])
        if value is None:
            continue
        hits = [r["severity"] for r in q.get("alerts") or [] if _matches(r, value)]
        if hits:
            found.append((q["id"], max(hits, key=SEVERITY_ORDER.__getitem__)))
    return found


def parse_offsets(raw: str) -> list[int]:
    """"3,7,30" → [3, 7, 30] (the offsets setting)."""
    return [int(part) for part in raw.split(",") if part.strip()]


def due_on(occurred_on: date, offset_days: int) -> date:
    """The local calendar day a step is due: the discharge/surgery day + offset days."""
    return occurred_on + timedelta(days=offset_days)


def overdue_on(due: date, window_days: int) -> date:
    """The first day a step without a response is overdue: the due day and the
    `window_days` after it are the due window."""
    return due + timedelta(days=window_days + 1)


def state(due: date, overdue_from: date, today: date) -> str:
    """upcoming / due / overdue of a step still waiting for its response, on `today`."""
    if today < due:
        return "upcoming"
    if today < overdue_from:
        return "due"
    return "overdue"


def previous_month(period: str) -> str:
    year, month = int(period[:4]), int(period[5:7])
    return f"{year - 1}-12" if month == 1 else f"{year:04d}-{month - 1:02d}"


def period_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def period_open(period: str, today: date) -> bool:
    """A survey period may be answered in its own month and in the month after."""
    current = period_of(today)
    return period in (current, previous_month(current))
