"""Experiment results rolled up, so that `experiment_results` reads roll-ups, not the base tables.

A patient's outcome over the experiment's window is not additive over days (participation is
"active on any day", check-in completeness divides by the days in the experiment, a no-show
counts an appointment once over all its reports). So the roll-up keeps three layers:

1. **Per-day facts** (day roll-ups `experiment_facts`, `experiment_visits`; idempotent like
   every day roll-up): for each experiment running that day, each patient with an in-arm
   behaviour event (`active`) or self-measured reading (`checkin`: the reading's `local_day`)
   that day, and each appointment's in-arm attended / no-show reports that day. A marker row
   (patient `""`) says the experiment's day was rolled.
2. **Members** (`analytics_experiment_members`, rebuilt whole by the finisher after every run of
   the job or the CLI): each patient in the experiment as of the start of today, their variant,
   age band on the first day and what their outcomes are made of — active or not, checked-in
   days and the days in their arms (today included while their arm runs on: the values at any
   moment of today for a patient who does nothing today), appointments and missed ones (an
   appointment's reports summed over the days).
3. **Cells** (`analytics_experiment_cells`): per outcome × institution (`*` and each linked one)
   × variant × age band (`all` and the band): patients, n, Σ value and Σ value² — all the 95%
   CI needs. `valid_on` = the day they hold for (today's date at the run), or null when the
   experiment stopped before that day (final).

The view reads the cells; for a running experiment it replaces the members touched today
(in-arm events, readings, research consent changes since midnight) by their stored rows
updated with today's events (`touched_today`: today's rows only, never their history; shared
for `analytics_live_seconds` like today's other live figures). It
computes everything live from the base tables (`experiments.live_cells`) on the experiment's
first day, when the cells are not for today (the job has not run since midnight), or for a
caller reaching several institutions.
Events that arrive late or are revoked count once their day is re-rolled (the job re-rolls
the last `analytics_rerun_days`), as in every roll-up."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Date, Float, Index, Integer, String, delete, func, insert, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, Session, mapped_column

from carepoints.analytics import dims, rollup
from carepoints.config import get_settings
from carepoints.engagement.health.models import HealthMeasurement
from carepoints.events.models import Event
from carepoints.experiments import assign
from carepoints.experiments.models import Experiment
from carepoints.kit.db import Base, serialise, table
from carepoints.kit.time import day_start_utc, local_date
from carepoints.patients.models import Consent, Patient, PatientInstitution

NOT_BEHAVIOUR = ("account.registered", "lab.critical_value")
APPOINTMENT_REPORTS = ("appointment.attended", "appointment.no_show")
OUTCOMES = ("participation", "checkin_completeness", "no_show_rate")
ALL, STAR, MARK = "all", "*", ""


class ExperimentFact(Base):
    """A patient's in-arm activity on one local day of a running experiment (marker: patient "")."""

    __tablename__ = "analytics_experiment_facts"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    experiment_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    active: Mapped[int] = mapped_column(Integer)
    checkin: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index("ix_analytics_experiment_facts_exp", "experiment_id", "day"),)


class ExperimentVisit(Base):
    """An appointment's in-arm attended / no-show reports on one local day (`""`: none named)."""

    __tablename__ = "analytics_experiment_visits"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    experiment_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    appointment_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    reports: Mapped[int] = mapped_column(Integer)
    no_shows: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index("ix_analytics_experiment_visits_exp", "experiment_id", "day"),)


class ExperimentMember(Base):
    """A patient in an experiment with their outcome values as of `valid_on` (module docstring)."""

    __tablename__ = "analytics_experiment_members"

    experiment_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    variant: Mapped[str] = mapped_column(String(64))
    age_band: Mapped[str] = mapped_column(String(16))
    active: Mapped[int] = mapped_column(Integer)
    checkin_days: Mapped[int] = mapped_column(Integer)  # days with an in-arm self-measured reading
    days: Mapped[int] = mapped_column(Integer)  # the local days in the arms (today too while they run on)
    appointments: Mapped[int] = mapped_column(Integer)
    missed: Mapped[int] = mapped_column(Integer)


class ExperimentCell(Base):
    """One outcome × institution × variant × age band of an experiment's results (module
    docstring); a marker row (outcome `*`) says the experiment's cells were computed."""

    __tablename__ = "analytics_experiment_cells"

    experiment_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(32), primary_key=True)
    institution_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    variant: Mapped[str] = mapped_column(String(64), primary_key=True)
    age_band: Mapped[str] = mapped_column(String(16), primary_key=True)
    valid_on: Mapped[date | None] = mapped_column(Date)
    through: Mapped[date] = mapped_column(Date)  # the last closed day the facts cover
    patients: Mapped[int] = mapped_column(Integer)
    n: Mapped[int] = mapped_column(Integer)
    total: Mapped[float] = mapped_column(Float)
    squares: Mapped[float] = mapped_column(Float)


_facts, _visits = table(ExperimentFact), table(ExperimentVisit)
_members, _cells = table(ExperimentMember), table(ExperimentCell)
_exp, _ev, _m = table(Experiment), table(Event), table(HealthMeasurement)
_consents, _pat, _links = table(Consent), table(Patient), table(PatientInstitution)

# today's research consent changes, found without a scan (the view's patients touched today)
Index("ix_consents_purpose_accepted", _consents.c.purpose, _consents.c.accepted_at)
Index("ix_consents_purpose_withdrawn", _consents.c.purpose, _consents.c.withdrawn_at)


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    return day_start_utc(day, tz), day_start_utc(day + timedelta(days=1), tz)


def select_in(conn: Connection, stmt: Any, column: Any, ids: Iterable[str]) -> list[Any]:
    """`stmt` WHERE `column` IN ids, in chunks (SQLite's parameter limit)."""
    items, out = sorted({i for i in ids if i}), list[Any]()
    for i in range(0, len(items), 5000):
        out.extend(conn.execute(stmt.where(column.in_(items[i:i + 5000]))).all())
    return out


def compiled(row: Any) -> assign.Compiled:
    return assign.Compiled.of(row["id"], row["code"], row["started_at"], row["stopped_at"], row["variants"])


def running_on(session: Session, lo: datetime, hi: datetime) -> list[assign.Compiled]:
    """The started experiments whose window meets [lo, hi)."""
    e = _exp.c
    rows = session.connection().execute(select(_exp).where(
        e.started_at.is_not(None), e.started_at < hi, or_(e.stopped_at.is_(None), e.stopped_at > lo))).mappings()
    return [compiled(r) for r in rows]


def consents_of(session: Session, ids: Iterable[str]) -> dict[str, list[tuple[datetime, datetime | None]]]:
    c = _consents.c
    out: dict[str, list[tuple[datetime, datetime | None]]] = defaultdict(list)
    stmt = select(c.patient_id, c.accepted_at, c.withdrawn_at).where(c.purpose == "research")
    for pid, accepted, withdrawn in select_in(session.connection(), stmt, c.patient_id, ids):
        out[pid].append((accepted, withdrawn))
    return out


def _in_arm(exp: assign.Compiled, spans: list[tuple[datetime, datetime | None]], at: datetime) -> bool:
    """As `experiments._in_arm`: inside the window and a research consent covers the instant."""
    if at < exp.started_at or (exp.stopped_at is not None and at >= exp.stopped_at):
        return False
    return any(accepted <= at and (withdrawn is None or withdrawn > at) for accepted, withdrawn in spans)


# --- the day roll-ups ----------------------------------------------------------------------


def compute_facts(session: Session, day: date, tz: ZoneInfo) -> list[dict[str, Any]]:
    lo, hi = day_bounds(day, tz)
    exps = running_on(session, lo, hi)
    if not exps:
        return []
    conn = session.connection()
    e, m = _ev.c, _m.c
    events = conn.execute(select(e.patient_id, e.occurred_at).where(
        e.occurred_at >= lo, e.occurred_at < hi, e.status == "accepted", e.type.not_in(NOT_BEHAVIOUR))).all()
    readings = conn.execute(select(m.patient_id, m.taken_at).where(
        m.self_monitored.is_(True), m.local_day == day)).all()
    spans = consents_of(session, {r[0] for r in events} | {r[0] for r in readings})
    out: list[dict[str, Any]] = []
    for exp in exps:
        seen: dict[str, list[int]] = {}
        for col, rows in ((0, events), (1, readings)):
            for pid, at in rows:
                if pid in spans and _in_arm(exp, spans[pid], at):
                    seen.setdefault(pid, [0, 0])[col] = 1
        out.append({"day": day, "experiment_id": exp.id, "patient_id": MARK, "active": 0, "checkin": 0})
        out += [{"day": day, "experiment_id": exp.id, "patient_id": pid, "active": a, "checkin": c}
                for pid, (a, c) in sorted(seen.items())]
    return out


def compute_visits(session: Session, day: date, tz: ZoneInfo) -> list[dict[str, Any]]:
    lo, hi = day_bounds(day, tz)
    exps = running_on(session, lo, hi)
    if not exps:
        return []
    e = _ev.c
    rows = session.connection().execute(select(
        e.patient_id, e.occurred_at, e.type, e.attributes["appointment_id"].as_string()).where(
        e.occurred_at >= lo, e.occurred_at < hi, e.status == "accepted", e.type.in_(APPOINTMENT_REPORTS))).all()
    spans = consents_of(session, {r[0] for r in rows})
    out: list[dict[str, Any]] = []
    for exp in exps:
        acc: dict[tuple[str, str], list[int]] = {}
        for pid, at, type_, appointment in rows:
            if pid in spans and _in_arm(exp, spans[pid], at):
                slot = acc.setdefault((pid, appointment or ""), [0, 0])
                slot[0] += 1
                slot[1] += type_ == "appointment.no_show"
        out += [{"day": day, "experiment_id": exp.id, "patient_id": pid, "appointment_id": a, "reports": r,
                 "no_shows": n} for (pid, a), (r, n) in sorted(acc.items())]
    return out


FACTS_ROLLUP = "experiment_facts"
VISITS_ROLLUP = "experiment_visits"
rollup.rollup(FACTS_ROLLUP, "day", _facts)(compute_facts)
rollup.rollup(VISITS_ROLLUP, "day", _visits)(compute_visits)


# --- members and cells (the finisher) --------------------------------------------------------


def days_in(arms: Iterable[assign.Arm], end: datetime, tz: ZoneInfo) -> int:
    """The local days the arms (cut at `end`) touch, each counted once; an arm touches the days
    of [starts_at, ends_at): one ending at midnight does not touch the day it ends on."""
    spans = sorted((local_date(a.starts_at, tz), local_date((a.ends_at or end) - timedelta(microseconds=1), tz))
                   for a in arms)
    total, last = 0, None
    for lo, hi in spans:
        if last is not None and lo <= last:
            lo = last + timedelta(days=1)
        if lo <= hi:
            total += (hi - lo).days + 1
            last = hi
    return total


@dataclasses.dataclass(slots=True)
class Sums:
    patients: int = 0
    n: int = 0
    total: float = 0.0
    squares: float = 0.0

    def add(self, value: float, units: int, sign: int = 1) -> None:
        self.patients += sign
        self.n += sign * units
        self.total += sign * value
        self.squares += sign * (value if units > 1 else value * value)


def member_values(row: dict[str, Any] | Any) -> dict[str, tuple[float, int] | None]:
    """A member row's (value, units) per outcome (None: not counted, e.g. no appointment)."""
    days = int(row["days"])
    checkin = min(1.0, int(row["checkin_days"]) / days) if days else 0.0
    return {"participation": (float(row["active"]), 1), "checkin_completeness": (checkin, 1),
            "no_show_rate": (float(row["missed"]), int(row["appointments"])) if row["appointments"] else None}


def rolled_days(session: Session, exp_id: str, first: date, last: date) -> set[date]:
    f = _facts.c
    return set(session.connection().execute(select(f.day).where(
        f.experiment_id == exp_id, f.patient_id == MARK, f.day >= first, f.day <= last)).scalars())


def compute_members(session: Session, exp: assign.Compiled, today: date, tz: ZoneInfo
                    ) -> tuple[list[dict[str, Any]], date | None, date]:
    """(members, valid_on, through) of the experiment for `today` (module docstring), rolling
    any day of its window the facts are missing (one started in the past, say) first."""
    base = day_start_utc(today, tz)
    final = exp.stopped_at is not None and exp.stopped_at <= base
    cut = exp.stopped_at if final and exp.stopped_at is not None else base
    first, through = local_date(exp.started_at, tz), local_date(cut - timedelta(microseconds=1), tz)
    have = rolled_days(session, exp.id, first, through)
    for i in range((through - first).days + 1):
        day = first + timedelta(days=i)
        if day not in have:
            for name in (FACTS_ROLLUP, VISITS_ROLLUP):
                rollup.replace(session, rollup.ROLLUPS[name], day, tz)
    conn = session.connection()
    c, p = _consents.c, _pat.c
    stmt = (select(c.patient_id, c.accepted_at, c.withdrawn_at, p.birth_date).join(_pat, p.id == c.patient_id)
            .where(c.purpose == "research", c.accepted_at < cut,
                   or_(c.withdrawn_at.is_(None), c.withdrawn_at > exp.started_at)))
    spans: dict[str, list[tuple[datetime, datetime | None]]] = defaultdict(list)
    births: dict[str, date | None] = {}
    for pid, accepted, withdrawn, birth in conn.execute(stmt):
        spans[pid].append((accepted, withdrawn))
        births[pid] = birth
    f, v = _facts.c, _visits.c
    active: dict[str, int] = {}
    checkins: dict[str, int] = {}
    for pid, a, k in conn.execute(select(f.patient_id, func.max(f.active), func.sum(f.checkin)).where(
            f.experiment_id == exp.id, f.patient_id != MARK, f.day <= through).group_by(f.patient_id)):
        active[pid], checkins[pid] = int(a), int(k)
    visits: dict[str, list[int]] = {}
    for pid, _a, reports, no_shows in conn.execute(select(
            v.patient_id, v.appointment_id, func.sum(v.reports), func.sum(v.no_shows)).where(
            v.experiment_id == exp.id, v.day <= through).group_by(v.patient_id, v.appointment_id)):
        slot = visits.setdefault(pid, [0, 0])
        slot[0] += int(no_shows) == int(reports)
        slot[1] += 1
    clipped = dataclasses.replace(exp, stopped_at=cut)
    bands: dict[date | None, str] = {}
    out = []
    for pid, s in sorted(spans.items()):  # one order: the sums come out the same on every run
        arms = assign.arms([clipped], pid, s)
        if not arms:
            continue
        days = days_in(arms, cut, tz)
        if not final and any(a.ends_at is None or a.ends_at > base for a in assign.arms([exp], pid, s)
                             if a.starts_at < base):
            days += 1  # their arm runs on into today: today counts among their days
        birth = births[pid]
        if birth not in bands:
            bands[birth] = dims.age_band(birth, first)
        missed, appointments = visits.get(pid, [0, 0])
        out.append({"experiment_id": exp.id, "patient_id": pid, "variant": arms[0].variant, "age_band": bands[birth],
                    "active": active.get(pid, 0), "checkin_days": checkins.get(pid, 0), "days": days,
                    "appointments": appointments, "missed": missed})
    return out, None if final else today, through


def cells_of(members: list[dict[str, Any]], links: dict[str, list[str]]) -> dict[tuple[str, str, str, str], Sums]:
    """(outcome, institution, variant, band) → sums over the members."""
    cells: dict[tuple[str, str, str, str], Sums] = defaultdict(Sums)
    for mrow in members:
        for outcome, found in member_values(mrow).items():
            if found is None:
                continue
            for inst in (STAR, *links.get(mrow["patient_id"], ())):
                for band in (ALL, mrow["age_band"]):
                    cells[(outcome, inst, mrow["variant"], band)].add(*found)
    return cells


def finish_experiments(session: Session, days: list[date], today: date, tz: ZoneInfo) -> int:
    """Rebuild the members and cells of every experiment started before today (final ones only
    when missing or when a day of their window was re-rolled)."""
    conn = session.connection()
    base = day_start_utc(today, tz)
    written = 0
    for row in conn.execute(select(_exp).where(_exp.c.started_at.is_not(None), _exp.c.started_at < base)).mappings():
        exp = compiled(row)
        final = exp.stopped_at is not None and exp.stopped_at <= base
        if final:
            assert exp.stopped_at is not None  # noqa: S101
            last = local_date(exp.stopped_at - timedelta(microseconds=1), tz)
            state = conn.execute(select(_cells.c.valid_on, _cells.c.through).where(
                _cells.c.experiment_id == exp.id, _cells.c.outcome == STAR)).first()
            touched = any(local_date(exp.started_at, tz) <= d <= last for d in days)
            if state is not None and state[0] is None and state[1] == last and not touched:
                continue
        serialise(conn, f"analytics-experiment:{exp.id}")
        members, valid_on, through = compute_members(session, exp, today, tz)
        links: dict[str, list[str]] = defaultdict(list)
        stmt = select(_links.c.patient_id, _links.c.institution_id)
        for pid, inst in select_in(conn, stmt, _links.c.patient_id, [m["patient_id"] for m in members]):
            links[pid].append(inst)
        cells = cells_of(members, links)
        conn.execute(delete(_members).where(_members.c.experiment_id == exp.id))
        conn.execute(delete(_cells).where(_cells.c.experiment_id == exp.id))
        for i in range(0, len(members), 5000):
            conn.execute(insert(_members), members[i:i + 5000])
        rows = [{"experiment_id": exp.id, "outcome": STAR, "institution_id": STAR, "variant": "", "age_band": "",
                 "valid_on": valid_on, "through": through, "patients": 0, "n": 0, "total": 0.0, "squares": 0.0}]
        rows += [{"experiment_id": exp.id, "outcome": o, "institution_id": i, "variant": v, "age_band": b,
                  "valid_on": valid_on, "through": through, "patients": s.patients, "n": s.n, "total": s.total,
                  "squares": s.squares} for (o, i, v, b), s in sorted(cells.items())]
        conn.execute(insert(_cells), rows)
        written += len(members) + len(rows)
    return written


rollup.finisher("experiment_results")(finish_experiments)


# --- reading -------------------------------------------------------------------------------


def stored_cells(session: Session, exp_id: str, outcome: str, institution: str
                 ) -> tuple[date | None, date, dict[tuple[str, str], Sums]] | None:
    """(valid_on, through, (variant, band) → sums) of the stored cells, or None when none are."""
    conn = session.connection()
    state = conn.execute(select(_cells.c.valid_on, _cells.c.through).where(
        _cells.c.experiment_id == exp_id, _cells.c.outcome == STAR)).first()
    if state is None:
        return None
    k = _cells.c
    out = {(r.variant, r.age_band): Sums(int(r.patients), int(r.n), float(r.total), float(r.squares))
           for r in conn.execute(select(k.variant, k.age_band, k.patients, k.n, k.total, k.squares).where(
               k.experiment_id == exp_id, k.outcome == outcome, k.institution_id == institution))}
    return state[0], state[1], out


def touched_today(session: Session, exp: assign.Compiled, base: datetime, end: datetime,
                  institution: str | None) -> tuple[list[Any], list[dict[str, Any]]]:
    """The stored member rows of the patients whose results changed since `base` (the start of
    today: their in-arm behaviour events, self-measured readings and appointment reports, and
    research consent changes, up to `end`), and their rows recomputed as of `end`: the stored
    days before today plus today's own rows (`institution`: of the patients linked to it)."""
    conn = session.connection()
    e, m, c = _ev.c, _m.c, _consents.c
    events = conn.execute(select(e.patient_id, e.occurred_at, e.type, e.attributes["appointment_id"].as_string())
                          .where(e.occurred_at >= base, e.occurred_at < end, e.status == "accepted",
                                 e.type.not_in(NOT_BEHAVIOUR))).all()
    readings = conn.execute(select(m.patient_id, m.taken_at).where(
        m.self_monitored.is_(True), m.local_day == local_date(base, get_settings().tz), m.taken_at < end)).all()
    changed = conn.execute(select(c.patient_id).where(
        c.purpose == "research", or_(c.accepted_at >= base, c.withdrawn_at >= base))).scalars().all()
    touched = {r[0] for r in events} | {r[0] for r in readings} | set(changed)
    if institution is not None:
        linked = {r[0] for r in select_in(conn, select(_links.c.patient_id).where(
            _links.c.institution_id == institution), _links.c.patient_id, touched)}
        touched &= linked
    if not touched:
        return [], []
    k, v = _members.c, _visits.c
    old = {r["patient_id"]: r for r in (row._mapping for row in select_in(
        conn, select(_members).where(k.experiment_id == exp.id), k.patient_id, touched))}
    spans = consents_of(session, touched)
    births = {r[0]: r[1] for r in select_in(conn, select(_pat.c.id, _pat.c.birth_date), _pat.c.id, touched)}
    ended = dataclasses.replace(exp, stopped_at=end)
    tz = get_settings().tz
    first = local_date(exp.started_at, tz)
    today: dict[str, dict[str, Any]] = {}
    reports: dict[tuple[str, str], list[int]] = {}
    for pid, at, type_, appointment in events:
        if pid in touched and _in_arm(ended, spans.get(pid, []), at):
            today.setdefault(pid, {})["active"] = 1
            if type_ in APPOINTMENT_REPORTS:
                slot = reports.setdefault((pid, appointment or ""), [0, 0])
                slot[0] += 1
                slot[1] += type_ == "appointment.no_show"
    for pid, at in readings:
        if pid in touched and _in_arm(ended, spans.get(pid, []), at):
            today.setdefault(pid, {})["checkin"] = 1
    before: dict[tuple[str, str], tuple[int, int]] = {}
    for pid, appointment, r, n in select_in(conn, select(v.patient_id, v.appointment_id, func.sum(v.reports),
                                                          func.sum(v.no_shows)).where(
            v.experiment_id == exp.id, v.day < local_date(base, tz)).group_by(v.patient_id, v.appointment_id),
            v.patient_id, {p for p, _a in reports}):
        before[(pid, appointment)] = (int(r), int(n))
    new = []
    for pid in sorted(touched):
        arms = assign.arms([ended], pid, spans.get(pid, []))
        if not arms:
            continue
        was = old.get(pid)
        mine = today.get(pid, {})
        missed, appointments = (int(was["missed"]), int(was["appointments"])) if was is not None else (0, 0)
        for (p, appointment), (r, n) in reports.items():
            if p != pid:
                continue
            r0, n0 = before.get((pid, appointment), (0, 0))
            if r0:
                appointments -= 1
                missed -= n0 == r0
            appointments += 1
            missed += n0 + n == r0 + r
        new.append({"experiment_id": exp.id, "patient_id": pid, "variant": arms[0].variant,
                    "age_band": was["age_band"] if was is not None else dims.age_band(births.get(pid), first),
                    "active": max(int(was["active"]) if was is not None else 0, mine.get("active", 0)),
                    "checkin_days": (int(was["checkin_days"]) if was is not None else 0) + mine.get("checkin", 0),
                    "days": days_in(arms, end, tz), "appointments": appointments, "missed": missed})
    return list(old.values()), new
