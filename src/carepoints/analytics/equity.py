"""The equity view (数字鸿沟): participation and points per patient by age band and channel, so
admins see whether elderly patients are left behind and whether offline entry reaches them.

Per age band (one row each, then the total):

- enrolled: patients enrolled by the end of the period (not merged, still active; in the
  caller's institutions: linked to one of them), in their band on the period's last day;
- participants: patients active in the period (`points` module: at least one accepted
  behaviour event), in their band on the day they took part, overall and through each channel
  (a patient who took part both online and offline counts under both, once overall);
- participation rate = participants / enrolled, overall and per channel;
- points per enrolled patient = points issued in the period / enrolled; per participant =
  points issued / participants, overall and per channel (the channel of the entry's event).

Participants are distinct over the range, or the average per month / week for a range of
several whole months / weeks (`points.basis`). Filters narrow participants and points;
enrolment is narrowed by the institutions, the age band and the condition (patients with it at
the end of the period). An `age_band` or `channel`
filter keeps those bands / channels; of the other filters one applies."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import case, exists, func, or_, select
from sqlalchemy.orm import Session

from carepoints.analytics import dims, points, views
from carepoints.analytics.errors import TooManyFiltersError
from carepoints.analytics.points_rollup import ALL, NONE
from carepoints.analytics.report import Column, Kind, Report
from carepoints.config import get_settings
from carepoints.engagement.health.models import PatientCondition
from carepoints.kit.db import table
from carepoints.kit.time import day_start_utc
from carepoints.patients.models import Patient, PatientInstitution

_pat, _links, _conds = table(Patient), table(PatientInstitution), table(PatientCondition)
TOTAL_KEY = "total"


def _band_case(end: date) -> Any:
    """A patient's age band on `end`, in SQL: birth dates compared with date bounds (the same
    bands as `dims.age_band`, on either database)."""
    bounds = dims.age_bounds()
    labels = dims.age_bands()

    def born_before(age: int) -> date:  # age ≥ `age` on `end` ⇔ born on or before this day
        try:
            return end.replace(year=end.year - age)
        except ValueError:  # 29 February
            return end.replace(year=end.year - age, day=28)

    whens: list[tuple[Any, str]] = [(_pat.c.birth_date.is_(None), dims.UNKNOWN)]
    whens += [(_pat.c.birth_date <= born_before(lo), labels[len(bounds) - i])
              for i, lo in enumerate(reversed(bounds))]
    return case(*whens, else_=labels[0])


def enrolled(session: Session, end: date, scope: points.Scope) -> dict[str, int]:
    """Enrolled patients by age band at the end of local day `end` (module docstring)."""
    tz = get_settings().tz
    lo, hi = day_start_utc(end, tz), day_start_utc(end + timedelta(days=1), tz)
    band = _band_case(end).label("band")
    stmt = select(band, func.count()).where(_pat.c.created_at < hi, _pat.c.merged_into.is_(None),
                                            _pat.c.status == "active")
    if scope.institutions is not None:
        stmt = stmt.where(exists().where(_links.c.patient_id == _pat.c.id,
                                         _links.c.institution_id.in_(sorted(scope.institutions))))
    condition = scope.filters.get("condition")
    if condition is not None:  # held at the end of `end`: recorded (or diagnosed) by then, not ended before
        held = [_conds.c.patient_id == _pat.c.id, or_(_conds.c.diagnosed_on <= end, _conds.c.created_at < hi),
                or_(_conds.c.ended_at.is_(None), _conds.c.ended_at >= lo)]
        if condition == NONE:
            stmt = stmt.where(~exists().where(*held))
        else:
            stmt = stmt.where(exists().where(*held, _conds.c.code == condition))
    out = {str(b): int(n) for b, n in session.connection().execute(stmt.group_by(band))}
    wanted = scope.filters.get("age_band")
    return {b: n for b, n in out.items() if wanted is None or b == wanted}


def _cut(scope: points.Scope) -> tuple[points.Scope, points.Cut]:
    """The slice without the band and channel filters (applied to the keys) and its stored pair."""
    rest = {d: v for d, v in scope.filters.items() if d not in ("age_band", "channel")}
    if len(rest) > 1:
        raise TooManyFiltersError()
    ((f, fk),) = rest.items() if rest else ((ALL, ""),)
    return points.Scope(scope.institutions, rest), points.Cut(f, fk, "band_channel", None, "b_key")


def _rate(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def _per(pts: int, n: float) -> float | None:
    return round(pts / n, 2) if n else None


CH = dims.CHANNELS


def columns(basis: points.Basis) -> list[Column]:
    """The table's columns; participants say when they are a weekly / monthly average."""
    zh, en = points.BASIS_NAMES[basis]
    kind: Kind = "int" if basis == "range" else "num"
    names = {c: dims.CHANNEL_NAMES[c] for c in CH}
    return [
        Column("age_band", "年龄段", "Age band", "text"), Column("enrolled", "注册患者", "Enrolled"),
        Column("participants", "参与患者" + zh, "Participants" + en, kind),
        Column("participation_rate", "参与率", "Participation", "pct"),
        *(Column(f"participants_{c}", f"{names[c][0]}参与{zh}", f"Participants {names[c][1]}{en}", kind) for c in CH),
        *(Column(f"rate_{c}", f"{names[c][0]}参与率", f"Participation {names[c][1]}", "pct") for c in CH),
        Column("points", "发放积分", "Points issued"),
        Column("points_per_enrolled", "人均积分(注册)", "Points per enrolled", "num"),
        Column("points_per_participant", "人均积分(参与)", "Points per participant", "num"),
        *(Column(f"points_per_participant_{c}", f"{names[c][0]}人均积分", f"Points per participant {names[c][1]}",
                 "num") for c in CH),
    ]


def _row(band: str, name: str, enrolled_n: int, overall: float, by_channel: dict[str, float],
         pts: dict[str, int]) -> dict[str, Any]:
    total_pts = sum(pts.values())
    row: dict[str, Any] = {"key": band, "age_band": name, "enrolled": enrolled_n, "participants": overall,
                           "participation_rate": _rate(overall, enrolled_n), "points": total_pts,
                           "points_per_enrolled": _per(total_pts, enrolled_n),
                           "points_per_participant": _per(total_pts, overall)}
    for c in CH:
        row[f"participants_{c}"] = by_channel.get(c, 0)
        row[f"rate_{c}"] = _rate(by_channel.get(c, 0), enrolled_n)
        row[f"points_per_participant_{c}"] = _per(pts.get(c, 0), by_channel.get(c, 0))
    return row


@views.view("equity", "数字鸿沟", "Digital divide (equity)")
def equity_view(session: Session, q: views.Query, now: datetime) -> Report:
    """Participation and points per patient by age band and channel (module docstring)."""
    scope = points.Scope.of(q)
    narrowed, c = _cut(scope)
    wanted_band, wanted_channel = scope.filters.get("age_band"), scope.filters.get("channel")
    channels = [ch for ch in CH if wanted_channel in (None, ch)]
    bands = [b for b in dims.age_bands() if wanted_band in (None, b)]
    enrolled_by = enrolled(session, q.period.end, scope)
    # distinct participants overall (through the filtered channel, if any) and per channel
    through = points.Scope(scope.institutions, {**narrowed.filters, **({"channel": wanted_channel}
                                                                       if wanted_channel else {})})
    overall = points.active(session, q.period, q.today, through, ("age_band",))
    split = points.active(session, q.period, q.today, narrowed, ("age_band", "channel"))
    issued: dict[tuple[str, str], int] = {}
    for key, m in points.sums(session, q.period, q.today, narrowed, c).items():
        band, _sep, channel = str(key).partition("|")
        issued[(band, channel)] = m[0]
    rows = []
    for band in bands:
        by_channel = {ch: split.get((band, ch), 0) for ch in channels}
        pts = {ch: issued.get((band, ch), 0) for ch in channels}
        if band == dims.UNKNOWN and not (enrolled_by.get(band) or overall.get(band) or any(pts.values())):
            continue
        rows.append(_row(band, points.label(*dims.band_names(band)), enrolled_by.get(band, 0),
                         overall.get(band, 0), by_channel, pts))
    if wanted_band is not None:
        total_overall: float = overall.get(wanted_band, 0)
        total_split = {ch: split.get((wanted_band, ch), 0) for ch in CH}
    else:
        total_overall = points.active(session, q.period, q.today, through).get(None, 0)
        total_split = points.active(session, q.period, q.today, narrowed, ("channel",))
    rows.append(_row(TOTAL_KEY, "合计 / Total", sum(enrolled_by.values()), total_overall,
                     {ch: total_split.get(ch, 0) for ch in channels},
                     {ch: sum(v for (b, c2), v in issued.items() if c2 == ch and b in bands) for ch in channels}))
    charts = [
        {"type": "bar", "title": {"zh": "各年龄段参与率(按渠道)", "en": "Participation by age band and channel"},
         "x": "age_band", "series": [f"rate_{ch}" for ch in channels]},
        {"type": "bar", "title": {"zh": "各年龄段人均积分", "en": "Points per patient by age band"},
         "x": "age_band", "series": ["points_per_enrolled", "points_per_participant"]},
    ]
    basis = points.basis(q.period)[0]
    return Report("equity", "数字鸿沟", "Digital divide (equity)", columns(basis), rows, q.period, None,
                  {"charts": charts, "rolled_through": points.rolled_through(session), "active_basis": basis})
