"""The machinery the visit and care figures share (`analytics.visits`, `analytics.care`).

- **Cubes**: an additive figure's daily table holds one row per day × institution × (filter
  dimension, key) × (breakdown dimension, key), as `analytics_points_daily` does, so any range
  by any breakdown is one indexed SUM (`points.cut` picks the pair); today is computed live.
- **Facts**: rows of (day, patient, where) with a weight; their `condition` column holds `*`
  (the patient once) beside each of the patient's conditions (`none`), so sums per patient
  never count a patient twice. `distinct` counts patients with weight ≥ 1 and ≥ 2 over a period
  exactly. A closed range of up to 13 whole ISO weeks or 12 whole calendar months without
  filters is read from `analytics_visit_periods` (the week / month roll-ups store every such
  window ending with their week / month, for every registered fact measure); other ranges of up
  to `LIVE_DAYS` (92) days are counted live; longer ones are not answered (`answerable`).
- **People**: who the patients of a day are (age band, conditions, home institution) in three
  queries, whatever their number.
- **KPI reports**: the total row and one row per breakdown key, each KPI with the period's and
  the previous period's value (the row shape of the `points` view)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Date, Integer, String, Table, and_, case, func, literal, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.sql import ColumnElement, Select

from carepoints.analytics import dims, live, points, rollup
from carepoints.analytics.periods import Period
from carepoints.analytics.points import Scope
from carepoints.analytics.points_rollup import ALL, NONE, STAR, TOTAL, UNKNOWN, day_bounds
from carepoints.analytics.report import Column, Kind
from carepoints.config import get_settings
from carepoints.engagement.health.models import PatientCondition
from carepoints.kit.db import Base, table
from carepoints.patients.models import Patient, PatientInstitution
from carepoints.scheduling.models import Institution

Cell = tuple[str, str, str, str, str]  # institution, f_dim, f_key, b_dim, b_key
CellCompute = Callable[[Session, date, ZoneInfo, bool], dict[Cell, list[int]]]


class VisitPeriod(Base):
    """Distinct patients of a window of whole ISO weeks or calendar months ending with the week
    / month `period_start` (grain `week` / `month`, `span` of them: `SPANS`) for a fact measure
    (`visits`: `patients` with ≥ 1 attended visit, `repeat_patients` with ≥ 2; a public-health
    programme), per institution and alliance-wide (`*`), by one dimension (`total`: none)."""

    __tablename__ = "analytics_visit_periods"

    grain: Mapped[str] = mapped_column(String(8), primary_key=True)
    period_start: Mapped[date] = mapped_column(Date, primary_key=True)  # the window's last week / month
    span: Mapped[int] = mapped_column(Integer, primary_key=True)  # the window's length in weeks / months
    institution_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    measure: Mapped[str] = mapped_column(String(16), primary_key=True)
    dim: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    patients: Mapped[int] = mapped_column(Integer)
    repeat_patients: Mapped[int] = mapped_column(Integer)


_periods = table(VisitPeriod)
_inst, _pat, _links, _conds = table(Institution), table(Patient), table(PatientInstitution), table(PatientCondition)


def closed_part(period: Period, today: date) -> tuple[date, date] | None:
    """The rolled-up part of the period (the days before today), or None."""
    end = min(period.end, today - timedelta(days=1))
    return (period.start, end) if period.start <= end else None


def includes_today(period: Period, today: date) -> bool:
    return period.start <= today <= period.end


# --- cubes ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cube:
    """A cube table, its measures and dimensions, and how one day's cells are computed
    (`compute(session, day, tz, live)`; live = today, once per read session)."""

    table: Table
    measures: tuple[str, ...]
    dims: tuple[str, ...]
    compute: CellCompute

    def spread(self, cells: dict[Cell, list[int]], inst: str, keys: dict[str, tuple[str, ...]],
               values: Sequence[int], need: str | None = None) -> None:
        """Add one item to every (filter, breakdown) cell it belongs to. An item without a
        dimension's keys stays out of that dimension's cells; with `need`, it goes only into
        cells involving that dimension (an aggregate counted once overall, once per key there)."""
        for f in (ALL, *self.dims):
            if f != ALL and f not in keys:
                continue
            for fk in ("",) if f == ALL else keys[f]:
                for b in (TOTAL, *self.dims):
                    if b == f or (b != TOTAL and b not in keys) or (need and need not in (f, b)):
                        continue
                    for bk in ("",) if b == TOTAL else keys[b]:
                        acc = cells.setdefault((inst, f, fk, b, bk), [0] * len(self.measures))
                        for i, v in enumerate(values):
                            acc[i] += v

    def rows(self, day: date, cells: dict[Cell, list[int]]) -> list[dict[str, Any]]:
        return [{"day": day, "institution_id": k[0], "f_dim": k[1], "f_key": k[2], "b_dim": k[3], "b_key": k[4],
                 **dict(zip(self.measures, v, strict=True))} for k, v in cells.items()]

    def live(self, session: Session, today: date) -> dict[Cell, list[int]]:
        tz = get_settings().tz
        return live.shared(session, ("analytics.live", "cube", self.table.name, today, tz.key),
                           lambda: self.compute(session, today, tz, True))

    def zero(self) -> dict[str, int]:
        return dict.fromkeys(self.measures, 0)

    def sums(self, session: Session, period: Period, today: date, scope: Scope, by: str | None
             ) -> dict[Any, dict[str, int]]:
        """The measures over the period (today live) per breakdown key (None without `by`)."""
        c = points.cut(scope, by)
        out: dict[Any, dict[str, int]] = defaultdict(self.zero)
        t, closed = self.table, closed_part(period, today)
        if closed:
            keys = [t.c[c.group]] if c.group else []
            stmt = select(*keys, *(func.sum(t.c[m]) for m in self.measures)).where(
                t.c.day >= closed[0], t.c.day <= closed[1], t.c.f_dim == c.f_dim, t.c.f_key == c.f_key,
                t.c.b_dim == c.b_dim)
            if c.b_key is not None:
                stmt = stmt.where(t.c.b_key == c.b_key)
            if scope.institutions is not None:
                stmt = stmt.where(t.c.institution_id.in_(sorted(scope.institutions)))
            for row in session.connection().execute(stmt.group_by(*keys)):
                vals = row[len(keys):]
                out[row[0] if keys else None] = {m: int(v or 0) for m, v in zip(self.measures, vals, strict=True)}
        if includes_today(period, today):
            at = {"institution_id": 0, "b_key": 4}
            for cell, measures in self.live(session, today).items():
                inst, f, fk, b, bk = cell
                if (f, fk, b) != (c.f_dim, c.f_key, c.b_dim) or (c.b_key is not None and bk != c.b_key) or (
                        scope.institutions is not None and inst not in scope.institutions):
                    continue
                acc = out[cell[at[c.group]] if c.group else None]
                for m, v in zip(self.measures, measures, strict=True):
                    acc[m] += v
        return dict(out)


# --- people --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Person:
    birth: date | None
    sex: str
    band: str
    conditions: tuple[str, ...]
    home: str

    def age(self, day: date) -> int | None:
        return dims.age_on(self.birth, day) if self.birth else None


NOBODY = Person(None, UNKNOWN, UNKNOWN, (UNKNOWN,), UNKNOWN)


def condition_on(day: date, tz: ZoneInfo) -> ColumnElement[bool]:
    """A `patient_conditions` row counts on `day`: from `diagnosed_on`, else from when it was
    recorded, until it ended (the rule of `points_rollup.Resolver`, in SQL)."""
    lo, hi = day_bounds(day, tz)
    c = _conds.c
    since = or_(c.diagnosed_on <= day, and_(c.diagnosed_on.is_(None), or_(
        and_(c.active.is_(True), c.updated_at < hi), and_(c.active.is_(False), c.created_at < hi))))
    return and_(since, or_(c.ended_at.is_(None), c.ended_at >= lo))


def only_institution(conn: Connection) -> str:
    """The installation's only institution (where a patient's home is not known), else `unknown`."""
    ids = conn.execute(select(_inst.c.id).limit(2)).scalars().all()
    return ids[0] if len(ids) == 1 else UNKNOWN


def people(conn: Connection, day: date, tz: ZoneInfo, among: Select[Any]) -> dict[str, Person]:
    """Birth date, sex, age band, conditions (`none`) and home institution (the only linked one,
    else `only_institution`) on `day` of the patients `among` selects."""
    conds: dict[str, list[str]] = defaultdict(list)
    for pid, code in conn.execute(select(_conds.c.patient_id, _conds.c.code).where(
            _conds.c.patient_id.in_(among), condition_on(day, tz))):
        conds[pid].append(code)
    links: dict[str, list[str]] = defaultdict(list)
    for pid, inst in conn.execute(select(_links.c.patient_id, _links.c.institution_id).where(
            _links.c.patient_id.in_(among))):
        links[pid].append(inst)
    only = only_institution(conn)
    return {pid: Person(birth, sex or UNKNOWN, dims.age_band(birth, day), tuple(sorted(conds[pid])) or (NONE,),
                        links[pid][0] if len(links[pid]) == 1 else only)
            for pid, birth, sex in conn.execute(select(_pat.c.id, _pat.c.birth_date, _pat.c.sex).where(
                _pat.c.id.in_(among)))}


# --- facts and distinct patients -------------------------------------------------------------

FACT_COLUMN = {"institution": "institution_id", "department": "department_id", "clinician": "clinician_id",
               "age_band": "age_band", "condition": "condition", "channel": "channel"}


@dataclass(frozen=True, slots=True)
class Facts:
    """A fact table of (day, patient, where) rows with a weight (`visits`, else 1 a row), the
    dimensions it has and the rows of one measure (`where`)."""

    table: Table
    compute: Callable[[Session, date, ZoneInfo], list[dict[str, Any]]]
    dims: tuple[str, ...]
    where: dict[str, str] = field(default_factory=dict)

    def weight(self) -> ColumnElement[int]:
        return self.table.c.visits if "visits" in self.table.c else literal(1)

    def live(self, session: Session, today: date) -> list[dict[str, Any]]:
        tz = get_settings().tz
        return live.shared(session, ("analytics.live", "facts", self.table.name, today, tz.key),
                           lambda: self.compute(session, today, tz))


FACTS: dict[str, Facts] = {}  # measure -> its facts; `analytics_visit_periods` rolls up each


def _key(values: Sequence[Any]) -> Any:
    return tuple(values) if len(values) > 1 else (values[0] if values else None)


def _wanted(facts: Facts, scope: Scope, group: tuple[str, ...]) -> dict[str, str]:
    """{column: value} the rows must match; `condition` is `*` unless conditions are asked for
    (then `!*`: every condition row)."""
    want = {FACT_COLUMN[d]: v for d, v in scope.filters.items()} | facts.where
    if "condition" not in scope.filters:
        want["condition"] = "!*" if "condition" in group else STAR
    return want


def _where(facts: Facts, scope: Scope, group: tuple[str, ...]) -> tuple[dict[str, str], list[ColumnElement[bool]]]:
    t, want = facts.table, _wanted(facts, scope, group)
    where = [t.c[k] != STAR if v == "!*" else t.c[k] == v for k, v in want.items()]
    if scope.institutions is not None:
        where.append(t.c.institution_id.in_(sorted(scope.institutions)))
    return want, where


def windows(session: Session, facts: Facts, starts: Sequence[date], end: date, scope: Scope,
            group: tuple[str, ...] = ()) -> dict[Any, list[list[int]]]:
    """Per group key, [patients with weight ≥ 1, with ≥ 2] in each window `starts[i]`..`end`
    (closed days), in one pass over the facts of the longest window."""
    t = facts.table
    _want, where = _where(facts, scope, group)
    cols = [t.c[FACT_COLUMN[g]].label(f"g{i}") for i, g in enumerate(group)]
    sums = [func.sum(case((t.c.day >= d, facts.weight()), else_=0)).label(f"w{i}") for i, d in enumerate(starts)]
    inner = (select(*cols, t.c.patient_id, *sums).where(*where, t.c.day >= min(starts), t.c.day <= end)
             .group_by(*(t.c[FACT_COLUMN[g]] for g in group), t.c.patient_id).subquery())
    gcols = [inner.c[f"g{i}"] for i in range(len(group))]
    counted = [agg for i in range(len(starts)) for agg in (
        func.sum(case((inner.c[f"w{i}"] >= 1, 1), else_=0)), func.sum(case((inner.c[f"w{i}"] >= 2, 1), else_=0)))]
    out: dict[Any, list[list[int]]] = {}
    for row in session.connection().execute(select(*gcols, *counted).group_by(*gcols)):
        vals = [int(v or 0) for v in row[len(group):]]
        out[_key(row[:len(group)])] = [vals[2 * i:2 * i + 2] for i in range(len(starts))]
    return out


def distinct(session: Session, facts: Facts, period: Period, today: date, scope: Scope,
             group: tuple[str, ...] = ()) -> dict[Any, list[int]]:
    """[patients with weight ≥ 1, with ≥ 2] over the period per group key (a tuple for two
    dimensions, None for none), counted exactly from the facts; today live (its patients' visits
    before today read by patient)."""
    closed = closed_part(period, today)
    out = {k: v[0] for k, v in windows(session, facts, [closed[0]], closed[1], scope, group).items()
           if v[0][0]} if closed else {}
    if includes_today(period, today):
        t, (want, where) = facts.table, _where(facts, scope, group)
        live: Counter[tuple[Any, str]] = Counter()
        for r in facts.live(session, today):
            if (scope.institutions is None or r["institution_id"] in scope.institutions) and all(
                    r[k] != STAR if v == "!*" else r[k] == v for k, v in want.items()):
                live[(_key([r[FACT_COLUMN[g]] for g in group]), r["patient_id"])] += int(r.get("visits", 1))
        prior: Counter[tuple[Any, str]] = Counter()
        ids = sorted({pid for _k, pid in live}) if closed else []
        cols = [t.c[FACT_COLUMN[g]] for g in group]
        for i in range(0, len(ids), 1000):
            stmt = select(*cols, t.c.patient_id, facts.weight()).where(
                *where, t.c.patient_id.in_(ids[i:i + 1000]), t.c.day >= period.start, t.c.day < today)
            for row in session.connection().execute(stmt):
                prior[(_key(row[:len(group)]), row[-2])] += int(row[-1])
        for (key, pid), w in live.items():
            before, acc = prior[(key, pid)], out.setdefault(key, [0, 0])
            acc[0] += before == 0
            acc[1] += before < 2 <= before + w
    return out


# the windows `analytics_visit_periods` holds: ending at each closed week / month, this many long
SPANS: dict[str, range] = {"week": range(1, 14), "month": range(1, 13)}
LIVE_DAYS = 92  # other ranges up to this long are counted live; longer ones are not answered


def _back(grain: str, first: date, n: int) -> date:
    """The start of the `grain` `n` before the one starting `first`."""
    if grain == "week":
        return first - timedelta(days=7 * n)
    m0 = first.year * 12 + first.month - 1 - n
    return date(m0 // 12, m0 % 12 + 1, 1)


def stored_window(period: Period, today: date) -> tuple[str, date, int] | None:
    """(grain, start of its last week / month, span) of the stored window that is exactly this
    closed period, or None."""
    if period.end >= today:
        return None
    for grain, whole in (("week", period.whole_weeks()), ("month", period.whole_months())):
        if whole and len(whole) in SPANS[grain]:
            return grain, whole[-1], len(whole)
    return None


def answerable(period: Period, today: date, scope: Scope, group: tuple[str, ...] = ()) -> bool:
    """Whether distinct patients are counted for this query: a stored window (no filters) or a
    live count over at most `LIVE_DAYS` days."""
    stored = stored_window(period, today) is not None and not scope.filters and len(group) <= 1
    return stored or period.days <= LIVE_DAYS


def counts(session: Session, measure: str, period: Period, today: date, scope: Scope,
           group: tuple[str, ...] = ()) -> dict[Any, list[int]] | None:
    """`distinct` for a fact measure: a stored window of whole weeks (≤ 13) or months (≤ 12)
    without filters (one institution or all, or by institution) is read from
    `analytics_visit_periods`; another range of at most `LIVE_DAYS` days is counted live; a
    longer one answers None (a count over years of patient-days is not a dashboard query)."""
    window = stored_window(period, today) if not scope.filters and len(group) <= 1 else None
    one = scope.institutions is None or len(scope.institutions) == 1
    if window is None or not (one or group == ("institution",)):
        return distinct(session, FACTS[measure], period, today, scope, group) if period.days <= LIVE_DAYS else None
    p = _periods.c
    stmt = select(p.institution_id, p.key, p.patients, p.repeat_patients).where(
        p.grain == window[0], p.period_start == window[1], p.span == window[2], p.measure == measure)
    if group == ("institution",):
        stmt = stmt.where(p.dim == TOTAL, p.institution_id != STAR)
        if scope.institutions is not None:
            stmt = stmt.where(p.institution_id.in_(sorted(scope.institutions)))
    else:
        inst = STAR if scope.institutions is None else next(iter(scope.institutions))
        stmt = stmt.where(p.dim == (group[0] if group else TOTAL), p.institution_id == inst)
    return {(inst if group == ("institution",) else (key if group else None)): [int(n), int(r)]
            for inst, key, n, r in session.connection().execute(stmt)}


def _period_rows(grain: rollup.Grain) -> rollup.Compute:
    def compute(session: Session, first: date, _tz: ZoneInfo) -> list[dict[str, Any]]:
        """Every window ending with this week / month (`SPANS`), from the facts (rolled up before
        it: the job rolls days first), each dimension in one pass."""
        spans = list(SPANS[grain])
        starts, last = [_back(grain, first, n - 1) for n in spans], rollup.period_of(grain, first)[1]
        whole, rows = Scope(None, {}), []
        for measure, facts in FACTS.items():
            for dim in (TOTAL, *facts.dims):
                grp = () if dim == TOTAL else (dim,)
                cells = [((STAR, k), v) for k, v in windows(session, facts, starts, last, whole, grp).items()]
                cells += [((k, "") if not grp else k, v)
                          for k, v in windows(session, facts, starts, last, whole, ("institution", *grp)).items()]
                rows += [{"grain": grain, "period_start": first, "span": span, "institution_id": inst,
                          "measure": measure, "dim": dim, "key": key if key is not None else "", "patients": n,
                          "repeat_patients": r}
                         for (inst, key), per_span in cells for span, (n, r) in zip(spans, per_span, strict=True)
                         if n]
        return rows
    return compute


rollup.rollup("visit_periods_weekly", "week", _periods)(_period_rows("week"))
rollup.rollup("visit_periods_monthly", "month", _periods)(_period_rows("month"))


# --- KPI reports -----------------------------------------------------------------------------

KpiDef = tuple[str, str, str, Kind]
Figures = tuple[dict[Any, dict[str, Any]], dict[str, Any]]  # per breakdown key, total


def share(n: int, d: int) -> float | None:
    return round(n / d, 4) if d > 0 else None


def only_filters(scope: Scope, keep: Iterable[str]) -> tuple[Scope, list[str]]:
    """The scope narrowed to the filters a view's data has, and the query names of the rest."""
    kept = set(keep)
    ignored = [n for n, d in points.FILTER_OF.items() if d in scope.filters and d not in kept]
    return Scope(scope.institutions, {d: v for d, v in scope.filters.items() if d in kept}), ignored


def columns(kpis: Sequence[KpiDef]) -> list[Column]:
    return [Column("name", "分组", "Group", "text"),
            *(c for key, zh, en, kind in kpis for c in (Column(f"value_{key}", f"{zh}(本期)", f"{en} (period)", kind),
                                                       Column(f"previous_{key}", f"{zh}(上期)", f"{en} (previous)",
                                                              kind)))]


def kpi_rows(session: Session, by: str | None, kpis: Sequence[KpiDef], now: Figures, before: Figures,
             empty: dict[str, Any], weight: str) -> list[dict[str, Any]]:
    """The total row, then one row per breakdown key (in the dimension's natural order), each
    with the period's and the previous period's value of every KPI."""
    def row(key: Any, names: tuple[str, str], cur: dict[str, Any], prev: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"key": key, "name": points.label(*names), "name_zh": names[0], "name_en": names[1]}
        for k, *_ in kpis:
            out[f"value_{k}"], out[f"previous_{k}"] = cur.get(k), prev.get(k)
        return out

    rows = [row(None, ("合计", "Total") if by else ("全部", "All"), now[1], before[1])]
    if by:
        keys = set(now[0]) | set(before[0])
        found = points.names(session, by, keys)
        weights = {k: int(v.get(weight) or 0) for k, v in now[0].items()}
        rows += [row(k, found[k], now[0].get(k, empty), before[0].get(k, empty))
                 for k in points.order(by, keys, weights)]
    return rows


UNANSWERED = {"zh": f"超过{LIVE_DAYS}天的范围,去重患者数(就诊患者、复诊率、公卫覆盖率)仅按整周(最多13周)"
                      "或整月(最多12个月)且不带筛选条件提供",
              "en": f"Over more than {LIVE_DAYS} days, distinct patients (patients seen, return-visit rate, "
                    "public-health coverage) are given for whole weeks (up to 13) or months (up to 12) "
                    "without filters only"}


def report_extra(session: Session, charts: list[dict[str, Any]], ignored: list[str],
                 unanswered: bool = False) -> dict[str, Any]:
    """A report's extra JSON: chart hints, the last day rolled up, any filters not applied and,
    when distinct patients were not counted for the period or the previous one, why."""
    out: dict[str, Any] = {"charts": charts, "rolled_through": points.rolled_through(session)}
    if ignored:
        out["ignored_filters"] = ignored
    if unanswered:
        out["distinct_unanswered"] = UNANSWERED
    return out


def unanswered(q_period: Period, today: date, scope: Scope, by: str | None) -> bool:
    """Distinct patients are not counted for the period or its previous one (`answerable`)."""
    group = (by,) if by else ()
    return not all(answerable(p, today, scope, group) for p in (q_period, q_period.previous()))
