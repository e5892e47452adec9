"""A/B experiment results: per variant, the chosen outcome with the difference and its 95%
confidence interval, split by age band.

Over the experiment's running window (start to stop, or to now while it runs). A patient is in
the experiment exactly as the rules engine has it (experiments.assign): over the part of the
window their research consent covers, in the variant the hash gives them; their age band is
their age on the first day. Read from the roll-ups (`analytics.experiments_rollup`: per
outcome, variant and age band the patients, n, Σ value and Σ value²), with the patients touched
today computed live; computed wholly live from the base tables (`live_cells`, the reference the
roll-ups are tested against) when there are none for today. `computed` says which
(`rolled` / `live`), `results_through` the last closed day the roll-ups hold.

Outcomes (`outcome=`, default participation):

- `participation`: the share of patients with at least one accepted behaviour event;
- `checkin_completeness`: the mean over patients of days with a self-measured reading
  (`measurements`, self-reported or device) / the local days they were in the experiment;
- `no_show_rate`: missed appointments / appointments reported attended or missed
  (appointment events; an appointment reported both ways counts as attended); lower is better.

Difference = variant − control; 95% CI by the normal approximation, unpooled:
`d ± 1.96 · √(p₁(1−p₁)/n₁ + p₀(1−p₀)/n₀)` for proportions, `√(s₁²/n₁ + s₀²/n₀)` for means
(s² the sample variance). No CI unless both groups have n ≥ 2 and the standard error is > 0.
For no-show rates appointments are counted as independent (an approximation: one patient's
appointments are not).

Flag: a variant is flagged when in some age band its CI lies wholly on the better side of 0
and in another band wholly on the worse side (helps one age group, hurts another, e.g. the
young and the old); `unknown` ages take no part."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, func, or_, select
from sqlalchemy.orm import Session

from carepoints.analytics import dims, live, views
from carepoints.analytics import experiments_rollup as rolled
from carepoints.analytics.periods import Period
from carepoints.analytics.report import Column, Report
from carepoints.config import get_settings
from carepoints.engagement.health.models import HealthMeasurement
from carepoints.events.models import Event
from carepoints.experiments import assign
from carepoints.experiments.errors import ExperimentNotFoundError, UnknownOutcomeError
from carepoints.experiments.models import Experiment
from carepoints.experiments.schemas import OUTCOMES
from carepoints.kit.db import table
from carepoints.kit.ids import is_id
from carepoints.kit.time import day_start_utc, local_date
from carepoints.patients.models import Consent, Patient, PatientInstitution

Z95 = 1.959963984540054
ALL = "all"
LOWER_IS_BETTER = {"no_show_rate"}
NOT_BEHAVIOUR = rolled.NOT_BEHAVIOUR
OUTCOME_NAMES = {"participation": ("参与率", "Participation"),
                 "checkin_completeness": ("打卡完整度", "Check-in completeness"),
                 "no_show_rate": ("爽约率", "No-show rate")}

_exp = table(Experiment)
_consents = table(Consent)
_patients = table(Patient)
_events = table(Event)
_measurements = table(HealthMeasurement)
_links = table(PatientInstitution)

COLUMNS = [
    Column("variant", "组别", "Variant", "text"), Column("age_band", "年龄段", "Age band", "text"),
    Column("patients", "患者数", "Patients"), Column("n", "样本量", "n"),
    Column("value", "结果", "Outcome", "pct"), Column("diff", "与对照组差值", "Difference vs control", "pct"),
    Column("ci_low", "95%置信区间下限", "95% CI low", "pct"),
    Column("ci_high", "95%置信区间上限", "95% CI high", "pct"),
    Column("effect", "显著性", "Effect", "text"), Column("flag", "警示", "Flag", "text"),
]


# --- statistics (pure) ------------------------------------------------------------------

@dataclass(slots=True)
class Cell:
    """One variant × age band: `n` units (patients, or appointments for no-shows) of values
    in [0, 1]; `total` their sum, `squares` the sum of their squares."""

    patients: int = 0
    n: int = 0
    total: float = 0.0
    squares: float = 0.0

    def add(self, value: float, units: int = 1) -> None:
        """`units` at once of which `value` is the sum (0/1 units: squares = sum)."""
        self.n += units
        self.total += value
        self.squares += value if units > 1 else value * value

    @property
    def mean(self) -> float | None:
        return self.total / self.n if self.n else None


def difference(cell: Cell, control: Cell, proportion: bool) -> tuple[float | None, float | None, float | None]:
    """(variant − control, CI low, CI high); the CI None when either n < 2 or the SE is 0."""
    m1, m0 = cell.mean, control.mean
    if m1 is None or m0 is None:
        return None, None, None
    diff = m1 - m0
    if cell.n < 2 or control.n < 2:
        return diff, None, None
    if proportion:
        var1, var0 = m1 * (1 - m1), m0 * (1 - m0)
    else:
        var1 = (cell.squares - cell.n * m1 * m1) / (cell.n - 1)
        var0 = (control.squares - control.n * m0 * m0) / (control.n - 1)
    se = math.sqrt(max(var1, 0.0) / cell.n + max(var0, 0.0) / control.n)
    if se <= 0:
        return diff, None, None
    return diff, diff - Z95 * se, diff + Z95 * se


def effect(low: float | None, high: float | None, lower_is_better: bool) -> str:
    """`better` / `worse` when the CI excludes 0, else ``."""
    if low is None or high is None or low <= 0 <= high:
        return ""
    up = low > 0
    return "better" if up != lower_is_better else "worse"


def flag(effects: dict[str, str]) -> dict[str, list[str]] | None:
    """Band → effect of one variant; the bands it helps and hurts when it does both."""
    helps = [b for b, e in effects.items() if e == "better" and b not in (ALL, dims.UNKNOWN)]
    hurts = [b for b, e in effects.items() if e == "worse" and b not in (ALL, dims.UNKNOWN)]
    return {"helps": helps, "hurts": hurts} if helps and hurts else None


# --- the view ----------------------------------------------------------------------------

def _experiment(session: Session, params: dict[str, str]) -> Any:
    conn = session.connection()
    raw = params.get("experiment_id")
    if raw is None:  # default: the experiment started last
        return conn.execute(select(_exp).where(_exp.c.started_at.is_not(None))
                            .order_by(_exp.c.started_at.desc(), _exp.c.id.desc()).limit(1)).mappings().first()
    row = conn.execute(select(_exp).where(_exp.c.id == raw)).mappings().first() if is_id(raw) else None
    if row is None:
        raise ExperimentNotFoundError()
    return row


def _in_arm(col_patient: Any, col_at: Any, start: datetime, end: datetime) -> ColumnElement[bool]:
    """Rows of a patient at an instant their research consent covers, within the window (as
    experiments.assign.arms: the window intersected with [accepted_at, withdrawn_at))."""
    c = _consents
    return and_(col_at >= start, col_at < end, exists(select(1).where(
        c.c.patient_id == col_patient, c.c.purpose == "research", c.c.accepted_at <= col_at,
        or_(c.c.withdrawn_at.is_(None), c.c.withdrawn_at > col_at))))


def _population(session: Session, exp: assign.Compiled, end: datetime, institutions: set[str] | None,
                ) -> tuple[dict[str, list[assign.Arm]], dict[str, date | None]]:
    """Each patient's arms (their consented part of the window) and birth date."""
    c, p = _consents, _patients
    stmt = (select(c.c.patient_id, c.c.accepted_at, c.c.withdrawn_at, p.c.birth_date)
            .join(p, p.c.id == c.c.patient_id)
            .where(c.c.purpose == "research", c.c.accepted_at < end,
                   or_(c.c.withdrawn_at.is_(None), c.c.withdrawn_at > exp.started_at)))
    if institutions is not None:
        stmt = stmt.where(exists(select(1).where(_links.c.patient_id == c.c.patient_id,
                                                 _links.c.institution_id.in_(sorted(institutions)))))
    spans: dict[str, list[tuple[datetime, datetime | None]]] = {}
    births: dict[str, date | None] = {}
    for pid, accepted, withdrawn, birth in session.connection().execute(stmt):
        spans.setdefault(pid, []).append((accepted, withdrawn))
        births[pid] = birth
    ended = dataclasses.replace(exp, stopped_at=end)
    arms = {pid: found for pid, s in spans.items() if (found := assign.arms([ended], pid, s))}
    return arms, births


def _days(arms: Iterable[assign.Arm], end: datetime) -> int:
    """The local days the arms touch (merged, so a day is counted once; [start, end))."""
    return rolled.days_in(arms, end, get_settings().tz)


def _values(session: Session, outcome: str, arms: dict[str, list[assign.Arm]], start: datetime,
            end: datetime) -> dict[str, tuple[float, int]]:
    """Patient → (sum of values, units) of the outcome."""
    conn = session.connection()
    e, m = _events, _measurements
    if outcome == "participation":
        active = set(conn.execute(select(e.c.patient_id).distinct().where(
            e.c.status == "accepted", e.c.type.not_in(NOT_BEHAVIOUR),
            _in_arm(e.c.patient_id, e.c.occurred_at, start, end))).scalars())
        return {pid: (1.0 if pid in active else 0.0, 1) for pid in arms}
    if outcome == "checkin_completeness":
        days = {pid: int(k) for pid, k in conn.execute(
            select(m.c.patient_id, func.count(m.c.local_day.distinct())).where(
                m.c.self_monitored.is_(True), _in_arm(m.c.patient_id, m.c.taken_at, start, end))
            .group_by(m.c.patient_id))}
        out = {}
        for pid, found in arms.items():
            span = _days(found, end)
            out[pid] = (min(1.0, days.get(pid, 0) / span) if span else 0.0, 1)
        return out
    appointment = e.c.attributes["appointment_id"].as_string()
    no_shows = func.sum(case((e.c.type == "appointment.no_show", 1), else_=0))
    rows = conn.execute(select(e.c.patient_id, appointment, no_shows, func.count()).where(
        e.c.status == "accepted", e.c.type.in_(("appointment.attended", "appointment.no_show")),
        _in_arm(e.c.patient_id, e.c.occurred_at, start, end))
        .group_by(e.c.patient_id, appointment))
    counts: dict[str, list[int]] = {}
    for pid, _appointment, missed, reports in rows:
        slot = counts.setdefault(pid, [0, 0])
        slot[0] += 1 if int(missed) == int(reports) else 0  # reported attended too: attended
        slot[1] += 1
    return {pid: (float(x), n) for pid, (x, n) in counts.items() if pid in arms}


@views.view("experiment_results", "试验结果", "Experiment results", params=("experiment_id", "outcome"),
            permission="experiments:read")
def experiment_results(session: Session, q: views.Query, now: datetime) -> Report:
    """Per variant and age band: n, the outcome, the difference vs control with its 95% CI,
    and a flag for a variant that helps one age band and hurts another (see the module)."""
    outcome = q.params.get("outcome", "participation")
    if outcome not in OUTCOMES:
        raise UnknownOutcomeError()
    zh, en = OUTCOME_NAMES[outcome]
    row = _experiment(session, q.params)
    report = Report("experiment_results", f"试验结果:{zh}", f"Experiment results: {en}", COLUMNS, [],
                    extra={"experiment": None, "outcome": outcome, "flags": []})
    if row is None or row["started_at"] is None:
        if row is not None:
            report.extra["experiment"] = {"id": row["id"], "code": row["code"], "status": row["status"]}
        return report
    exp = assign.Compiled.of(row["id"], row["code"], row["started_at"], row["stopped_at"], row["variants"])
    start, end = exp.started_at, min(exp.stopped_at or now, now)
    tz = get_settings().tz
    report.period = Period(local_date(start, tz), local_date(end, tz))
    report.extra["experiment"] = {"id": exp.id, "code": exp.code, "status": row["status"],
                                  "started_at": start, "stopped_at": exp.stopped_at,
                                  "names": {"zh": row["name_zh"], "en": row["name_en"]}}
    institutions = set(q.institutions) if q.institutions is not None else None
    if "institution_id" in q.filters:
        institutions = {q.filters["institution_id"]} & (institutions if institutions is not None
                                                         else {q.filters["institution_id"]})
    band = q.filters.get("age_band")
    found = _rolled_cells(session, exp, outcome, end, institutions, q.today)
    if found is None:
        cells = live_cells(session, exp, outcome, end, institutions)
        report.extra["computed"] = "live"
    else:
        cells, report.extra["results_through"] = found
        report.extra["computed"] = "rolled"
    if band is not None:
        cells = {(v, b): c for (v, b), c in cells.items() if b == band}
        cells |= {(v, ALL): dataclasses.replace(c) for (v, _b), c in list(cells.items())}
    report.rows, report.extra["flags"] = _rows(exp, cells, outcome)
    return report


def live_cells(session: Session, exp: assign.Compiled, outcome: str, end: datetime,
               institutions: set[str] | None) -> dict[tuple[str, str], Cell]:
    """The results' cells computed live from the base tables over [start, end)."""
    cells: dict[tuple[str, str], Cell] = {}
    for _pid, variant, band, value, units in _live_values(session, exp, outcome, end, institutions):
        for b in (ALL, band):
            cell = cells.setdefault((variant, b), Cell())
            cell.patients += 1
            cell.add(value, units)
    return cells


def _live_values(session: Session, exp: assign.Compiled, outcome: str, end: datetime,
                 institutions: set[str] | None) -> list[tuple[str, str, str, float, int]]:
    """(patient, variant, band, value, units) of each patient counted in the outcome."""
    arms, births = _population(session, exp, end, institutions)
    first_day = local_date(exp.started_at, get_settings().tz)
    return [(pid, arms[pid][0].variant, dims.age_band(births.get(pid), first_day), value, units)
            for pid, (value, units) in _values(session, outcome, arms, exp.started_at, end).items()]


def _rolled_cells(session: Session, exp: assign.Compiled, outcome: str, end: datetime,
                  institutions: set[str] | None, today: date) -> tuple[dict[tuple[str, str], Cell], str] | None:
    """The cells from the roll-ups with today's touched patients live (module docstring), and
    the last closed day the roll-ups hold; None when they cannot answer."""
    if institutions is not None and len(institutions) != 1:
        return None
    inst = rolled.STAR if institutions is None else next(iter(institutions))
    stored = rolled.stored_cells(session, exp.id, outcome, inst)
    base = day_start_utc(today, get_settings().tz)
    if stored is None or exp.started_at >= base:
        return None
    valid_on, through, sums = stored
    final = exp.stopped_at is not None and exp.stopped_at <= base
    if (valid_on is None) != final or (valid_on is not None and valid_on != today):
        return None
    cells = {k: Cell(s.patients, s.n, s.total, s.squares) for k, s in sums.items()}
    if not final:  # the members touched today: their stored values out, their values as of `end` in
        key = ("analytics.live", "experiment_today", exp.id, inst, today, get_settings().tz.key)
        old, new = live.shared(session, key, lambda: rolled.touched_today(
            session, exp, base, end, None if institutions is None else inst))
        for sign, members in ((-1, old), (1, new)):
            for m in members:
                value = rolled.member_values(m)[outcome]
                if value is None:
                    continue
                for b in (ALL, m["age_band"]):
                    cell = cells.setdefault((m["variant"], b), Cell())
                    cell.patients += sign
                    cell.n += sign * value[1]
                    cell.total += sign * value[0]
                    cell.squares += sign * (value[0] if value[1] > 1 else value[0] * value[0])
    return {k: c for k, c in cells.items() if c.patients > 0}, through.isoformat()


def _rows(exp: assign.Compiled, cells: dict[tuple[str, str], Cell], outcome: str,
          ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    proportion = outcome != "checkin_completeness"
    lower = outcome in LOWER_IS_BETTER
    control = exp.variants[0].code
    bands = [b for b in (ALL, *dims.age_bands()) if any((v.code, b) in cells for v in exp.variants)]
    rows: list[dict[str, Any]] = []
    flags: list[dict[str, Any]] = []
    for v in exp.variants:
        effects: dict[str, str] = {}
        mine: list[dict[str, Any]] = []
        for band in bands:
            cell = cells.get((v.code, band), Cell())
            diff = low = high = None
            if v.code != control:
                diff, low, high = difference(cell, cells.get((control, band), Cell()), proportion)
                effects[band] = effect(low, high, lower)
            mine.append({"variant": v.code, "age_band": band, "patients": cell.patients, "n": cell.n,
                         "value": _round(cell.mean), "diff": _round(diff), "ci_low": _round(low),
                         "ci_high": _round(high), "effect": effects.get(band, ""), "flag": ""})
        found = flag(effects)
        if found is not None:
            flags.append({"variant": v.code, **found})
            text = (f"年龄段间效果相反:有利于{'、'.join(found['helps'])},不利于{'、'.join(found['hurts'])} / "
                    f"Opposite effects by age: helps {', '.join(found['helps'])}, "
                    f"hurts {', '.join(found['hurts'])}")
            for r in mine:
                r["flag"] = text
        rows.extend(mine)
    return rows, flags


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)
