"""Health KPIs (follow-up completion, check-in completeness, public-health coverage) and the
nurses' care list. (Visits: `analytics.visits`; the shared machinery: `analytics.cubes`.)

What is counted (the hospital's local calendar; a patient's institution is their only linked
one, else the installation's only one, else `unknown`, as in `points`; age band and
conditions are the patient's on the day, a patient counting under each condition, `none`
without one):

- **Follow-up completion** = follow-up steps due (`due_on`) in the period that are completed
  (whenever answered) / the steps due; cancelled steps take no part.
- **Check-in completeness** = patient-days with a self-measured reading (self-reported or
  device; a revoked reading does not count) / patient-days enrolled, over the patients with a
  chronic condition on that day (慢病患者, the population asked to self-monitor);
  `checkin_completeness_all` is the same over every enrolled patient. Enrolled on a day = an
  active record created by the day's end (the status as of the roll-up).
- **Public-health coverage** = eligible patients with a `public_health.completed` of the
  programme in the period (also entered from paper: `staff.offline_entry`) / the patients
  eligible at the period's end. Eligible: vaccination — every enrolled patient (the register
  does not record who is due: this is coverage of the enrolled population); elderly checkup —
  aged ≥ 65; prenatal — women aged 15–49 (pregnancy is not recorded: a proxy denominator, so the
  share is a lower bound). A patient counts in the numerator when eligible on the day of the
  behaviour.

Storage: `analytics_care_daily` (a cube by age band and condition: the population at each
day's end, the readers among it, the steps due and done) and `analytics_public_health` (facts;
distinct patients as in `cubes`: stored windows of whole weeks / months, else live up to 92
days). Today is live, with yesterday's
rolled-up population (today's enrolments count from tomorrow), so a live figure never scans the
patient register.

**Care list** (`care_list`, permission `care:read`): live, the care alerts (abnormal readings and
answers, overdue follow-ups, critical values and the inactivity rule's flags) newest first, ids
and codes only: no names, phones or values."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Date, Index, Integer, String, and_, case, exists, func, literal, not_, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.sql import ColumnElement, Select

from carepoints.analytics import cubes, dims, rollup, views
from carepoints.analytics.cubes import Cell, Cube, Facts, Figures, KpiDef, share
from carepoints.analytics.errors import BadParameterError
from carepoints.analytics.periods import Period
from carepoints.analytics.points import Scope
from carepoints.analytics.points_rollup import NONE, STAR, UNKNOWN, day_bounds
from carepoints.analytics.report import Column, Report
from carepoints.engagement.care.models import CareAlert
from carepoints.engagement.care.schemas import AlertKind, AlertStatus
from carepoints.engagement.followups.models import FollowupStep
from carepoints.engagement.health.models import HealthMeasurement, PatientCondition
from carepoints.events.models import Event
from carepoints.kit.db import Base, table
from carepoints.kit.ids import is_id
from carepoints.patients.models import Patient, PatientInstitution
from carepoints.scheduling.models import Appointment, ClinicSession

ELDERLY_AGE, PRENATAL_AGES = 65, (15, 49)
PROGRAMMES = ("vaccination", "elderly_checkup", "prenatal")


class CareDaily(Base):
    """Health figures of one local day, cut like `analytics_visits_daily` (dimensions age band
    and condition): the enrolled population at the day's end (enrolled, chronic, elderly ≥ 65,
    women 15–49), those of them with a self-measured reading that day, follow-up steps due."""

    __tablename__ = "analytics_care_daily"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    institution_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    f_dim: Mapped[str] = mapped_column(String(16), primary_key=True)
    f_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    b_dim: Mapped[str] = mapped_column(String(16), primary_key=True)
    b_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    enrolled: Mapped[int] = mapped_column(Integer)
    chronic: Mapped[int] = mapped_column(Integer)
    elderly: Mapped[int] = mapped_column(Integer)
    women: Mapped[int] = mapped_column(Integer)
    readers: Mapped[int] = mapped_column(Integer)
    chronic_readers: Mapped[int] = mapped_column(Integer)
    followups_due: Mapped[int] = mapped_column(Integer)
    followups_done: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index("ix_analytics_care_daily_cut", "f_dim", "f_key", "b_dim", "day"),)


class PublicHealthFacts(Base):
    """An eligible patient's public-health behaviour of a programme on a local day; `condition`
    is `*` (every patient once) or one of the patient's conditions that day (`none`)."""

    __tablename__ = "analytics_public_health"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    programme: Mapped[str] = mapped_column(String(16), primary_key=True)
    institution_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    condition: Mapped[str] = mapped_column(String(32), primary_key=True)
    age_band: Mapped[str] = mapped_column(String(16))

    __table_args__ = (Index("ix_analytics_public_health_patient", "patient_id", "day"),)


_daily, _ph = table(CareDaily), table(PublicHealthFacts)
_pat, _links, _conds = table(Patient), table(PatientInstitution), table(PatientCondition)
_readings, _ev, _steps, _alerts = table(HealthMeasurement), table(Event), table(FollowupStep), table(CareAlert)
_appt, _sess = table(Appointment), table(ClinicSession)

MEASURES = ("enrolled", "chronic", "elderly", "women", "readers", "chronic_readers", "followups_due", "followups_done")
POPULATION = MEASURES[:4]
DIMS = ("age_band", "condition")


def eligible(programme: str, age: int | None, sex: str) -> bool:
    """Who a public-health programme is for (module docstring)."""
    if programme == "elderly_checkup":
        return age is not None and age >= ELDERLY_AGE
    if programme == "prenatal":
        return sex == "female" and age is not None and PRENATAL_AGES[0] <= age <= PRENATAL_AGES[1]
    return True


# --- the day's population, readers and follow-ups ------------------------------------------

# (institution, age band, age, sex, chronic, condition or None for the patient's own row, patients)
Group = tuple[str, str, int | None, str, bool, str | None, int]


def _population(conn: Connection, day: date, tz: ZoneInfo, enrolled_before: datetime,
                among: Select[Any] | None = None) -> list[Group]:
    """Active patients enrolled before `enrolled_before` (and among `among`), counted per birth
    date, sex, home institution and chronic flag, and per condition they have on `day`."""
    links = select(_links.c.patient_id, func.min(_links.c.institution_id).label("inst"),
                   func.count().label("n")).group_by(_links.c.patient_id)
    where = [_pat.c.status == "active", _pat.c.created_at < enrolled_before]
    if among is not None:
        links = links.where(_links.c.patient_id.in_(among))
        where.append(_pat.c.id.in_(among))
    lk = links.subquery()
    home = case((lk.c.n == 1, lk.c.inst), else_=None).label("home")
    patients = _pat.outerjoin(lk, lk.c.patient_id == _pat.c.id)
    chronic = exists().where(_conds.c.patient_id == _pat.c.id, cubes.condition_on(day, tz)).label("chronic")
    own = select(_pat.c.birth_date, _pat.c.sex, home, chronic).select_from(patients).where(*where).subquery()
    per_code = (select(_conds.c.code, _pat.c.birth_date, _pat.c.sex, home)
                .select_from(patients.join(_conds, _conds.c.patient_id == _pat.c.id))
                .where(*where, cubes.condition_on(day, tz)).subquery())
    stmts = (select(own.c.birth_date, own.c.sex, own.c.home, own.c.chronic, literal(None, String), func.count())
             .group_by(own.c.birth_date, own.c.sex, own.c.home, own.c.chronic),
             select(per_code.c.birth_date, per_code.c.sex, per_code.c.home, literal(True), per_code.c.code,
                    func.count()).group_by(per_code.c.code, per_code.c.birth_date, per_code.c.sex, per_code.c.home))
    only = cubes.only_institution(conn)
    return [(inst or only, dims.age_band(birth, day), dims.age_on(birth, day) if birth else None, sex or UNKNOWN,
             bool(is_chronic), code, int(n))
            for stmt in stmts for birth, sex, inst, is_chronic, code, n in conn.execute(stmt)]


def _spread_groups(cells: dict[Cell, list[int]], groups: Iterable[Group],
                   values: Callable[[Group], tuple[int, ...]]) -> None:
    """Population groups into the cube: a patient's own row counts once overall (and under
    `none` without a condition), a condition row under that condition."""
    for g in groups:
        inst, band, _age, _sex, chronic, code, _n = g
        if code is not None:
            CARE.spread(cells, inst, {"age_band": (band,), "condition": (code,)}, values(g), "condition")
            continue
        CARE.spread(cells, inst, {"age_band": (band,)}, values(g))
        if not chronic:
            CARE.spread(cells, inst, {"age_band": (band,), "condition": (NONE,)}, values(g), "condition")


def _stored_population(conn: Connection, day: date) -> dict[Cell, list[int]]:
    rest = [0] * (len(MEASURES) - len(POPULATION))
    stmt = select(_daily.c.institution_id, _daily.c.f_dim, _daily.c.f_key, _daily.c.b_dim, _daily.c.b_key,
                  *(_daily.c[m] for m in POPULATION)).where(_daily.c.day == day)
    return {(r[0], r[1], r[2], r[3], r[4]): [*(int(v) for v in r[5:]), *rest] for r in conn.execute(stmt)}


def _population_values(g: Group) -> tuple[int, ...]:
    _i, _b, age, sex, chronic, _c, n = g
    return (n, n if chronic else 0, n if eligible("elderly_checkup", age, sex) else 0,
            n if eligible("prenatal", age, sex) else 0, 0, 0, 0, 0)


def _cells(session: Session, day: date, tz: ZoneInfo, live: bool) -> dict[Cell, list[int]]:
    """One day's cube. Live (today) the population is yesterday's stored one when there is one,
    and today's readers are counted among the patients enrolled by yesterday's end."""
    conn = session.connection()
    lo, hi = day_bounds(day, tz)
    cells = _stored_population(conn, day - timedelta(days=1)) if live else {}
    enrolled_before = lo if cells else hi
    if not cells:
        _spread_groups(cells, _population(conn, day, tz, hi), _population_values)
    readers = (select(_readings.c.patient_id).join(_ev, _ev.c.id == _readings.c.event_id)
               .where(_readings.c.self_monitored.is_(True), _readings.c.local_day == day, _ev.c.status == "accepted"))
    _spread_groups(cells, _population(conn, day, tz, enrolled_before, readers),
                   lambda g: (0, 0, 0, 0, g[6], g[6] if g[4] else 0, 0, 0))
    where = (_steps.c.due_on == day, _steps.c.status.in_(("pending", "completed")))
    steps = conn.execute(select(_steps.c.patient_id, _steps.c.status).where(*where)).all()
    found = cubes.people(conn, day, tz, select(_steps.c.patient_id).where(*where)) if steps else {}
    for pid, status in steps:
        p = found.get(pid, cubes.NOBODY)
        CARE.spread(cells, p.home, {"age_band": (p.band,), "condition": p.conditions},
                    (0, 0, 0, 0, 0, 0, 1, int(status == "completed")))
    return cells


CARE = Cube(_daily, MEASURES, DIMS, _cells)


@rollup.rollup("care_daily", "day", _daily)
def compute_care(session: Session, day: date, tz: ZoneInfo) -> list[dict[str, Any]]:
    """The `analytics_care_daily` rows of one local day."""
    return CARE.rows(day, _cells(session, day, tz, False))


@rollup.rollup("public_health_daily", "day", _ph)
def compute_public_health(session: Session, day: date, tz: ZoneInfo) -> list[dict[str, Any]]:
    """The `analytics_public_health` rows of one local day."""
    conn = session.connection()
    lo, hi = day_bounds(day, tz)
    where = (_ev.c.occurred_at >= lo, _ev.c.occurred_at < hi, _ev.c.status == "accepted",
             _ev.c.type.in_(("public_health.completed", "staff.offline_entry")))
    done: set[tuple[str, str]] = set()
    for pid, type_, attrs in conn.execute(select(_ev.c.patient_id, _ev.c.type, _ev.c.attributes).where(*where)):
        a = attrs or {}
        if type_ == "staff.offline_entry":
            a = (a.get("attributes") or {}) if a.get("behaviour") == "public_health.completed" else {}
        if a.get("programme") in PROGRAMMES:
            done.add((pid, str(a["programme"])))
    found = cubes.people(conn, day, tz, select(_ev.c.patient_id).where(*where)) if done else {}
    return [{"day": day, "patient_id": pid, "programme": programme, "institution_id": p.home, "condition": cond,
             "age_band": p.band}
            for pid, programme in sorted(done) if (p := found.get(pid)) and eligible(programme, p.age(day), p.sex)
            for cond in (STAR, *p.conditions)]


for _programme in PROGRAMMES:
    cubes.FACTS[_programme] = Facts(_ph, compute_public_health, DIMS, {"programme": _programme})


# --- the care (health KPIs) view ------------------------------------------------------------

KPIS: tuple[KpiDef, ...] = (
    ("followups_due", "应完成随访", "Follow-ups due", "int"),
    ("followups_completed", "已完成随访", "Follow-ups completed", "int"),
    ("followup_completion", "随访完成率", "Follow-up completion", "pct"),
    ("checkin_days", "慢病患者打卡天数", "Check-in days (chronic)", "int"),
    ("enrolled_days", "慢病患者在册天数", "Enrolled days (chronic)", "int"),
    ("checkin_completeness", "打卡完整度(慢病患者)", "Check-in completeness (chronic)", "pct"),
    ("checkin_completeness_all", "打卡完整度(全部患者)", "Check-in completeness (all enrolled)", "pct"),
    ("vaccination_coverage", "疫苗接种覆盖率", "Vaccination coverage", "pct"),
    ("elderly_checkup_coverage", "老年人体检覆盖率", "Elderly checkup coverage", "pct"),
    ("prenatal_coverage", "孕产妇产前检查覆盖率", "Prenatal coverage", "pct"),
)
BY = ("institution", "age_band", "condition")
ELIGIBLE = {"vaccination": "enrolled", "elderly_checkup": "elderly", "prenatal": "women"}


def _kpis(m: dict[str, int], pop: dict[str, int], covered: dict[str, int | None]) -> dict[str, Any]:
    """`covered`: patients per programme, None when not counted for the range (`cubes.counts`)."""
    def coverage(p: str) -> float | None:
        n = covered.get(p, 0)
        return None if n is None else share(n, pop[ELIGIBLE[p]])

    return {"followups_due": m["followups_due"], "followups_completed": m["followups_done"],
            "followup_completion": share(m["followups_done"], m["followups_due"]),
            "checkin_days": m["chronic_readers"], "enrolled_days": m["chronic"],
            "checkin_completeness": share(m["chronic_readers"], m["chronic"]),
            "checkin_completeness_all": share(m["readers"], m["enrolled"]),
            **{f"{p}_coverage": coverage(p) for p in PROGRAMMES}}


EMPTY = _kpis(CARE.zero(), CARE.zero(), {})


def figures(session: Session, period: Period, today: date, scope: Scope, by: str | None) -> Figures:
    """The health KPIs of one period: follow-ups and check-in days summed over it, the eligible
    population at its end (today: live), covered patients distinct over it."""
    last = min(period.end, today)

    def per_key(b: str | None) -> dict[Any, dict[str, Any]]:
        sums = CARE.sums(session, period, today, scope, b)
        pop = CARE.sums(session, Period(last, last), today, scope, b)
        cov = {p: cubes.counts(session, p, period, today, scope, (b,) if b else ()) for p in PROGRAMMES}
        keys = set(sums) | set(pop) | {k for c in cov.values() for k in c or {}}
        return {k: _kpis(sums.get(k, CARE.zero()), pop.get(k, CARE.zero()),
                         {p: None if c is None else c.get(k, [0])[0] for p, c in cov.items()}) for k in keys}

    return (per_key(by) if by else {}), per_key(None).get(None, EMPTY)


@views.view("care", "健康管理指标", "Health KPIs", breakdowns=BY)
def care_view(session: Session, q: views.Query, now: datetime) -> Report:
    """Follow-up completion, check-in completeness and public-health coverage for the period with
    the previous period beside them (module docstring). Department, clinician and channel
    filters do not apply to health data: they are listed under `ignored_filters`."""
    scope, ignored = cubes.only_filters(Scope.of(q), DIMS)
    previous = q.period.previous()
    rows = cubes.kpi_rows(session, q.by, KPIS, figures(session, q.period, q.today, scope, q.by),
                          figures(session, previous, q.today, scope, q.by), EMPTY, "followups_due")
    charts: list[dict[str, Any]] = [
        {"type": "gauge", "title": {"zh": "随访完成率", "en": "Follow-up completion"}, "x": "name",
         "series": ["value_followup_completion"]},
        {"type": "bar", "title": {"zh": "公共卫生覆盖率", "en": "Public-health coverage"}, "x": "name",
         "series": [f"value_{p}_coverage" for p in PROGRAMMES]}]
    if q.by:
        charts.append({"type": "bar", "title": {"zh": "打卡完整度与随访完成率", "en": "Check-ins and follow-ups"},
                       "x": "name", "series": ["value_checkin_completeness", "value_followup_completion"]})
    return Report("care", "健康管理指标", "Health KPIs", cubes.columns(KPIS), rows, q.period, previous,
                  cubes.report_extra(session, charts, ignored, cubes.unanswered(q.period, q.today, scope, q.by)))


# --- the care list ----------------------------------------------------------------------------

KIND_NAMES = {"abnormal_reading": ("异常读数", "Abnormal reading"),
              "abnormal_answer": ("随访异常回答", "Abnormal answer"),
              "overdue_followup": ("随访逾期", "Overdue follow-up"), "inactivity": ("长期未打卡", "Inactive"),
              "critical_value": ("危急值", "Critical value")}
LIST_COLUMNS = [
    Column("alert_id", "提醒编号", "Alert", "text"), Column("patient_id", "患者编号", "Patient", "text"),
    Column("kind_name", "提醒类型", "Kind", "text"), Column("severity", "级别", "Severity", "text"),
    Column("status", "状态", "Status", "text"), Column("since", "提醒时间", "Since", "text"),
    Column("age_band", "年龄段", "Age band", "text"), Column("conditions", "慢病", "Conditions", "text"),
    Column("department_id", "最近就诊科室", "Last department", "text"),
    Column("last_reading_day", "最后打卡日", "Last reading day", "date"),
    Column("assigned_to", "负责人", "Assigned to", "text")]
LIST_FILTERS = ("department", "age_band", "condition")
DEPARTMENT_DAYS = 365  # a patient "of" a department: a (not cancelled) appointment there this recently
MAX_LIMIT, MAX_OFFSET = 200, 100_000


def _values(q: views.Query, name: str, allowed: Iterable[str], default: list[str]) -> list[str]:
    raw = q.params.get(name)
    if raw is None:
        return default
    got = [v.strip() for v in raw.split(",") if v.strip()]
    if not got or not set(got) <= set(allowed):
        raise BadParameterError(name=name)
    return got


def _number(q: views.Query, name: str, default: int, low: int, high: int) -> int:
    raw = q.params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise BadParameterError(name=name)
    return int(raw)


def _age_cutoff(today: date, years: int) -> date:
    """Aged ≥ `years` today ⇔ born before this day (the day after the birthday `years` ago)."""
    try:
        return date(today.year - years, today.month, today.day) + timedelta(days=1)
    except ValueError:  # 29 February in a year without one
        return date(today.year - years, 3, 1)


def _born_in(band: str, today: date) -> ColumnElement[bool]:
    """`patients.birth_date` of someone in the age band today."""
    birth = _pat.c.birth_date
    if band == UNKNOWN:
        return birth.is_(None)
    if band.startswith("<"):  # under 18: not yet 18
        return birth >= _age_cutoff(today, int(band[1:]))
    if band.endswith("+"):
        return birth < _age_cutoff(today, int(band[:-1]))
    lo, hi = (int(x) for x in band.split("-"))  # 18-29: at least 18, not yet 30
    return and_(birth < _age_cutoff(today, lo), birth >= _age_cutoff(today, hi + 1))


def _list_where(scope: Scope, today: date) -> list[ColumnElement[bool]]:
    a, f = _alerts.c, scope.filters
    where: list[ColumnElement[bool]] = []
    if scope.institutions is not None:
        where.append(exists().where(_links.c.patient_id == a.patient_id,
                                    _links.c.institution_id.in_(sorted(scope.institutions))))
    if "age_band" in f:
        where.append(_born_in(f["age_band"], today))
    if "condition" in f:
        active = [_conds.c.patient_id == a.patient_id, _conds.c.active.is_(True)]
        where.append(not_(exists().where(*active)) if f["condition"] == NONE
                     else exists().where(*active, _conds.c.code == f["condition"]))
    if "department" in f:
        since = today - timedelta(days=DEPARTMENT_DAYS)
        where.append(exists().where(_appt.c.patient_id == a.patient_id, _appt.c.day >= since,
                                    _appt.c.status != "cancelled", _sess.c.id == _appt.c.session_id,
                                    _sess.c.department_id == f["department"]))
    return where


def _page_details(conn: Connection, pids: list[str]) -> tuple[dict[str, list[str]], dict[str, str]]:
    """The page's patients' active conditions and the department of their latest appointment."""
    conds: dict[str, list[str]] = defaultdict(list)
    depts: dict[str, str] = {}
    if pids:
        for pid, code in conn.execute(select(_conds.c.patient_id, _conds.c.code).where(
                _conds.c.patient_id.in_(pids), _conds.c.active.is_(True)).order_by(_conds.c.code)):
            conds[pid].append(code)
        for pid, dept in conn.execute(select(_appt.c.patient_id, _sess.c.department_id)
                                      .join(_sess, _sess.c.id == _appt.c.session_id)
                                      .where(_appt.c.patient_id.in_(pids), _appt.c.status != "cancelled")
                                      .order_by(_appt.c.slot_start.desc())):
            depts.setdefault(pid, dept)
    return conds, depts


@views.view("care_list", "关怀名单", "Care list", params=("kind", "status", "limit", "cursor", "offset"),
            permission="care:read")
def care_list_view(session: Session, q: views.Query, now: datetime) -> Report:
    """The care team's list, live: care alerts (default: open and acknowledged; `kind`, `status`:
    comma-separated), newest first, narrowed by the institution, `department_id` (an appointment
    there within a year), `age_band` and `condition` (active now) filters; `limit` (≤ 200, default
    50) with `cursor` (the last alert id of the previous page) or `offset`. Ids and codes only."""
    scope, ignored = cubes.only_filters(Scope.of(q), LIST_FILTERS)
    kinds = _values(q, "kind", [k.value for k in AlertKind], [])
    statuses = _values(q, "status", [s.value for s in AlertStatus], ["open", "acknowledged"])
    limit, offset = _number(q, "limit", 50, 1, MAX_LIMIT), _number(q, "offset", 0, 0, MAX_OFFSET)
    conn, a = session.connection(), _alerts.c
    where = [a.status.in_(statuses), *([a.kind.in_(kinds)] if kinds else []), *_list_where(scope, q.today)]
    body = _alerts.join(_pat, _pat.c.id == a.patient_id)
    total = int(conn.execute(select(func.count()).select_from(body).where(*where)).scalar_one())
    cursor = q.params.get("cursor")
    if cursor is not None:
        if offset or not is_id(cursor):
            raise BadParameterError(name="cursor")
        at = conn.execute(select(a.created_at).where(a.id == cursor)).scalar()
        if at is None:
            raise BadParameterError(name="cursor")
        where.append(or_(a.created_at < at, and_(a.created_at == at, a.id < cursor)))
    found = conn.execute(select(a.id, a.patient_id, a.kind, a.severity, a.status, a.created_at, a.details,
                                a.assigned_to, _pat.c.birth_date).select_from(body).where(*where)
                         .order_by(a.created_at.desc(), a.id.desc()).offset(offset).limit(limit + 1)).all()
    page = found[:limit]
    conds, depts = _page_details(conn, sorted({r.patient_id for r in page}))
    rows = [{"alert_id": r.id, "patient_id": r.patient_id, "kind": r.kind,
             "kind_name": "{} / {}".format(*KIND_NAMES.get(r.kind, (r.kind, r.kind))), "severity": r.severity,
             "status": r.status, "since": r.created_at.isoformat(), "age_band": dims.age_band(r.birth_date, q.today),
             "conditions": ",".join(conds.get(r.patient_id, [])), "department_id": depts.get(r.patient_id),
             "last_reading_day": (r.details or {}).get("last_reading_day"), "assigned_to": r.assigned_to}
            for r in page]
    out: dict[str, Any] = {"total": total, "limit": limit, "offset": offset,
                           "next_cursor": page[-1].id if len(found) > limit else None}
    if ignored:
        out["ignored_filters"] = ignored
    return Report("care_list", "关怀名单", "Care list", LIST_COLUMNS, rows, None, None, out)
