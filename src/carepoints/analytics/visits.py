"""Visits: no-show rate, appointment rate (预约诊疗率), off-peak share, return-visit rate, the
average in-clinic wait and complaints (投诉) per 1,000 visits; the cost-benefit panel; the dashboard's
visit and care headline cards. (Health KPIs and the nurses' care list: `analytics.care`; the shared
machinery: `analytics.cubes`.)

What is counted (the hospital's local calendar):

- **Visits** are clinic appointments (`appointments` of a clinician's session; exams on a
  resource are not visits), on the local day of their slot, at the session's department and its
  institution, by the appointment's clinician, the patient's age band and chronic conditions on
  that day, and the booking channel: `online` for an online booking, `onsite` for one at the
  hospital and for a primary-care referral booking (made for the patient by the referring
  clinic; `points_rollup.channel_of` counts it so too). The status is the appointment's as of
  the roll-up (the job re-rolls the last `analytics_rerun_days` days, so the no-show sweep and
  HIS corrections land).
- **No-show rate** = no-shows / (attended + no-shows) of the period's slots; cancelled and still
  open bookings take no part.
- **Appointment rate** = attended visits booked before the visit's local day / attended visits.
  A booking made on the visit day (on-site registration, or online the same day) is not an
  appointment; a clinician's follow-up booking made at an earlier visit is.
- **Off-peak share** = attended visits whose slot starts in an off-peak window of the programme
  in force at the slot (`rules` settings `off_peak`) / attended visits.
- **Average in-clinic wait** (平均候诊时长) = the summed in-clinic waits / the called visits: a
  visit's wait is its first queue call (`queue_calls`, any status) − the check-in time the call
  recorded, in whole minutes (floored, never negative); visits never called take no part.
- **Complaints** (投诉, `complaints` of services.satisfaction) count on the local day they were filed,
  at their department and its institution, by the patient's age band and conditions that day, and —
  for a complaint about a visit — by that visit's clinician and booking channel (one about a
  department only is in no clinician or channel slice). **Complaints per 1,000 visits** = complaints
  × 1000 / attended visits of the same slice and period (two decimals; none without a visit).
- **Return-visit rate** = patients with ≥ 2 attended visits in the period / patients with ≥ 1
  (in a slice: by department, ≥ 2 visits at that department); over a calendar year, 年度复诊率.
- **Cost-benefit**: the programme's cost is the budget used (the CNY cost of redemptions and fee
  offsets, refunds deducted, as `points` counts it), beside the points redeemed at the point
  value; the benefit is no-shows avoided × `analytics_value_no_show_avoided` plus follow-ups
  completed × `analytics_value_followup_completed`; net = benefit − cost. No-shows avoided =
  (baseline no-show rate − the period's) × the period's attended + no-shows, floored at 0; the
  baseline is the previous period's rate, or the `baseline` parameter (e.g. the rate before the
  programme started).

Storage: `analytics_visits_daily` (a cube: any range by any breakdown is one indexed SUM) and
`analytics_visit_patients` (attended visits per patient-day and place, for the distinct patients;
windows of up to 13 whole weeks or 12 whole months stored in `analytics_visit_periods`, other
ranges of up to 92 days counted live, longer ones not answered: `cubes`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import Date, Index, Integer, String, func, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, Session, mapped_column

from carepoints.analytics import care, cubes, points, rollup, views
from carepoints.analytics.cubes import Cell, Cube, Facts, Figures, KpiDef, Person, share
from carepoints.analytics.errors import BadParameterError
from carepoints.analytics.periods import Period
from carepoints.analytics.points import Scope
from carepoints.analytics.points_rollup import MEASURES, STAR, UNKNOWN, channel_of, day_bounds
from carepoints.analytics.report import Column, Report
from carepoints.config import get_settings
from carepoints.kit.db import Base, table
from carepoints.kit.time import as_utc, day_start_utc, local_date
from carepoints.rules.engine import in_off_peak
from carepoints.rules.service import current_settings, programmes
from carepoints.scheduling.models import LIVE, Appointment, ClinicSession, Department
from carepoints.services.queue.models import QueueCall
from carepoints.services.satisfaction.models import Complaint


class VisitsDaily(Base):
    """Clinic appointments of one local day: one row per institution × (filter dimension, key) ×
    (breakdown dimension, key); `all`/`""` and `total`/`""` stand for none."""

    __tablename__ = "analytics_visits_daily"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    institution_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    f_dim: Mapped[str] = mapped_column(String(16), primary_key=True)
    f_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    b_dim: Mapped[str] = mapped_column(String(16), primary_key=True)
    b_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    attended: Mapped[int] = mapped_column(Integer)
    no_show: Mapped[int] = mapped_column(Integer)
    cancelled: Mapped[int] = mapped_column(Integer)
    open: Mapped[int] = mapped_column(Integer)  # booked or checked in: not yet attended or missed
    ahead: Mapped[int] = mapped_column(Integer)  # attended, booked before the visit day
    off_peak: Mapped[int] = mapped_column(Integer)  # attended, slot in an off-peak window
    # called visits (any status) and their summed in-clinic waits in whole minutes
    wait_minutes: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    waited: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    complaints: Mapped[int] = mapped_column(Integer, server_default=text("0"))  # filed that day

    __table_args__ = (Index("ix_analytics_visits_daily_cut", "f_dim", "f_key", "b_dim", "day"),)


class VisitPatients(Base):
    """Attended visits per patient, local day and place; `condition` is `*` (every patient once)
    or one of the patient's conditions that day (`none`)."""

    __tablename__ = "analytics_visit_patients"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    institution_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    department_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    clinician_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    condition: Mapped[str] = mapped_column(String(32), primary_key=True)
    age_band: Mapped[str] = mapped_column(String(16))
    visits: Mapped[int] = mapped_column(Integer)

    # today's patients' earlier visits (the live figure joins the rolled-up days)
    __table_args__ = (Index("ix_analytics_visit_patients_patient", "patient_id", "day"),)


_daily, _facts = table(VisitsDaily), table(VisitPatients)
_appt, _sess, _dept = table(Appointment), table(ClinicSession), table(Department)
_calls = table(QueueCall)
_complaints = table(Complaint)

MEASURES_ = ("attended", "no_show", "cancelled", "open", "ahead", "off_peak", "wait_minutes", "waited", "complaints")
DIMS = ("department", "clinician", "age_band", "condition", "channel")


# --- the day's appointments ----------------------------------------------------------------


class Visit(NamedTuple):
    patient_id: str
    status: str
    institution: str
    department: str
    clinician: str
    channel: str
    person: Person
    ahead: bool  # booked before the visit day
    off_peak: bool
    wait: int | None  # the in-clinic wait in whole minutes; None when never called


def _waits(conn: Connection, day: date) -> dict[str, int]:
    """The in-clinic wait of each called appointment of the day's clinic sessions: its first call
    − the check-in time that call recorded, in whole minutes, floored, never negative."""
    first: dict[str, tuple[datetime, datetime | None]] = {}
    for aid, called, checked in conn.execute(
            select(_calls.c.appointment_id, _calls.c.called_at, _calls.c.checked_in_at)
            .select_from(_calls.join(_sess, _sess.c.id == _calls.c.session_id))
            .where(_sess.c.day == day, _sess.c.resource_id.is_(None))):
        if aid not in first or as_utc(called) < first[aid][0]:
            first[aid] = (as_utc(called), None if checked is None else as_utc(checked))
    return {aid: max(0, (called - checked) // timedelta(minutes=1))
            for aid, (called, checked) in first.items() if checked is not None}


def _visits(session: Session, day: date, tz: ZoneInfo) -> list[Visit]:
    """The clinic appointments of one local day and their patients (once per session)."""
    key = ("analytics.visits", day)
    if key not in session.info:
        conn = session.connection()
        joined = _sess.join(_appt, _appt.c.session_id == _sess.c.id)
        where = (_sess.c.day == day, _sess.c.resource_id.is_(None))
        rows = conn.execute(
            select(_appt.c.id, _appt.c.patient_id, _appt.c.status, _appt.c.channel, _appt.c.booked_at,
                   _appt.c.slot_start, _sess.c.department_id, func.coalesce(_appt.c.clinician_id, _sess.c.clinician_id),
                   _dept.c.institution_id)
            .select_from(joined.join(_dept, _dept.c.id == _sess.c.department_id)).where(*where)).all()
        among = select(_appt.c.patient_id).select_from(joined).where(*where)
        found = cubes.people(conn, day, tz, among) if rows else {}
        pset = programmes(session)
        waits = _waits(conn, day) if rows else {}
        session.info[key] = [
            Visit(pid, status, inst, dept, clin or UNKNOWN, channel_of("appointment.booked", "", {}, channel),
                  found.get(pid, cubes.NOBODY), local_date(booked_at, tz) < day,
                  in_off_peak(slot_start, pset.at(slot_start).settings, tz), waits.get(aid))
            for aid, pid, status, channel, booked_at, slot_start, dept, clin, inst in rows]
    visits: list[Visit] = session.info[key]
    return visits


def _complaint_cells(session: Session, day: date, tz: ZoneInfo, cells: dict[Cell, list[int]]) -> None:
    """The complaints filed on one local day (module docstring), one count each."""
    conn = session.connection()
    lo, hi = day_bounds(day, tz)
    c = _complaints.c
    where = (c.created_at >= lo, c.created_at < hi)
    rows = conn.execute(
        select(c.patient_id, c.department_id, _dept.c.institution_id, _appt.c.id,
               func.coalesce(_appt.c.clinician_id, _sess.c.clinician_id), _appt.c.channel)
        .select_from(_complaints.join(_dept, _dept.c.id == c.department_id)
                     .outerjoin(_appt, _appt.c.id == c.appointment_id)
                     .outerjoin(_sess, _sess.c.id == _appt.c.session_id))
        .where(*where)).all()
    if not rows:
        return
    found = cubes.people(conn, day, tz, select(c.patient_id).where(*where))
    one = [0] * (len(MEASURES_) - 1) + [1]
    for pid, dept, inst, appt, clin, channel in rows:
        person = found.get(pid, cubes.NOBODY)
        keys: dict[str, tuple[str, ...]] = {"department": (dept,), "age_band": (person.band,),
                                            "condition": person.conditions}
        if appt is not None:
            keys["clinician"] = (clin or UNKNOWN,)
            keys["channel"] = (channel_of("appointment.booked", "", {}, channel),)
        VISITS.spread(cells, inst, keys, one)


def _cells(session: Session, day: date, tz: ZoneInfo, _live: bool) -> dict[Cell, list[int]]:
    cells: dict[Cell, list[int]] = {}
    for v in _visits(session, day, tz):
        attended = v.status == "attended"
        keys = {"department": (v.department,), "clinician": (v.clinician,), "age_band": (v.person.band,),
                "condition": v.person.conditions, "channel": (v.channel,)}
        VISITS.spread(cells, v.institution, keys, (
            int(attended), int(v.status == "no_show"), int(v.status == "cancelled"), int(v.status in LIVE),
            int(attended and v.ahead), int(attended and v.off_peak), v.wait or 0, int(v.wait is not None), 0))
    _complaint_cells(session, day, tz, cells)
    return cells


VISITS = Cube(_daily, MEASURES_, DIMS, _cells)


@rollup.rollup("visits_daily", "day", _daily)
def compute_visits(session: Session, day: date, tz: ZoneInfo) -> list[dict[str, Any]]:
    """The `analytics_visits_daily` rows of one local day."""
    return VISITS.rows(day, _cells(session, day, tz, False))


@rollup.rollup("visit_patients", "day", _facts)
def compute_visit_patients(session: Session, day: date, tz: ZoneInfo) -> list[dict[str, Any]]:
    """The `analytics_visit_patients` rows of one local day (attended visits)."""
    n: Counter[tuple[str, ...]] = Counter()
    for v in _visits(session, day, tz):
        if v.status == "attended":
            for cond in (STAR, *v.person.conditions):
                n[(v.patient_id, v.institution, v.department, v.clinician, v.channel, cond, v.person.band)] += 1
    return [{"day": day, "patient_id": k[0], "institution_id": k[1], "department_id": k[2], "clinician_id": k[3],
             "channel": k[4], "condition": k[5], "age_band": k[6], "visits": v} for k, v in n.items()]


cubes.FACTS["visits"] = Facts(_facts, compute_visit_patients, DIMS)


# --- the visits view ------------------------------------------------------------------------

KPIS: tuple[KpiDef, ...] = (
    ("attended", "就诊人次", "Visits attended", "int"),
    ("no_shows", "爽约人次", "No-shows", "int"),
    ("no_show_rate", "爽约率", "No-show rate", "pct"),
    ("appointment_rate", "预约诊疗率", "Appointment rate", "pct"),
    ("off_peak_share", "错峰就诊占比", "Off-peak share", "pct"),
    ("patients", "就诊患者", "Patients seen", "int"),
    ("return_visit_rate", "复诊率", "Return-visit rate", "pct"),
    ("avg_wait_minutes", "平均候诊时长(分钟)", "Average in-clinic wait (min)", "num"),
    ("complaints", "投诉", "Complaints", "int"),
    ("complaints_per_1000", "每千人次投诉", "Complaints per 1,000 visits", "num"),
)
BY = ("institution", "department", "clinician", "age_band", "condition", "channel")


def _kpis(m: dict[str, int], d: Sequence[int] | None) -> dict[str, Any]:
    """`d`: [patients, of whom returning], None when not counted for the range (`cubes.counts`)."""
    att, ns = m["attended"], m["no_show"]
    return {"attended": att, "no_shows": ns, "no_show_rate": share(ns, att + ns),
            "appointment_rate": share(m["ahead"], att), "off_peak_share": share(m["off_peak"], att),
            "patients": d[0] if d else None, "return_visit_rate": share(d[1], d[0]) if d else None,
            "avg_wait_minutes": round(m["wait_minutes"] / m["waited"], 1) if m["waited"] else None,
            "complaints": m["complaints"],
            "complaints_per_1000": round(m["complaints"] * 1000 / att, 2) if att else None}


EMPTY = _kpis(VISITS.zero(), (0, 0))


def figures(session: Session, period: Period, today: date, scope: Scope, by: str | None) -> Figures:
    """The visit KPIs of one period, per breakdown key and in total."""
    dist = cubes.counts(session, "visits", period, today, scope)
    total = _kpis(VISITS.sums(session, period, today, scope, None).get(None, VISITS.zero()),
                  None if dist is None else dist.get(None, [0, 0]))
    if not by:
        return {}, total
    per, dist = VISITS.sums(session, period, today, scope, by), cubes.counts(session, "visits", period, today,
                                                                            scope, (by,))
    return {k: _kpis(per.get(k, VISITS.zero()), None if dist is None else dist.get(k, [0, 0]))
            for k in set(per) | set(dist or {})}, total


@views.view("visits", "就诊指标", "Visit KPIs", breakdowns=BY)
def visits_view(session: Session, q: views.Query, now: datetime) -> Report:
    """No-show rate, appointment rate, off-peak share, return-visit rate and average in-clinic wait
    for the period with the previous period beside them (module docstring)."""
    scope, previous = Scope.of(q), q.period.previous()
    rows = cubes.kpi_rows(session, q.by, KPIS, figures(session, q.period, q.today, scope, q.by),
                          figures(session, previous, q.today, scope, q.by), EMPTY, "attended")
    charts: list[dict[str, Any]] = [{"type": "gauge", "title": {"zh": "爽约率", "en": "No-show rate"}, "x": "name",
                                     "series": ["value_no_show_rate"]}]
    if q.by:
        charts.append({"type": "bar", "title": {"zh": "就诊指标", "en": "Visit KPIs"}, "x": "name",
                       "series": ["value_no_show_rate", "value_appointment_rate", "value_off_peak_share",
                                  "value_return_visit_rate"]})
    return Report("visits", "就诊指标", "Visit KPIs", cubes.columns(KPIS), rows, q.period, previous,
                  cubes.report_extra(session, charts, [], cubes.unanswered(q.period, q.today, scope, q.by)))


# --- cost-benefit ----------------------------------------------------------------------------

CB_COLUMNS = [Column("name", "项目", "Item", "text"), Column("quantity", "数量(本期)", "Quantity (period)", "num"),
              Column("unit_cny", "单位价值(元)", "Unit value (CNY)", "cny"),
              Column("value_cny", "金额(本期,元)", "Value (period, CNY)", "cny"),
              Column("previous_quantity", "数量(上期)", "Quantity (previous)", "num"),
              Column("previous_value_cny", "金额(上期,元)", "Value (previous, CNY)", "cny")]
CENT, TENTH = Decimal("0.01"), Decimal("0.1")


def _baseline(q: views.Query) -> Decimal | None:
    raw = q.params.get("baseline")
    if raw is None:
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise BadParameterError(name="baseline") from None
    if not value.is_finite() or not 0 <= value <= 1:
        raise BadParameterError(name="baseline")
    return value


def _no_show_rate(session: Session, period: Period, today: date, scope: Scope) -> tuple[Decimal | None, int]:
    m = VISITS.sums(session, period, today, scope, None).get(None, VISITS.zero())
    slots = m["attended"] + m["no_show"]
    return (Decimal(m["no_show"]) / slots if slots else None), slots


def _panel(session: Session, period: Period, today: date, scope: Scope, baseline: Decimal | None
           ) -> dict[str, Any]:
    """One period's cost-benefit figures (module docstring)."""
    settings = get_settings()
    rate, slots = _no_show_rate(session, period, today, scope)
    base = baseline if baseline is not None else _no_show_rate(session, period.previous(), today, scope)[0]
    avoided = max(Decimal(0), (base - rate) * slots) if rate is not None and base is not None else Decimal(0)
    done = care.CARE.sums(session, period, today, scope, None).get(None, care.CARE.zero())["followups_done"]
    spent = points.sums(session, period, today, scope, points.cut(scope, None)).get(None, [0] * len(MEASURES))
    redeemed, cost_fen = spent[MEASURES.index("redeemed")], spent[MEASURES.index("budget_fen")]
    value = current_settings(session, day_start_utc(period.end, settings.tz)).settings.point_value
    unit_ns = Decimal(settings.analytics_value_no_show_avoided)
    unit_fu = Decimal(settings.analytics_value_followup_completed)
    cost = (Decimal(cost_fen) / 100).quantize(CENT)
    benefit = (avoided * unit_ns + done * unit_fu).quantize(CENT)
    return {"redeemed": redeemed, "redeemed_cny": (redeemed * value.cny / value.points).quantize(CENT),
            "cost": cost, "avoided": avoided.quantize(TENTH, ROUND_HALF_UP), "unit_ns": unit_ns,
            "avoided_cny": (avoided * unit_ns).quantize(CENT), "done": done, "unit_fu": unit_fu,
            "done_cny": (done * unit_fu).quantize(CENT), "benefit": benefit, "net": benefit - cost,
            "rate": None if rate is None else round(float(rate), 4),
            "baseline": None if base is None else round(float(base), 4)}


@views.view("cost_benefit", "成本效益", "Cost-benefit", params=("baseline",))
def cost_benefit_view(session: Session, q: views.Query, now: datetime) -> Report:
    """The programme's CNY cost in the period beside the value of the no-shows avoided and the
    follow-ups completed, and the net, with the previous period (module docstring). Only the
    institution filter applies; `baseline` (0–1) replaces the previous period's no-show rate."""
    scope, ignored = cubes.only_filters(Scope.of(q), ())
    baseline, previous = _baseline(q), q.period.previous()
    cur, prev = _panel(session, q.period, q.today, scope, baseline), _panel(session, previous, q.today, scope, baseline)

    def row(key: str, zh: str, en: str, qty: str | None, unit: str | None, value: str) -> dict[str, Any]:
        return {"key": key, "name": points.label(zh, en), "name_zh": zh, "name_en": en,
                "quantity": cur[qty] if qty else None, "unit_cny": cur[unit] if unit else None,
                "value_cny": cur[value], "previous_quantity": prev[qty] if qty else None,
                "previous_value_cny": prev[value]}

    rows = [row("cost", "积分兑换成本(预算使用)", "Programme cost (budget used)", "redeemed", None, "cost"),
            row("redeemed_value", "兑换积分面值", "Points redeemed at face value", "redeemed", None, "redeemed_cny"),
            row("no_shows_avoided", "减少的爽约", "No-shows avoided", "avoided", "unit_ns", "avoided_cny"),
            row("followups_completed", "完成的随访", "Follow-ups completed", "done", "unit_fu", "done_cny"),
            row("benefit", "效益合计", "Benefit", None, None, "benefit"),
            row("net", "净效益", "Net benefit", None, None, "net")]
    charts = [{"type": "bar", "title": {"zh": "成本与效益(元)", "en": "Cost and benefit (CNY)"}, "x": "name",
               "series": ["value_cny", "previous_value_cny"]}]
    out = cubes.report_extra(session, charts, ignored)
    out["no_show_rate"] = {"period": cur["rate"], "baseline": cur["baseline"], "previous": prev["rate"],
                           "previous_baseline": prev["baseline"],
                           "baseline_source": "parameter" if baseline is not None else "previous_period"}
    return Report("cost_benefit", "成本效益", "Cost-benefit", CB_COLUMNS, rows, q.period, previous, out)


# --- headline cards --------------------------------------------------------------------------

HEADLINE = (("no_show_rate", KPIS), ("appointment_rate", KPIS), ("off_peak_share", KPIS),
            ("return_visit_rate", KPIS), ("followup_completion", care.KPIS), ("checkin_completeness", care.KPIS))


def headline(session: Session, q: views.Query, now: datetime) -> list[dict[str, Any]]:
    """The dashboard's visit and care KPI cards: {key, zh, en, kind, value, previous} for the
    query's period (its breakdown is ignored)."""
    scope, previous = Scope.of(q), q.period.previous()
    care_scope, _ignored = cubes.only_filters(scope, care.DIMS)
    values = {id(KPIS): (figures(session, q.period, q.today, scope, None)[1],
                         figures(session, previous, q.today, scope, None)[1]),
              id(care.KPIS): (care.figures(session, q.period, q.today, care_scope, None)[1],
                              care.figures(session, previous, q.today, care_scope, None)[1])}
    cards = []
    for key, kpis in HEADLINE:
        _k, zh, en, kind = next(k for k in kpis if k[0] == key)
        cur, prev = values[id(kpis)]
        cards.append({"key": key, "zh": zh, "en": en, "kind": kind, "value": cur[key], "previous": prev[key]})
    return cards
