"""Points KPIs, the daily trend and the dashboard's headline cards, read from the points roll-ups
(`analytics.points_rollup`: what each entry counts as, where and how), today added live.

- `points`: active patients, points issued / penalised / redeemed / expired, redemption rate
  (redeemed / issued), outstanding liability in CNY at the period's end and budget used, each
  with the previous period beside it, in total and by any breakdown; filters and the caller's
  institutions narrow every figure (liability is the whole alliance's only);
- `trend`: per day, points issued, penalised, redeemed, expired and active patients;
- `headline(...)`: the same KPIs as cards.

Points outstanding at a day's end = Σ (issued − penalised − redeemed − expired + adjusted) up to
it: the sum of all wallet balances, debts netted (`ledger.outstanding_points` counts positive
balances only, so the two differ by what patients owe); liability = that × the point value in
force then.

Active patients are counted distinct over the range; a range of several whole calendar months
(else ISO weeks) answers the average per month (week) instead — `active_basis` says which, the
column says "月均 / monthly average" — because distinct counts of separate periods cannot be
added and an exact count over a year of a million patients' days is no dashboard query; so does
an arbitrary range longer than a quarter (`LIVE_DAYS`), over the months wholly inside it. A
single closed day, week or month is read from the stored counts, and so is a range whose closed
part is 6, 7, 29 or 30 days (`WINDOW_SPANS`, the rolling windows stored for every closed day):
the default "last 30 days" is the 29 days ending yesterday, stored, plus today's active
patients who were not among them, counted live (one index probe per patient of today); other
ranges count the stored patient-days. `additive_report` answers the view without active
patients (the additive KPIs alone). Participation is not split by rule or reward.

Today's entries and events are placed once per request (memoised on the read session) and only
the slice asked for is summed; views say up to which day the job has run (`rolled_through`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from carepoints.analytics import dims, live, rollup, views
from carepoints.analytics.errors import BadFilterError, TooManyFiltersError
from carepoints.analytics.models import RollupState
from carepoints.analytics.periods import Period
from carepoints.analytics.points_rollup import (
    ALL,
    FEE_OFFSET,
    FILTER_DIMS,
    MEASURES,
    NONE,
    PART_COLUMN,
    STAR,
    TOTAL,
    UNFILTERED,
    UNKNOWN,
    WINDOW_SPANS,
    ActiveDaily,
    ActivePeriod,
    ActiveWindow,
    Entry,
    Participation,
    PointsDaily,
    compute_participation,
    ledger_entries,
    select_in,
)
from carepoints.analytics.report import Column, Kind, Report
from carepoints.config import get_settings
from carepoints.engagement.health.schemas import CONDITION_NAMES, ConditionCode
from carepoints.events.models import Event
from carepoints.kit.db import table
from carepoints.kit.money import points_to_fen, to_fen
from carepoints.kit.time import day_start_utc
from carepoints.rewards.models import BudgetYear, Reward
from carepoints.rules.service import current_settings, programmes
from carepoints.scheduling.models import Clinician, Department, Institution

_daily, _part, _adaily, _aperiod = table(PointsDaily), table(Participation), table(ActiveDaily), table(ActivePeriod)
_awin = table(ActiveWindow)
_ev, _rewards = table(Event), table(Reward)
_inst, _dept, _clin = table(Institution), table(Department), table(Clinician)

# --- reading: filters, cuts, sums, distinct counts ------------------------------------------

FILTER_OF = {"institution_id": "institution", "department_id": "department", "clinician_id": "clinician",
             "age_band": "age_band", "condition": "condition", "channel": "channel"}
CONDITION_KEYS = (*(c.value for c in ConditionCode), NONE)


def filters_of(q: views.Query) -> dict[str, str]:
    """The query's filters as {dimension: value}, each value checked (422 otherwise)."""
    out: dict[str, str] = {}
    for name, value in q.filters.items():
        dim = FILTER_OF[name]
        allowed = {"age_band": dims.age_bands(), "channel": (*dims.CHANNELS, UNKNOWN), "condition": CONDITION_KEYS}
        if not (value in allowed[dim] if dim in allowed else 0 < len(value) <= 64) or (
                dim in UNFILTERED and value == UNKNOWN):
            raise BadFilterError(name=name)
        out[dim] = value
    return out


@dataclass(frozen=True, slots=True)
class Scope:
    """A query's slice: the institutions it covers (None = all, the caller's scope narrowed by
    an `institution_id` filter) and the other filters {dimension: value}."""

    institutions: frozenset[str] | None
    filters: dict[str, str]

    @classmethod
    def of(cls, q: views.Query) -> Scope:
        filters = filters_of(q)
        insts = q.institutions
        named = filters.pop("institution", None)
        if named is not None:
            insts = frozenset({named}) & insts if insts is not None else frozenset({named})
        return cls(insts, filters)

    @property
    def whole(self) -> bool:
        """The whole alliance, unfiltered: liability and the budget gauge are only shown for it."""
        return self.institutions is None and not self.filters


@dataclass(frozen=True, slots=True)
class Cut:
    """Where a slice's figures are in `analytics_points_daily`: one (filter, breakdown) pair, an
    optional breakdown key and what to group by (`b_key`, `institution_id` or nothing)."""

    f_dim: str
    f_key: str
    b_dim: str
    b_key: str | None
    group: str | None


def cut(scope: Scope, by: str | None) -> Cut:
    """The stored pair that answers `scope` broken down by `by` (`points_rollup`: one filter and
    one breakdown, or two filters without a breakdown); 422 when the slice needs more."""
    rest = dict(scope.filters)
    restrict = rest.pop(by, None) if by else None
    pairs = [(d, rest[d]) for d in FILTER_DIMS if d in rest]
    if by in (None, "institution"):
        group = "institution_id" if by else None
        if len(pairs) > 2:
            raise TooManyFiltersError()
        f = pairs[0] if pairs else (ALL, "")
        if len(pairs) == 2:
            return Cut(f[0], f[1], pairs[1][0], pairs[1][1], group)
        return Cut(f[0], f[1], TOTAL, None, group)
    if len(pairs) > 1:
        raise TooManyFiltersError()
    f = pairs[0] if pairs else (ALL, "")
    return Cut(f[0], f[1], by, restrict, "b_key")


def live_entries(session: Session, today: date) -> list[Entry]:
    """Today's placed ledger entries (`live.shared`: a view asks several times)."""
    tz = get_settings().tz
    return live.shared(session, ("analytics.live", "entries", today, tz.key),
                       lambda: ledger_entries(session, today, tz))


def live_participation(session: Session, today: date) -> list[dict[str, Any]]:
    """Today's patient-days (`live.shared`)."""
    tz = get_settings().tz
    return live.shared(session, ("analytics.live", "participation", today, tz.key),
                       lambda: compute_participation(session, today, tz))


def _live_sums(entries: Iterable[Entry], scope: Scope, c: Cut) -> Iterator[tuple[str | None, tuple[int, ...]]]:
    """(group, measures) of each of today's entries in the cut, as the stored rows would hold them."""
    for e in entries:
        if scope.institutions is not None and e.institution not in scope.institutions:
            continue
        if c.f_dim != ALL and c.f_key not in e.keys[c.f_dim]:
            continue
        bkeys = ("",) if c.b_dim == TOTAL else e.keys[c.b_dim]
        for bk in bkeys:
            if c.b_key is None or bk == c.b_key:
                yield (e.institution if c.group == "institution_id" else bk if c.group else None), e.measures


def _closed(period: Period, today: date) -> tuple[date, date] | None:
    """The part of the period that is rolled up (closed days), or None."""
    end = min(period.end, today - timedelta(days=1))
    return (period.start, end) if period.start <= end else None


Sums = dict[Any, list[int]]


def sums(session: Session, period: Period, today: date, scope: Scope, c: Cut, *, by_day: bool = False) -> Sums:
    """Additive measures for the period (today live), keyed by group (None without one), or
    by (day, group) with `by_day`."""
    out: Sums = defaultdict(lambda: [0] * len(MEASURES))
    closed = _closed(period, today)
    if closed:
        keys = ([_daily.c.day] if by_day else []) + ([_daily.c[c.group]] if c.group else [])
        stmt = select(*keys, *(func.sum(_daily.c[m]) for m in MEASURES)).where(
            _daily.c.day >= closed[0], _daily.c.day <= closed[1], _daily.c.f_dim == c.f_dim,
            _daily.c.f_key == c.f_key, _daily.c.b_dim == c.b_dim)
        if c.b_key is not None:
            stmt = stmt.where(_daily.c.b_key == c.b_key)
        if scope.institutions is not None:
            stmt = stmt.where(_daily.c.institution_id.in_(sorted(scope.institutions)))
        for row in session.connection().execute(stmt.group_by(*keys)):
            n = len(keys)
            key = tuple(row[:n]) if n == 2 else (row[0] if n else None)
            out[key] = [int(v or 0) for v in row[n:]]
    if period.start <= today <= period.end:
        for g, measures in _live_sums(live_entries(session, today), scope, c):
            acc = out[(today, g) if by_day and c.group else (today if by_day else g)]
            for i, m in enumerate(measures):
                acc[i] += m
    return dict(out)


def outstanding(session: Session, end: date, today: date) -> int:
    """Points outstanding (all wallets, debts netted) at the end of local day `end`."""
    closed = _closed(Period(date(1970, 1, 1), end), today)
    net = (_daily.c.issued - _daily.c.penalised - _daily.c.redeemed - _daily.c.expired + _daily.c.adjusted)
    total = 0
    if closed:
        total = int(session.connection().execute(select(func.coalesce(func.sum(net), 0)).where(
            _daily.c.f_dim == ALL, _daily.c.f_key == "", _daily.c.b_dim == TOTAL, _daily.c.day <= closed[1])).scalar()
            or 0)
    if end >= today:
        total += sum(m[0] - m[1] - m[2] - m[3] + m[4] for m in (e.measures for e in live_entries(session, today)))
    return total


def _stored(period: Period, today: date) -> tuple[Any, Any] | None:
    """The stored distinct counts that answer exactly this closed period: (table, condition)."""
    if period.end >= today:
        return None
    if period.days == 1:
        return _adaily, _adaily.c.day == period.start
    weeks, months = period.whole_weeks(), period.whole_months()
    if weeks and len(weeks) == 1:
        return _aperiod, and_(_aperiod.c.grain == "week", _aperiod.c.period_start == period.start)
    if months and len(months) == 1:
        return _aperiod, and_(_aperiod.c.grain == "month", _aperiod.c.period_start == period.start)
    return None


Basis = Literal["range", "week", "month"]
BASIS_NAMES: dict[str, tuple[str, str]] = {"range": ("", ""), "week": ("(周均)", " (weekly average)"),
                                           "month": ("(月均)", " (monthly average)")}


LIVE_DAYS = 92  # the longest range counted distinct over its patient-days (a quarter)


def basis(period: Period) -> tuple[Basis, list[Period]]:
    """How distinct patients are counted over a period: over the range itself, or, for a range of
    several whole calendar months (else ISO weeks), as the average per month (week) — the figure
    the weekly / monthly roll-ups hold (distinct counts of separate periods cannot be added). A
    range longer than `LIVE_DAYS` that is neither counts as the average of the calendar months
    wholly inside it: an exact count would scan every patient-day of it."""
    months = period.whole_months()
    if months and len(months) > 1:
        return "month", [Period(m, rollup.period_of("month", m)[1]) for m in months]
    weeks = period.whole_weeks()
    if weeks and len(weeks) > 1:
        return "week", [Period(w, w + timedelta(days=6)) for w in weeks]
    if period.days > LIVE_DAYS:
        first, last = rollup.period_of("month", period.start)
        m, inside = period.start if first == period.start else last + timedelta(days=1), []
        while (end := rollup.period_of("month", m)[1]) <= period.end:
            inside.append(Period(m, end))
            m = end + timedelta(days=1)
        return "month", inside
    return "range", [period]


def active(session: Session, period: Period, today: date, scope: Scope, group: tuple[str, ...] = ()
           ) -> dict[Any, float]:
    """Active patients in the period (see `basis`), by `group` (columns of the patient-days:
    day, institution, department, clinician, age_band, condition, channel; at most two), keyed
    by value (a tuple for two, None for none). Per day with `group=("day",)`."""
    units = [period] if "day" in group else basis(period)[1]
    counts = [distinct(session, u, today, scope, group) for u in units]
    if len(counts) == 1:
        return dict(counts[0])
    keys = set().union(*counts)
    return {k: round(sum(c.get(k, 0) for c in counts) / len(counts), 1) for k in keys}


def distinct(session: Session, period: Period, today: date, scope: Scope, group: tuple[str, ...] = ()
             ) -> dict[Any, int]:
    """Distinct active patients over the period. A single closed day, week or month with at most
    one filter (none with a group) over the whole alliance or one institution is read from the
    stored counts; everything else is an exact COUNT DISTINCT over the patient-days, today live."""
    slice_ok = len(scope.filters) <= (0 if group else 1) and "day" not in group and (
        scope.institutions is None or len(scope.institutions) == 1 or group == ("institution",))
    fast = _stored(period, today) if slice_ok else None
    if fast is not None:
        return _active_stored(session, fast, scope, group)
    win = _window(period, today) if slice_ok else None
    if win is not None:
        out = _active_stored(session, (_awin, and_(_awin.c.day == win[0], _awin.c.span == win[1])), scope, group)
        if win[2]:
            for key, n in _today_new(session, period, today, scope, group).items():
                out[key] = out.get(key, 0) + n
        return out
    return _active_live(session, period, today, scope, group)


def _window(period: Period, today: date) -> tuple[date, int, bool] | None:
    """(last day, span, today too) of the stored rolling window (`WINDOW_SPANS`) that is the
    period's closed part, or None: the last 30 (7) days up to today are the 29 (6) days ending
    yesterday, stored, with today's patients who were not among them added live."""
    closed = _closed(period, today)
    if closed is None or (closed[1] - closed[0]).days + 1 not in WINDOW_SPANS:
        return None
    return closed[1], (closed[1] - closed[0]).days + 1, period.end >= today


def _active_stored(session: Session, fast: tuple[Any, Any], scope: Scope, group: tuple[str, ...]) -> dict[Any, int]:
    t, when = fast
    if group == ("institution",):
        stmt = select(t.c.institution_id, t.c.patients).where(when, t.c.dim == TOTAL, t.c.institution_id != STAR)
        if scope.institutions is not None:
            stmt = stmt.where(t.c.institution_id.in_(sorted(scope.institutions)))
        return {r[0]: int(r[1]) for r in session.connection().execute(stmt)}
    inst = STAR if scope.institutions is None else next(iter(scope.institutions))
    dim = "band_channel" if group == ("age_band", "channel") else (group[0] if group else TOTAL)
    stmt = select(t.c.key, t.c.patients).where(when, t.c.institution_id == inst)
    if not group and scope.filters:
        (fdim, fkey), = scope.filters.items()
        stmt = stmt.where(t.c.dim == fdim, t.c.key == fkey)
    else:
        stmt = stmt.where(t.c.dim == dim)
    out: dict[Any, int] = {}
    for key, n in session.connection().execute(stmt):
        out[tuple(key.split("|", 1)) if dim == "band_channel" else (key if group else None)] = int(n)
    return out


def _match(row: dict[str, Any], scope: Scope) -> bool:
    if scope.institutions is not None and row["institution_id"] not in scope.institutions:
        return False
    return all(row[PART_COLUMN[d]] == v for d, v in scope.filters.items())


def _gkey(row: dict[str, Any] | Any, group: tuple[str, ...]) -> Any:
    vals = tuple(row[PART_COLUMN[g]] for g in group)
    return vals if len(vals) > 1 else (vals[0] if vals else None)


def _active_live(session: Session, period: Period, today: date, scope: Scope, group: tuple[str, ...]) -> dict[Any, int]:
    cols = [_part.c[PART_COLUMN[g]] for g in group]
    where = _part_where(scope)
    closed = _closed(period, today)
    out: dict[Any, int] = {}
    if closed:
        stmt = select(*cols, func.count(func.distinct(_part.c.patient_id))).where(
            *where, _part.c.day >= closed[0], _part.c.day <= closed[1]).group_by(*cols)
        for row in session.connection().execute(stmt):
            key = tuple(row[:len(cols)]) if len(cols) > 1 else (row[0] if cols else None)
            out[key] = int(row[-1])
    if period.start <= today <= period.end:
        for key, n in _today_new(session, period, today, scope, group).items():
            out[key] = out.get(key, 0) + n
    return out


def _part_where(scope: Scope) -> list[Any]:
    where = [_part.c[PART_COLUMN[d]] == v for d, v in scope.filters.items()]
    if scope.institutions is not None:
        where.append(_part.c.institution_id.in_(sorted(scope.institutions)))
    return where


def _today_new(session: Session, period: Period, today: date, scope: Scope, group: tuple[str, ...]) -> dict[Any, int]:
    """Per group key, today's active patients (live) who were not active in the period's closed
    days already: what today adds to the closed part's distinct count, exactly. Shared like
    today's other figures (`live.shared`): each of today's patients is one index probe."""
    tz = get_settings().tz
    key = ("analytics.live", "active_new", today, tz.key, period.start, scope.institutions,
           tuple(sorted(scope.filters.items())), group)
    return live.shared(session, key, lambda: _compute_today_new(session, period, today, scope, group))


def _compute_today_new(session: Session, period: Period, today: date, scope: Scope, group: tuple[str, ...]
                       ) -> dict[Any, int]:
    live_sets: dict[Any, set[str]] = defaultdict(set)
    for r in live_participation(session, today):
        if _match(r, scope):
            live_sets[_gkey(r, group)].add(r["patient_id"])
    closed = _closed(period, today)
    both: set[tuple[Any, str]] = set()
    if closed and "day" not in group and live_sets:  # who of today's patients counted already
        cols = [_part.c[PART_COLUMN[g]] for g in group]
        ids = sorted({p for pids in live_sets.values() for p in pids})
        stmt = select(*cols, _part.c.patient_id).distinct().where(
            *_part_where(scope), _part.c.day >= closed[0], _part.c.day <= closed[1])
        both = {(_gkey(r._mapping, group), r.patient_id) for r in select_in(
            session.connection(), stmt, _part.c.patient_id, ids)}
    return {key: sum(1 for p in pids if (key, p) not in both) for key, pids in live_sets.items()}


# --- labels -------------------------------------------------------------------------------

UNKNOWN_NAMES = ("未知", "Unknown")


def names(session: Session, dim: str, keys: Iterable[str]) -> dict[str, tuple[str, str]]:
    """(zh, en) of each key of a breakdown."""
    conn = session.connection()
    wanted = sorted({k for k in keys if k and k != UNKNOWN})
    found: dict[str, tuple[str, str]] = {}
    if dim == "institution":
        found = {r[0]: (r[1], r[2]) for r in select_in(conn, select(_inst.c.id, _inst.c.name_zh, _inst.c.name_en),
                                                 _inst.c.id, wanted)}
    elif dim == "department":
        found = {r[0]: (r[1], r[2]) for r in select_in(conn, select(_dept.c.id, _dept.c.name_zh, _dept.c.name_en),
                                                 _dept.c.id, wanted)}
    elif dim == "clinician":
        found = {r[0]: (r[1], r[1]) for r in select_in(conn, select(_clin.c.id, _clin.c.name), _clin.c.id, wanted)}
    elif dim == "rule":
        for version in programmes(session).versions:
            found.update({r.code: (r.names.zh, r.names.en) for r in version.programme.rules})
    elif dim == "reward":
        found = {r[0]: (r[1].get("zh", r[0]), r[1].get("en", r[0]))
                 for r in select_in(conn, select(_rewards.c.code, _rewards.c.names), _rewards.c.code, wanted)}
        found.setdefault(FEE_OFFSET, ("挂号费抵扣", "Fee offset"))
    elif dim == "age_band":
        found = {k: dims.band_names(k) for k in wanted}
    elif dim == "condition":
        found = {c.value: n for c, n in CONDITION_NAMES.items()} | {NONE: ("无慢病", "No chronic condition")}
    elif dim == "channel":
        found = dict(dims.CHANNEL_NAMES)
    return {k: found.get(k, (k, k)) if k != UNKNOWN else UNKNOWN_NAMES for k in keys}


def label(zh: str, en: str) -> str:
    return zh if zh == en else f"{zh} / {en}"


def order(dim: str, keys: Iterable[str], weight: dict[str, int]) -> list[str]:
    """Natural order of a breakdown's keys: bands, channels and conditions as listed,
    others by weight (points issued) descending; `unknown` last."""
    fixed = {"age_band": dims.age_bands(), "channel": [*dims.CHANNELS, UNKNOWN],
             "condition": [*CONDITION_KEYS, UNKNOWN]}.get(dim)
    ks = list(keys)
    if fixed is not None:
        return sorted(ks, key=lambda k: fixed.index(k) if k in fixed else len(fixed))
    return sorted(ks, key=lambda k: (k == UNKNOWN, -weight.get(k, 0), k))


def rolled_through(session: Session) -> str | None:
    return session.connection().execute(
        select(table(RollupState).c.value).where(table(RollupState).c.name == "rolled_through")).scalar()


# --- the points KPIs ------------------------------------------------------------------------

KPIS: tuple[tuple[str, str, str, Kind], ...] = (
    ("active", "活跃患者", "Active patients", "int"),
    ("issued", "发放积分", "Points issued", "int"),
    ("penalised", "扣减积分", "Points penalised", "int"),
    ("redeemed", "兑换积分", "Points redeemed", "int"),
    ("expired", "过期积分", "Points expired", "int"),
    ("redemption_rate", "兑换率", "Redemption rate", "pct"),
    ("liability_cny", "未兑换积分负债(元)", "Outstanding liability (CNY)", "cny"),
    ("budget_used_cny", "预算使用(元)", "Budget used (CNY)", "cny"),
)
ACTIVE_BY = ("institution", "department", "clinician", "age_band", "condition", "channel")


def _cny(fen: int) -> Decimal:
    return (Decimal(fen) / 100).quantize(Decimal("0.01"))


def _liability(session: Session, end: date, today: date) -> Decimal:
    value = current_settings(session, day_start_utc(end + timedelta(days=1), get_settings().tz)).programme.settings
    pts = outstanding(session, end, today)
    fen = points_to_fen(abs(pts), value.point_value.points, value.point_value.cny)
    return _cny(fen if pts >= 0 else -fen)


def _figures(session: Session, period: Period, today: date, scope: Scope, by: str | None, with_active: bool = True
             ) -> tuple[dict[Any, dict[str, Any]], dict[str, Any]]:
    """The KPIs of one period: per group (with `by`) and in total (active patients None without
    `with_active`: the additive figures alone)."""
    def kpis(m: list[int], act: float | None) -> dict[str, Any]:  # a group of one period only: zeros
        return {"active": act, "issued": m[0], "penalised": m[1], "redeemed": m[2], "expired": m[3],
                "redemption_rate": round(m[2] / m[0], 4) if m[0] > 0 else None, "liability_cny": None,
                "budget_used_cny": _cny(m[6])}

    zero = [0] * len(MEASURES)
    total_sums = sums(session, period, today, scope, cut(scope, None)).get(None, zero)
    total = kpis(total_sums, active(session, period, today, scope).get(None, 0) if with_active else None)
    if scope.whole:
        total["liability_cny"] = _liability(session, period.end, today)
    groups: dict[Any, dict[str, Any]] = {}
    if by:
        per = sums(session, period, today, scope, cut(scope, by))
        act = active(session, period, today, scope, (by,)) if by in ACTIVE_BY and with_active else None
        for key in set(per) | set(act or {}):
            groups[key] = kpis(per.get(key, zero), (act or {}).get(key, 0) if act is not None else None)
        groups[MISSING] = kpis(zero, 0 if act is not None else None)
    return groups, total


MISSING = object()  # `_figures` key: the figures of a group the period has no data for


def kpis_of(basis_: Basis) -> list[tuple[str, str, str, Kind]]:
    """The KPIs with their labels; active patients say when they are a weekly / monthly average."""
    zh, en = BASIS_NAMES[basis_]
    return [(k, z + zh, e + en, "num" if basis_ != "range" else kind) if k == "active" else (k, z, e, kind)
            for k, z, e, kind in KPIS]


def columns(basis_: Basis) -> list[Column]:
    return [Column("name", "分组", "Group", "text"),
            *(c for key, zh, en, kind in kpis_of(basis_)
              for c in (Column(f"value_{key}", f"{zh}(本期)", f"{en} (period)", kind),
                        Column(f"previous_{key}", f"{zh}(上期)", f"{en} (previous)", kind)))]


def _row(key: Any, names_: tuple[str, str], now: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
    row: dict[str, Any] = {"key": key, "name": label(*names_), "name_zh": names_[0], "name_en": names_[1]}
    for k, *_ in KPIS:
        row[f"value_{k}"] = now.get(k)
        row[f"previous_{k}"] = (before or {}).get(k)
    return row


def _budget_gauge(session: Session, now: datetime, year: int) -> dict[str, Any] | None:
    annual = current_settings(session, now).programme.settings.budget.annual_cny()
    if not annual:
        return None
    used = session.connection().execute(select(table(BudgetYear).c.used_fen).where(
        table(BudgetYear).c.year == year)).scalar() or 0
    return {"type": "gauge", "title": {"zh": f"{year}年预算使用", "en": f"Budget used in {year}"},
            "value": float(_cny(int(used))), "max": float(_cny(to_fen(annual)))}


def kpi_report(session: Session, q: views.Query, now: datetime, with_active: bool = True) -> Report:
    """The `points` report; without `with_active` active patients are left out (null, and
    `active_counted: false`): the additive KPIs alone, never waiting on a distinct count (what
    `bench/analytics.py` times apart for arbitrary ranges)."""
    scope = Scope.of(q)
    previous = q.period.previous()
    groups, total = _figures(session, q.period, q.today, scope, q.by, with_active)
    before, total_before = _figures(session, previous, q.today, scope, q.by, with_active)
    rows = [_row(None, ("合计", "Total") if q.by else ("全部", "All"), total, total_before)]
    charts: list[dict[str, Any]] = []
    if q.by:
        keys = (set(groups) | set(before)) - {MISSING}
        found = names(session, q.by, keys)
        rows += [_row(key, found[key], groups.get(key, groups[MISSING]), before.get(key, before[MISSING]))
                 for key in order(q.by, keys, {k: v["issued"] for k, v in groups.items() if k is not MISSING})]
        charts.append({"type": "bar", "title": {"zh": "积分发放与兑换", "en": "Points issued and redeemed"},
                       "x": "name", "series": ["value_issued", "value_redeemed", "value_penalised"]})
    gauge = _budget_gauge(session, now, q.period.end.year) if scope.whole else None
    if gauge:
        charts.append(gauge)
    basis_ = basis(q.period)[0]
    extra: dict[str, Any] = {"charts": charts, "rolled_through": rolled_through(session), "active_basis": basis_}
    if not with_active:
        extra["active_counted"] = False
    return Report("points", "积分概览", "Points KPIs", columns(basis_), rows, q.period, previous, extra)


def additive_report(session: Session, q: views.Query, now: datetime) -> Report:
    """The `points` view without active patients (`kpi_report(with_active=False)`)."""
    return kpi_report(session, q, now, with_active=False)


@views.view("points", "积分概览", "Points KPIs", breakdowns=dims.BREAKDOWNS)
def points_view(session: Session, q: views.Query, now: datetime) -> Report:
    """Points KPIs for the period with the previous period beside them (module docstring)."""
    return kpi_report(session, q, now)


def headline(session: Session, q: views.Query, now: datetime) -> list[dict[str, Any]]:
    """The dashboard's KPI cards: {key, zh, en, kind, value, previous} for the query's period
    (its breakdown is ignored)."""
    scope = Scope.of(q)
    _g, total = _figures(session, q.period, q.today, scope, None)
    _g, before = _figures(session, q.period.previous(), q.today, scope, None)
    return [{"key": k, "zh": zh, "en": en, "kind": kind, "value": total[k], "previous": before[k]}
            for k, zh, en, kind in kpis_of(basis(q.period)[0])]


# --- the daily trend ------------------------------------------------------------------------

TREND_COLUMNS = [Column("day", "日期", "Day", "date"), Column("issued", "发放积分", "Points issued"),
                 Column("penalised", "扣减积分", "Points penalised"), Column("redeemed", "兑换积分", "Points redeemed"),
                 Column("expired", "过期积分", "Points expired"), Column("active", "活跃患者", "Active patients")]


def _daily_active(session: Session, period: Period, today: date, scope: Scope) -> dict[date, float]:
    """Active patients per day: the stored daily counts for closed days when the slice is one
    they hold (≤ 1 filter, one institution or all), else the patient-days; today live."""
    one = scope.institutions is None or len(scope.institutions) == 1
    closed = _closed(period, today)
    if not (one and len(scope.filters) <= 1):
        return dict(active(session, period, today, scope, ("day",)))
    out: dict[date, float] = {}
    if closed:
        inst = STAR if scope.institutions is None else next(iter(scope.institutions))
        ((dim, key),) = scope.filters.items() if scope.filters else ((TOTAL, ""),)
        stmt = select(_adaily.c.day, _adaily.c.patients).where(
            _adaily.c.day >= closed[0], _adaily.c.day <= closed[1], _adaily.c.institution_id == inst,
            _adaily.c.dim == dim, _adaily.c.key == key)
        out = {r[0]: int(r[1]) for r in session.connection().execute(stmt)}
    if period.start <= today <= period.end:
        out[today] = active(session, Period(today, today), today, scope).get(None, 0)
    return out


@views.view("trend", "积分趋势", "Points trend")
def trend_view(session: Session, q: views.Query, now: datetime) -> Report:
    """Per day of the period: points issued, penalised, redeemed, expired and active patients."""
    scope = Scope.of(q)
    per_day = sums(session, q.period, q.today, scope, cut(scope, None), by_day=True)
    act = _daily_active(session, q.period, q.today, scope)
    rows = []
    for day in q.period.dates():
        m = per_day.get(day, [0] * len(MEASURES))
        rows.append({"day": day.isoformat(), "issued": m[0], "penalised": m[1], "redeemed": m[2], "expired": m[3],
                     "active": act.get(day, 0)})
    charts = [{"type": "line", "title": {"zh": "每日积分", "en": "Points per day"}, "x": "day",
               "series": ["issued", "penalised", "redeemed", "expired"]},
              {"type": "line", "title": {"zh": "每日活跃患者", "en": "Active patients per day"}, "x": "day",
               "series": ["active"]}]
    return Report("trend", "积分趋势", "Points trend", TREND_COLUMNS, rows, q.period, None,
                  {"charts": charts, "rolled_through": rolled_through(session)})
