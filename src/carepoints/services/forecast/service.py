"""Demand-driven quotas (智能号源): forecast demand per department, local day and hour from the
booking history (repository.py says what counts), compare the models on the held-back weeks and
keep the better per department (model.py), suggest a capacity for every coming session and
weekly template and name the off-peak windows (suggest.py); the admin applies a suggestion, which
changes the capacity through the scheduling service (scheduling.capacity).

A run is two steps so that the model fitting (seconds) holds no write lock: `prepare` reads and
computes, `save` stores the run and its suggestions in one write transaction (runs take turns
under an advisory lock; the older pending suggestions are superseded, and partial unique indexes
keep one pending suggestion per session and template). `apply` locks the suggestion, moves it
pending → applied with a guarded UPDATE and changes the capacity in the same transaction: applied
once however often it is sent, and nothing is marked when scheduling refuses (e.g. 409
`scheduling.capacity_below_booked`). Runs and applications are audited with ids and counts only."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.orm import Session

from carepoints.audit.service import Actor, record
from carepoints.config import get_settings
from carepoints.kit.db import serialise
from carepoints.kit.ids import is_id, new_id
from carepoints.kit.time import as_utc, local_date
from carepoints.scheduling import capacity
from carepoints.scheduling import service as scheduling
from carepoints.services.forecast import model, suggest
from carepoints.services.forecast import repository as repo
from carepoints.services.forecast.errors import (
    NothingToApplyError,
    RunNotFoundError,
    SuggestionNotFoundError,
    SuggestionSupersededError,
)
from carepoints.services.forecast.schemas import RunCreate

CHART_HISTORY_DAYS = 56  # the chart shows the last 8 weeks before the forecast


def _conn(session: Session) -> Connection:
    return session.connection()


def _utc(day: date, tz: ZoneInfo) -> datetime:
    return as_utc(datetime.combine(day, time(0), tzinfo=tz))


def _local(value: datetime, tz: ZoneInfo) -> datetime:
    return as_utc(value).astimezone(tz)


def _hours_of(starts: datetime, ends: datetime, tz: ZoneInfo) -> list[int]:
    """The local clock hours a session spans (its last hour only if it runs into it)."""
    a, b = _local(starts, tz), _local(ends, tz)
    last = 23 if b.date() > a.date() else (b.hour if (b.minute or b.second) else b.hour - 1)
    return list(range(a.hour, max(a.hour, last) + 1))


def demand_history(session: Session, start: date, end: date) -> dict[str, dict[tuple[date, int], float]]:
    """Per department, {(local day, hour): demand} for the local days start..end (see repository.py)."""
    tz = get_settings().tz
    conn = _conn(session)
    lo, hi = _utc(start, tz), _utc(end + timedelta(days=1), tz)
    out: dict[str, dict[tuple[date, int], float]] = defaultdict(lambda: defaultdict(float))
    for r in repo.booked_starts(conn, lo, hi):
        at = _local(r["slot_start"], tz)
        out[r["department_id"]][(at.date(), at.hour)] += int(r["n"])
    for r in repo.waitlisted(conn, lo, hi):
        hours = _hours_of(r["starts_at"], r["ends_at"], tz)
        day = _local(r["starts_at"], tz).date()
        for h in hours:
            out[r["department_id"]][(day, h)] += int(r["n"]) / len(hours)
    return {d: dict(cells) for d, cells in out.items()}


@dataclass(frozen=True)
class Plan:
    """A computed run, ready to store."""

    run: dict[str, Any]
    suggestions: list[dict[str, Any]]


@dataclass
class _Dept:
    row: dict[str, Any]
    grid: model.Grid
    evaluation: model.Evaluation
    forecast: dict[date, dict[int, float]]  # horizon day → hour → demand


def _round(value: float | None, places: int = 3) -> float | None:
    return None if value is None else round(float(value), places)


def _evaluate(dept: dict[str, Any], cells: dict[tuple[date, int], float], start: date, end: date,
              horizon: list[date], extra_hours: set[int]) -> _Dept:
    first = min((d for d, _ in cells), default=end + timedelta(days=1))
    grid = model.build_grid(cells, max(start, first), end, {h for _, h in cells} | extra_hours)
    evaluation = model.evaluate(grid) if grid.days else model.Evaluation(0, {}, model.BASELINE, None)
    if grid.days:
        ahead = model.forecast(grid, evaluation.chosen, (horizon[-1] - end).days)
    else:
        ahead = np.zeros(((horizon[-1] - end).days, len(grid.hours)))
    offset = (horizon[0] - end).days - 1  # horizon[0] is the day after `end`: offset 0
    fc = {day: {h: float(ahead[offset + i, j]) for j, h in enumerate(grid.hours)} for i, day in enumerate(horizon)}
    return _Dept(dept, grid, evaluation, fc)


def _series(d: _Dept, horizon: list[date]) -> dict[str, Any]:
    """The chart: daily totals of the last weeks (actual), the chosen model's forecast of the
    held-back days, and the forecast of the horizon."""
    g = d.grid
    shown = min(g.days, CHART_HISTORY_DAYS)
    actual = g.daily()[g.days - shown:] if g.days else np.zeros(0)
    backtest: list[float | None] = [None] * shown
    if d.evaluation.predicted is not None:
        pred = d.evaluation.predicted.sum(axis=1)
        for i in range(min(shown, len(pred))):
            backtest[shown - 1 - i] = _round(float(pred[len(pred) - 1 - i]), 2)
    days = [g.day(g.days - shown + i).isoformat() for i in range(shown)] + [x.isoformat() for x in horizon]
    return {"days": days,
            "actual": [_round(float(v), 2) for v in actual] + [None] * len(horizon),
            "backtest": backtest + [None] * len(horizon),
            "forecast": [None] * shown + [_round(sum(d.forecast[x].values()), 2) for x in horizon]}


def _slot_hours(starts: list[datetime], tz: ZoneInfo) -> dict[int, int]:
    out: dict[int, int] = defaultdict(int)
    for s in starts:
        out[_local(s, tz).hour] += 1
    return dict(out)


def _span(starts: datetime, ends: datetime, tz: ZoneInfo) -> dict[int, float]:
    """Minutes of each local clock hour a session spans (to share an hour's demand among the
    sessions of that hour, by time, whatever their capacity now)."""
    a, b = _local(starts, tz), _local(ends, tz)
    out: dict[int, float] = {}
    at = a
    while at < b and at.date() == a.date():
        nxt = min(b, at.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1))
        out[at.hour] = out.get(at.hour, 0.0) + (nxt - at).total_seconds() / 60
        at = nxt
    return out


def _template_span(tpl: dict[str, Any], day: date, tz: ZoneInfo) -> dict[int, float]:
    return _span(datetime.combine(day, time.fromisoformat(tpl["start"]), tzinfo=tz),
                 datetime.combine(day, time.fromisoformat(tpl["end"]), tzinfo=tz), tz)


def _template_starts(tpl: dict[str, Any], day: date, tz: ZoneInfo) -> list[datetime]:
    fit = capacity.template_fit(tpl["start"], tpl["end"], int(tpl["slot_minutes"]))
    first = datetime.combine(day, time.fromisoformat(tpl["start"]), tzinfo=tz)
    return [first + timedelta(minutes=int(tpl["slot_minutes"]) * i) for i in range(int(tpl["capacity"] or fit))]


@dataclass
class _Offer:
    """What is on offer in the horizon: the coming sessions with their slot starts and taken
    counts, the active templates, and the slots per department, day (or weekday) and hour."""

    sessions: list[RowMapping]
    starts: dict[str, list[datetime]]
    taken: dict[str, int]
    templates: list[dict[str, Any]]
    owners: dict[str, str]
    by_day: dict[tuple[str, date], dict[int, int]]  # sessions' slots
    by_weekday: dict[tuple[str, int], dict[int, int]]  # templates' slots
    span_day: dict[tuple[str, date], dict[int, float]]  # sessions' minutes per hour
    span_weekday: dict[tuple[str, int], dict[int, float]]  # templates' minutes per hour


def _offer(session: Session, horizon: list[date], today: date, now: datetime, tz: ZoneInfo) -> _Offer:
    conn = _conn(session)
    coming = repo.coming_sessions(conn, _utc(horizon[0], tz), _utc(horizon[-1] + timedelta(days=1), tz), now)
    starts: dict[str, list[datetime]] = defaultdict(list)
    taken: dict[str, int] = defaultdict(int)
    for r in repo.slot_starts(conn, [s["id"] for s in coming]):
        starts[r["session_id"]].append(as_utc(r["starts_at"]))
        taken[r["session_id"]] += 1 if r["taken"] else 0
    templates = scheduling.templates(session)
    owners = repo.owner_names(conn, [t["clinician_id"] for t in templates if t["clinician_id"]],
                              [t["resource_id"] for t in templates if t["resource_id"]])
    by_day: dict[tuple[str, date], dict[int, int]] = defaultdict(lambda: defaultdict(int))
    span_day: dict[tuple[str, date], dict[int, float]] = defaultdict(lambda: defaultdict(float))
    for s in coming:
        key = (s["department_id"], s["day"])
        for h, n in _slot_hours(starts[s["id"]], tz).items():
            by_day[key][h] += n
        for h, m in _span(s["starts_at"], s["ends_at"], tz).items():
            span_day[key][h] += m
    by_weekday: dict[tuple[str, int], dict[int, int]] = defaultdict(lambda: defaultdict(int))
    span_weekday: dict[tuple[str, int], dict[int, float]] = defaultdict(lambda: defaultdict(float))
    for t in templates:
        key = (t["department_id"], int(t["weekday"]))
        for h, n in _slot_hours(_template_starts(t, today, tz), tz).items():
            by_weekday[key][h] += n
        for h, m in _template_span(t, today, tz).items():
            span_weekday[key][h] += m
    return _Offer(coming, starts, taken, templates, owners, by_day, by_weekday, span_day, span_weekday)


def prepare(session: Session, data: RunCreate, now: datetime) -> Plan:
    """Read the history and what is on offer, and compute the run (nothing is written)."""
    settings = get_settings()
    tz = settings.tz
    headroom = float(data.headroom) if data.headroom is not None else settings.forecast_headroom
    today = local_date(now, tz)
    end = today - timedelta(days=1)
    start = today - timedelta(weeks=settings.forecast_history_weeks)
    horizon = [today + timedelta(days=i) for i in range(7 * data.weeks)]
    history = demand_history(session, start, end)
    offer = _offer(session, horizon, today, now, tz)
    departments = {d["id"]: d for d in scheduling.departments(session)}
    involved = {*history, *(s["department_id"] for s in offer.sessions), *(t["department_id"] for t in offer.templates)}
    results: dict[str, _Dept] = {}
    for dep_id in sorted(involved & set(departments), key=lambda i: (departments[i]["code"], i)):
        hours = {h for (d, _), by in [*offer.span_day.items(), *offer.span_weekday.items()] if d == dep_id for h in by}
        results[dep_id] = _evaluate(departments[dep_id], history.get(dep_id, {}), start, end, horizon, hours)
    run_id = new_id()
    base = {"run_id": run_id, "created_at": now, "applied_at": None, "applied_by": None}
    rows = [{**base, **r} for r in [*_session_suggestions(offer, results, headroom, tz),
                                     *_template_suggestions(offer, results, horizon, today, headroom, tz)]]
    ratio = settings.forecast_offpeak_ratio
    out = [_department_doc(d, horizon, _windows(d, offer, horizon, ratio)) for d in results.values()]
    result = {"departments": out, "overall": _overall(out), "offpeak_ratio": ratio}
    run = {"id": run_id, "created_at": now, "created_by": None, "history_start": start, "history_end": end,
           "horizon_start": horizon[0], "horizon_days": len(horizon), "holdout_days": model.HOLDOUT_DAYS,
           "headroom": f"{headroom:.2f}", "result": result}
    return Plan(run, rows)


def _row(target: dict[str, Any], demand: float, current: int, taken: int, fit: int,
         headroom: float) -> dict[str, Any]:
    suggested, capped = suggest.capacity(demand, headroom, taken, fit)
    return {"id": new_id(), **target, "demand": round(demand, 3), "current_capacity": current,
            "suggested_capacity": suggested, "taken": taken, "fit": fit, "capped": capped,
            "status": "pending" if suggested != current else "unchanged"}


def _session_suggestions(offer: _Offer, results: dict[str, _Dept], headroom: float,
                         tz: ZoneInfo) -> list[dict[str, Any]]:
    out = []
    for s in offer.sessions:
        d, starts = results.get(s["department_id"]), offer.starts[s["id"]]
        if d is None or not starts:
            continue
        demand = suggest.session_demand(d.forecast[s["day"]], _span(s["starts_at"], s["ends_at"], tz),
                                        offer.span_day[(s["department_id"], s["day"])])
        target = {"department_id": s["department_id"], "kind": "session", "session_id": s["id"], "template_id": None,
                  "day": s["day"], "weekday": s["day"].isoweekday(),
                  "start_time": _local(s["starts_at"], tz).strftime("%H:%M"),
                  "end_time": _local(s["ends_at"], tz).strftime("%H:%M"), "owner": str(s["owner_name"] or "")[:100]}
        fit = capacity.session_fit(starts, s["ends_at"], int(s["slot_minutes"]))
        out.append(_row(target, demand, len(starts), offer.taken[s["id"]], fit, headroom))
    return out


def _template_suggestions(offer: _Offer, results: dict[str, _Dept], horizon: list[date], today: date,
                          headroom: float, tz: ZoneInfo) -> list[dict[str, Any]]:
    """A template's demand: the mean over the horizon's days of its weekday, shared among the
    department's templates of that weekday."""
    out = []
    for t in offer.templates:
        d, w = results.get(t["department_id"]), int(t["weekday"])
        days = [x for x in horizon if x.isoweekday() == w]
        if d is None or not days:
            continue
        own, total = _template_span(t, today, tz), offer.span_weekday[(t["department_id"], w)]
        demand = sum(suggest.session_demand(d.forecast[x], own, total) for x in days) / len(days)
        fit = capacity.template_fit(t["start"], t["end"], int(t["slot_minutes"]))
        target = {"department_id": t["department_id"], "kind": "template", "session_id": None, "template_id": t["id"],
                  "day": None, "weekday": w, "start_time": t["start"], "end_time": t["end"],
                  "owner": offer.owners.get(t["clinician_id"] or t["resource_id"] or "", "")[:100]}
        out.append(_row(target, demand, int(t["capacity"] or fit), 0, fit, headroom))
    return out


def _windows(d: _Dept, offer: _Offer, horizon: list[date], ratio: float) -> list[dict[str, Any]]:
    """Per weekday of the horizon, the hours whose mean forecast is below `ratio` × the mean slots
    offered, over the days with an offer (their sessions, or the templates for a day without any)."""
    dep_id = d.row["id"]
    out: list[dict[str, Any]] = []
    for w in range(1, 8):
        offers = {x: offer.by_day.get((dep_id, x)) or offer.by_weekday.get((dep_id, w)) or {}
                  for x in horizon if x.isoweekday() == w}
        days = [x for x, by in offers.items() if by]
        slots: dict[int, float] = defaultdict(float)
        for x in days:
            for h, n in offers[x].items():
                slots[h] += n / len(days)
        demand = {h: sum(d.forecast[x].get(h, 0.0) for x in days) / len(days) for h in slots}
        out.extend({"weekday": w, "start": f"{win.start:02d}:00", "end": f"{win.end:02d}:00",
                    "demand": _round(win.demand, 1), "slots": _round(win.slots, 1),
                    "utilisation": _round(win.utilisation, 3)} for win in suggest.off_peak(demand, dict(slots), ratio))
    return out


def _department_doc(d: _Dept, horizon: list[date], windows: list[dict[str, Any]]) -> dict[str, Any]:
    ev = d.evaluation
    held = float(d.grid.tail(ev.holdout).values.sum()) if ev.holdout else 0.0
    return {"department_id": d.row["id"], "name_zh": d.row["name_zh"], "name_en": d.row["name_en"],
            "history_days": d.grid.days, "holdout_days": ev.holdout, "holdout_demand": _round(held, 2),
            "models": {n: {"wape": _round(s.wape), "mae": _round(s.mae)} for n, s in ev.scores.items()},
            "chosen": ev.chosen, "forecast_total": _round(sum(sum(v.values()) for v in d.forecast.values()), 1),
            "series": _series(d, horizon), "off_peak": windows}


def _overall(departments: list[dict[str, Any]]) -> dict[str, Any]:
    """WAPE over every department's held-back cells: of the chosen models, and of each model
    where every evaluated department could fit it."""
    evaluated = [d for d in departments if d["models"] and d["holdout_demand"]]
    total = sum(d["holdout_demand"] for d in evaluated)
    if not total:
        return {"wape": None, "models": {}, "departments": 0}

    def pooled(name: str | None) -> float | None:
        errors = []
        for d in evaluated:
            score = d["models"].get(name or d["chosen"])
            if score is None or score["wape"] is None:
                return None
            errors.append(score["wape"] * d["holdout_demand"])
        return _round(sum(errors) / total)

    return {"wape": pooled(None), "models": {n: pooled(n) for n in model.CANDIDATES}, "departments": len(evaluated)}


def save(session: Session, plan: Plan, actor: Actor, now: datetime) -> dict[str, Any]:
    """Store a prepared run: earlier pending suggestions are superseded. Audited."""
    conn = _conn(session)
    serialise(conn, "forecast:run")
    superseded = repo.supersede_pending(conn)
    repo.add_run(conn, {**plan.run, "created_by": actor.id}, plan.suggestions)
    record(session, actor, "forecast:run:create", now, subject_id=plan.run["id"],
           suggestions=len(plan.suggestions), superseded=superseded)
    return read_run(session, plan.run["id"])


def _suggestion_doc(r: RowMapping | dict[str, Any]) -> dict[str, Any]:
    return {"id": r["id"], "run_id": r["run_id"], "kind": r["kind"], "department_id": r["department_id"],
            "session_id": r["session_id"], "template_id": r["template_id"],
            "day": r["day"].isoformat() if r["day"] else None, "weekday": r["weekday"], "start": r["start_time"],
            "end": r["end_time"], "owner": r["owner"], "demand": round(float(r["demand"]), 1),
            "current_capacity": r["current_capacity"], "suggested_capacity": r["suggested_capacity"],
            "taken": r["taken"], "fit": r["fit"], "capped": bool(r["capped"]), "status": r["status"],
            "applied_at": as_utc(r["applied_at"]).isoformat() if r["applied_at"] else None}


def _run_doc(conn: Connection, row: RowMapping) -> dict[str, Any]:
    return {"id": row["id"], "created_at": as_utc(row["created_at"]).isoformat(),
            "history": {"start": row["history_start"].isoformat(), "end": row["history_end"].isoformat()},
            "horizon": {"start": row["horizon_start"].isoformat(), "days": row["horizon_days"]},
            "headroom": row["headroom"], **row["result"],
            "suggestions": [_suggestion_doc(s) for s in repo.of_run(conn, row["id"])]}


def read_run(session: Session, run_id: str) -> dict[str, Any]:
    row = repo.run(_conn(session), run_id) if is_id(run_id) else None
    if row is None:
        raise RunNotFoundError()
    return _run_doc(_conn(session), row)


def latest(session: Session) -> dict[str, Any] | None:
    """The latest run with its suggestions, or None before the first."""
    row = repo.latest_run(_conn(session))
    return None if row is None else _run_doc(_conn(session), row)


def apply(session: Session, suggestion_id: str, actor: Actor, now: datetime) -> dict[str, Any]:
    """Apply a pending suggestion: the session's (or template's) capacity becomes the suggested
    one through the scheduling service. Again → the applied suggestion, `changed: false`.
    404 unknown; 409 superseded by a newer run or equal to the capacity; scheduling's refusals
    (fewer slots than booked, the session started or cancelled, more than fit) leave it pending."""
    conn = _conn(session)
    row = repo.suggestion(conn, suggestion_id, lock=True) if is_id(suggestion_id) else None
    if row is None:
        raise SuggestionNotFoundError()
    if row["status"] == "applied":
        return {**_suggestion_doc(row), "changed": False}
    if row["status"] == "superseded":
        raise SuggestionSupersededError()
    if row["status"] == "unchanged":
        raise NothingToApplyError()
    if not repo.mark_applied(conn, row["id"], actor.id, now):
        again = repo.suggestion(conn, row["id"])
        if again is not None and again["status"] == "applied":
            return {**_suggestion_doc(again), "changed": False}
        raise SuggestionSupersededError()
    if row["kind"] == "session":
        result = capacity.set_session_capacity(session, row["session_id"], row["suggested_capacity"], actor, now)
        target = {"session_id": row["session_id"]}
    else:
        result = capacity.set_template_capacity(session, row["template_id"], row["suggested_capacity"], actor, now)
        target = {"template_id": row["template_id"]}
    record(session, actor, "forecast:suggestion:apply", now, subject_id=row["id"], run_id=row["run_id"],
           previous=result["previous"], capacity=result["capacity"], **target)
    applied = repo.suggestion(conn, row["id"])
    assert applied is not None  # noqa: S101 - updated above
    return {**_suggestion_doc(applied), "changed": True, "previous_capacity": result["previous"],
            "waitlist_served": result.get("waitlist_served", 0)}
