"""The points roll-ups: every ledger entry and every behaviour event of a local day placed
(institution, department, clinician, rule, reward, age band, conditions, channel) and stored so
that the `points` views answer any range with an indexed SUM (`analytics.points` reads them).

What each ledger entry counts as (flows on the day of the entry's `at`, never restated):

- issued = earnings − reversals of earnings; penalised = penalties − reversals of penalties (a
  revoked event nets out on the day it was revoked, under the same rule, department and channel);
- redeemed = redemptions (mall and cashier fee offsets) − refunds; expired = expiries (including
  the part of a refund that had expired meanwhile); adjusted = manual adjustments (signed);
- budget used = the CNY cost of redemptions (a reward's cost, a fee offset's amount) − refunds;
- entries = how many ledger entries; clearing moves (household pools, record merges) net to zero
  and are not counted.

Dimensions of an entry come from the event that produced it (`transfers.event_id`): its
institution (`attributes.institution` code or `institution_id`, else its department's, else its
appointment's), department and clinician (attributes or the appointment: `appointment_id` /
`exam_id`), the rule (`rule_code`), and the channel (`channel_of`). Without one (redemptions,
expiry, adjustments) the institution is where it was redeemed, else the patient's only linked
institution, else the installation's only institution, else `unknown`. A redemption's reward is
the mall item's code, `fee_offset` for the cashier. Age band and chronic conditions are the
patient's on that day (a condition counts from `diagnosed_on`, else from when it was recorded,
until it ended; a patient counts under each condition they have, `none` otherwise).

A patient-day = a patient with at least one accepted behaviour event (not revoked; enrolment and
critical lab values are no behaviour, as in the experiment results) that local day, once per
institution × department × clinician × channel × condition.

Tables (why the views are fast): `analytics_points_daily` holds one row per (day, institution,
filter dimension & key, breakdown dimension & key) — e.g. (2026-03-01, h1, age_band=70-79,
department=cardiology) — so any additive figure over any range, by any breakdown, narrowed by
the caller's institutions and one more filter (two without a breakdown), is one indexed SUM over
days × groups rows. Distinct patients cannot be summed: `analytics_participation` holds the
patient-days for exact COUNT DISTINCTs with any filter, and `analytics_active_daily` /
`analytics_active_periods` the distinct counts per day, ISO week and month (whole alliance `*`
and per institution, by each dimension and by age band × channel); `analytics_active_windows`
the same over the 6, 7, 29 and 30 days ending each closed day (the dashboard's default range).

The job must run (`jobs run rollup-analytics`, nightly): a closed day that was never rolled up
reads as zero; today is always computed live by the same functions. Late events re-roll their day
(the job re-rolls days with entries posted since its last run and the last `analytics_rerun_days`
days); `carepoints analytics rollup --day` re-rolls any day. Weeks and months are counted from
their stored patient-days, so they follow their days."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Date, Index, Integer, String, and_, case, func, literal, select, union_all
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, Session, mapped_column

from carepoints.analytics import dims, rollup
from carepoints.analytics.experiments import NOT_BEHAVIOUR
from carepoints.engagement.health.models import PatientCondition
from carepoints.events.models import Event
from carepoints.kit.db import Base, table
from carepoints.kit.time import day_start_utc, local_date
from carepoints.ledger.models import Account, Transfer
from carepoints.patients.models import Patient, PatientInstitution
from carepoints.rewards.models import FeeOffset, Redemption, Reward
from carepoints.scheduling.models import Appointment, Clinician, ClinicSession, Department, Institution

UNKNOWN = dims.UNKNOWN
ALL, TOTAL, NONE, STAR = "all", "total", "none", "*"
MEASURES = ("issued", "penalised", "redeemed", "expired", "adjusted", "entries", "budget_fen")
FILTER_DIMS = ("department", "clinician", "age_band", "condition", "channel")
SPLIT_DIMS = ("total", "department", "clinician", "rule", "reward", "age_band", "condition", "channel",
              "band_channel")
ACTIVE_DIMS = ("total", "department", "clinician", "age_band", "condition", "channel", "band_channel")
KINDS = ("earn", "penalty", "reversal", "redeem", "refund", "expiry", "adjust")
FEE_OFFSET = "fee_offset"
UNFILTERED = ("department", "clinician")  # dimensions whose `unknown` key is no filter


# --- tables -------------------------------------------------------------------------------


class PointsDaily(Base):
    """Additive ledger figures of one local day: one row per institution × (filter dimension,
    key) × (breakdown dimension, key); `all`/`""` and `total`/`""` stand for none."""

    __tablename__ = "analytics_points_daily"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    institution_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    f_dim: Mapped[str] = mapped_column(String(16), primary_key=True)
    f_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    b_dim: Mapped[str] = mapped_column(String(16), primary_key=True)
    b_key: Mapped[str] = mapped_column(String(96), primary_key=True)
    issued: Mapped[int] = mapped_column(Integer)
    penalised: Mapped[int] = mapped_column(Integer)
    redeemed: Mapped[int] = mapped_column(Integer)
    expired: Mapped[int] = mapped_column(Integer)
    adjusted: Mapped[int] = mapped_column(Integer)
    entries: Mapped[int] = mapped_column(Integer)
    budget_fen: Mapped[int] = mapped_column(Integer)

    # a cut's rows of a range, read from the index alone on PostgreSQL (the heap holds each day's
    # rows together, so a year by one breakdown would otherwise read a page per day and key)
    __table_args__ = (Index("ix_analytics_points_daily_cut", "f_dim", "f_key", "b_dim", "day",
                            postgresql_include=["institution_id", "b_key", *MEASURES]),)


class Participation(Base):
    """Patient-days: who took part on a local day, where (institution, department, clinician),
    how (channel), their age band that day and each condition they had (`none`)."""

    __tablename__ = "analytics_participation"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    institution_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    department_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    clinician_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    condition: Mapped[str] = mapped_column(String(32), primary_key=True)
    # the patient's band that day (given by day and patient): in the key so that every COUNT
    # DISTINCT with any filter reads the primary key's index alone
    age_band: Mapped[str] = mapped_column(String(16), primary_key=True)


class ActiveDaily(Base):
    """Distinct active patients of one local day, alliance-wide (`*`) and per institution."""

    __tablename__ = "analytics_active_daily"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    institution_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    dim: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(96), primary_key=True)
    patients: Mapped[int] = mapped_column(Integer)


class ActiveWindow(Base):
    """Distinct active patients of the `span` local days ending `day` (`WINDOW_SPANS`: a closed
    week or 30 days, and the closed part of the last 7 / 30 days up to today), alliance-wide
    (`*`) and per institution, by each dimension: the dashboard's default range reads one row."""

    __tablename__ = "analytics_active_windows"

    day: Mapped[date] = mapped_column(Date, primary_key=True)  # the window's last day
    span: Mapped[int] = mapped_column(Integer, primary_key=True)
    institution_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    dim: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(96), primary_key=True)
    patients: Mapped[int] = mapped_column(Integer)


class ActivePeriod(Base):
    """Distinct active patients of one ISO week or calendar month (grain `week` / `month`)."""

    __tablename__ = "analytics_active_periods"

    grain: Mapped[str] = mapped_column(String(8), primary_key=True)
    period_start: Mapped[date] = mapped_column(Date, primary_key=True)
    institution_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    dim: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(96), primary_key=True)
    patients: Mapped[int] = mapped_column(Integer)


_daily, _part, _adaily, _aperiod = table(PointsDaily), table(Participation), table(ActiveDaily), table(ActivePeriod)
_awin = table(ActiveWindow)
_tr, _acc, _ev = table(Transfer), table(Account), table(Event)
_red, _fee, _rewards = table(Redemption), table(FeeOffset), table(Reward)
_pat, _links, _conds = table(Patient), table(PatientInstitution), table(PatientCondition)
_inst, _dept, _clin = table(Institution), table(Department), table(Clinician)
_appt, _sess = table(Appointment), table(ClinicSession)

# analytics' read paths on two other domains' tables (this area's migration creates them): a
# day's ledger entries by `at`, a day's events by `occurred_at`
Index("ix_transfers_at", _tr.c.at)
Index("ix_events_occurred_at", _ev.c.occurred_at)
# who of today's patients were active in a window already (a probe per patient, not a scan)
Index("ix_analytics_participation_patient", _part.c.patient_id, _part.c.day)


# --- where and how a behaviour happened -----------------------------------------------------

ONSITE_TYPES = frozenset({"appointment.checked_in", "appointment.attended", "appointment.no_show", "exam.attended",
                          "selfservice.used", "lecture.attended", "referral.visit", "public_health.completed",
                          "conduct.violation", "lab.critical_value"})
ONSITE_REGISTRATION = frozenset({"desk", "kiosk", "onsite", "window", "his"})


def channel_of(type_: str, source: str, attrs: dict[str, Any], appointment_channel: str | None) -> str:
    """How a behaviour reached carepoints (`dims.CHANNELS`):

    - offline: `staff.offline_entry` (a paper sheet typed in at the service window) and phone
      follow-ups (a nurse records the answers for the patient);
    - on-site: what happens at the hospital — check-in, attendance, no-show, exams, kiosks,
      lectures, referral visits, public-health items, clinic readings, misconduct, critical lab
      values, anything a staff member sent (`staff:` sources), registration at the desk, and an
      appointment booked or cancelled on-site (the appointment's channel; a referral booking
      counts on-site);
    - online: everything the patient does themselves in the app / web (bookings, readings from
      home or devices, medication, education, reviews, surveys, photos, posts, invites).
    Entries without an event: a mall redemption is online when the patient (or their proxy)
    redeemed, on-site when staff or a hospital system did; a cashier fee offset is on-site;
    expiry and adjustments have none (`unknown`)."""
    if type_ == "staff.offline_entry" or (type_ == "followup.completed" and attrs.get("channel") == "phone"):
        return "offline"
    if type_ in ("appointment.booked", "appointment.cancelled") and appointment_channel:
        return "online" if appointment_channel == "online" else "onsite"
    if type_ in ONSITE_TYPES or source.startswith("staff:"):
        return "onsite"
    if type_ == "health.measurement":
        return "onsite" if attrs.get("provenance") == "clinic" else "online"
    if type_ == "account.registered":
        return "onsite" if attrs.get("channel") in ONSITE_REGISTRATION else "online"
    return "online"


@dataclass(frozen=True, slots=True)
class Where:
    institution: str
    department: str
    clinician: str
    channel: str


@dataclass(frozen=True, slots=True)
class Person:
    band: str
    conditions: tuple[str, ...]


def _chunks(items: Sequence[str], size: int = 5000) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield list(items[i:i + size])


def select_in(conn: Connection, stmt: Any, column: Any, ids: Iterable[str]) -> list[Any]:
    """`stmt` WHERE `column` IN ids, in chunks (SQLite's parameter limit)."""
    out: list[Any] = []
    for part in _chunks(sorted({i for i in ids if i})):
        out.extend(conn.execute(stmt.where(column.in_(part))).all())
    return out


class Resolver:
    """The reference data one day's facts need, each in one query: the alliance's places, the
    patients named (`patients`: a subquery of their ids) and the appointments named."""

    def __init__(self, conn: Connection, day: date, tz: ZoneInfo, patients: Any) -> None:
        self.conn, self.day, self.tz = conn, day, tz
        rows = conn.execute(select(_inst.c.id, _inst.c.code)).all()
        self.inst_by_code = {r.code: r.id for r in rows}
        self.inst_ids = set(self.inst_by_code.values())
        self.only_inst = next(iter(self.inst_ids)) if len(self.inst_ids) == 1 else UNKNOWN
        self.dept_inst = {r.id: r.institution_id for r in conn.execute(select(_dept.c.id, _dept.c.institution_id))}
        self.clin_dept = {r.id: r.department_id for r in conn.execute(select(_clin.c.id, _clin.c.department_id))}
        self.appts: dict[str, tuple[str, str | None, str]] = {}
        births = {r[0]: r[1] for r in conn.execute(select(_pat.c.id, _pat.c.birth_date).where(_pat.c.id.in_(patients)))}
        conds: dict[str, list[str]] = defaultdict(list)
        for pid, code, diagnosed, active, created, updated, ended in conn.execute(select(
                _conds.c.patient_id, _conds.c.code, _conds.c.diagnosed_on, _conds.c.active, _conds.c.created_at,
                _conds.c.updated_at, _conds.c.ended_at).where(_conds.c.patient_id.in_(patients))):
            since = diagnosed or local_date(updated if active else created, tz)
            if since <= day and (ended is None or local_date(ended, tz) >= day):
                conds[pid].append(code)
        links: dict[str, set[str]] = defaultdict(set)
        for pid, inst in conn.execute(select(_links.c.patient_id, _links.c.institution_id).where(
                _links.c.patient_id.in_(patients))):
            links[pid].add(inst)
        bands: dict[date | None, str] = {}  # many patients share a birth date: band each date once
        for birth in births.values():
            if birth not in bands:
                bands[birth] = dims.age_band(birth, day)
        self.people = {pid: Person(bands[birth], tuple(sorted(conds[pid])) or (NONE,))
                       for pid, birth in births.items()}
        self.home = {pid: next(iter(insts)) for pid, insts in links.items() if len(insts) == 1}

    def load_appointments(self, attrs: Iterable[dict[str, Any]]) -> None:
        ids = {str(a.get(k)) for a in attrs for k in ("appointment_id", "exam_id") if a.get(k)}
        inner = {str(i[k]) for a in attrs if isinstance(i := a.get("attributes"), dict)
                 for k in ("appointment_id", "exam_id") if i.get(k)}
        stmt = (select(_appt.c.id, _sess.c.department_id, func.coalesce(_appt.c.clinician_id, _sess.c.clinician_id),
                       _appt.c.channel).select_from(_appt.join(_sess, _sess.c.id == _appt.c.session_id)))
        self.appts.update({r[0]: (r[1], r[2], r[3]) for r in select_in(self.conn, stmt, _appt.c.id, ids | inner)})

    def person(self, pid: str | None) -> Person:
        return self.people.get(pid or "", Person(UNKNOWN, (UNKNOWN,)))

    def institution(self, pid: str | None, named: str | None = None) -> str:
        """An institution id named by an entry (if known), else the patient's home (see module)."""
        if named and named in self.inst_ids:
            return named
        return self.home.get(pid or "", self.only_inst)

    def where(self, type_: str, source: str, attrs: dict[str, Any], pid: str | None) -> Where:
        """Where and how an event happened (`staff.offline_entry`: its behaviour's attributes)."""
        inner = attrs.get("attributes") if type_ == "staff.offline_entry" else None
        a = {**inner, **attrs} if isinstance(inner, dict) else attrs
        appt = self.appts.get(str(a.get("appointment_id") or a.get("exam_id") or ""))
        dept = str(a["department"]) if str(a.get("department")) in self.dept_inst else (appt[0] if appt else None)
        clin = str(a["clinician"]) if str(a.get("clinician")) in self.clin_dept else (appt[1] if appt else None)
        if dept is None and clin is not None:
            dept = self.clin_dept.get(clin)
        named = self.inst_by_code.get(str(a.get("institution"))) or a.get("institution_id")
        inst = self.institution(pid, str(named) if named else (self.dept_inst.get(dept) if dept else None))
        channel = channel_of(type_, source, attrs, appt[2] if appt else None)
        return Where(inst, dept or UNKNOWN, clin or UNKNOWN, channel)


# --- the daily ledger roll-up ---------------------------------------------------------------


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    return day_start_utc(day, tz), day_start_utc(day + timedelta(days=1), tz)


def _measures(kind: str, amount: int, into_wallet: bool, cost: int) -> tuple[int, ...]:
    """(issued, penalised, redeemed, expired, adjusted, entries, budget_fen) of one entry."""
    sign = 1 if into_wallet else -1
    if kind == "earn":
        return amount, 0, 0, 0, 0, 1, 0
    if kind == "penalty":
        return 0, amount, 0, 0, 0, 1, 0
    if kind == "reversal":  # out of the wallet: an earning reversed; into it: a penalty reversed
        return (-amount, 0, 0, 0, 0, 1, 0) if not into_wallet else (0, -amount, 0, 0, 0, 1, 0)
    if kind == "redeem":
        return 0, 0, amount, 0, 0, 1, cost
    if kind == "refund":
        return 0, 0, -amount, 0, 0, 1, -cost
    if kind == "expiry":
        return 0, 0, 0, amount, 0, 1, 0
    return 0, 0, 0, 0, sign * amount, 1, 0  # adjust


def _spends(conn: Connection, redemption_ids: set[str], hold_ids: set[str]
            ) -> tuple[dict[str, tuple[str, int, str, str | None]], dict[str, tuple[int, str | None]]]:
    """Redemptions by id: (reward code, cost fen, channel, institution); fee offsets by hold id."""
    codes = {r[0]: r[1] for r in conn.execute(select(_rewards.c.id, _rewards.c.code))} if redemption_ids else {}
    stmt = select(_red.c.id, _red.c.reward_id, _red.c.cost_fen, _red.c.actor_kind, _red.c.institution_id)
    mall = {r[0]: (codes.get(r[1], UNKNOWN), int(r[2]), "online" if r[3] == "patient" else "onsite", r[4])
            for r in select_in(conn, stmt, _red.c.id, redemption_ids)}
    stmt = select(_fee.c.hold_id, _fee.c.offset_fen, _fee.c.institution_id)
    cashier = {r[0]: (int(r[1]), r[2]) for r in select_in(conn, stmt, _fee.c.hold_id, hold_ids)}
    return mall, cashier


def _add(cells: dict[tuple[str, ...], list[int]], key: tuple[str, ...], measures: tuple[int, ...]) -> None:
    acc = cells.get(key)
    if acc is None:
        cells[key] = list(measures)
    else:
        for i, m in enumerate(measures):
            acc[i] += m


def _spread(cells: dict[tuple[str, ...], list[int]], inst: str, keys: dict[str, tuple[str, ...]],
            measures: tuple[int, ...]) -> None:
    """Add one entry to every (filter, breakdown) cell it belongs to (no filter on an unknown
    department or clinician: most entries have none, and it is nothing to filter by)."""
    for f in (ALL, *FILTER_DIMS):
        for fk in ("",) if f == ALL else keys[f]:
            if fk == UNKNOWN and f in UNFILTERED:
                continue
            for b in SPLIT_DIMS:
                if b != f:
                    for bk in ("",) if b == TOTAL else keys[b]:
                        _add(cells, (inst, f, fk, b, bk), measures)


@dataclass(frozen=True, slots=True)
class Entry:
    """One ledger entry, placed: its institution, its key(s) in every breakdown, its measures."""

    institution: str
    keys: dict[str, tuple[str, ...]]
    measures: tuple[int, ...]


def ledger_entries(session: Session, day: date, tz: ZoneInfo) -> list[Entry]:
    """Every counted ledger entry of one local day, placed (module docstring)."""
    conn = session.connection()
    lo, hi = day_bounds(day, tz)
    spend = _tr.alias("spend")
    by_event = _tr.c.kind.in_(("earn", "penalty", "reversal"))
    pid = func.coalesce(_acc.c.patient_id, _tr.c.member_id)
    frm = _tr.join(_acc, _acc.c.id == _tr.c.wallet_id)
    where = (_tr.c.at >= lo, _tr.c.at < hi, _tr.c.kind.in_(KINDS))
    stmt = (select(_tr.c.kind, _tr.c.amount, _tr.c.to_account_id, _tr.c.wallet_id, _tr.c.rule_code, _tr.c.event_id,
                   _tr.c.hold_id, pid.label("pid"), spend.c.event_id.label("spend_ref"),
                   spend.c.hold_id.label("spend_hold"), _ev.c.type, _ev.c.source, _ev.c.attributes)
            .select_from(frm.outerjoin(spend, and_(spend.c.id == _tr.c.reverses_id, _tr.c.kind == "refund"))
                         .outerjoin(_ev, and_(_ev.c.id == _tr.c.event_id, by_event)))
            .where(*where))
    rows = conn.execute(stmt).all()
    if not rows:
        return []
    res = Resolver(conn, day, tz, select(pid).select_from(frm).where(*where))
    res.load_appointments(r.attributes for r in rows if r.attributes)
    # a mall redemption's entry names it (`event_id`), a fee offset's its hold; a refund, its spend's
    spent = [(r.event_id, r.hold_id) if r.kind == "redeem" else (r.spend_ref, r.spend_hold) for r in rows]
    mall, cashier = _spends(conn, {ref for ref, hold in spent if ref and not hold}, {h for _r, h in spent if h})
    out = []
    for r, (ref, hold) in zip(rows, spent, strict=True):
        person = res.person(r.pid)
        reward, cost = UNKNOWN, 0
        if r.type is not None:
            w = res.where(r.type, r.source, r.attributes or {}, r.pid)
        elif r.kind in ("redeem", "refund"):
            if hold and hold in cashier:
                cost, named = cashier[hold]
                reward, channel = FEE_OFFSET, "onsite"
            else:
                reward, cost, channel, named = mall.get(ref or "", (UNKNOWN, 0, UNKNOWN, None))
            w = Where(res.institution(r.pid, named), UNKNOWN, UNKNOWN, channel)
        else:
            w = Where(res.institution(r.pid), UNKNOWN, UNKNOWN, UNKNOWN)
        keys = {"department": (w.department,), "clinician": (w.clinician,), "rule": (r.rule_code or UNKNOWN,),
                "reward": (reward,), "age_band": (person.band,), "condition": person.conditions,
                "channel": (w.channel,), "band_channel": (f"{person.band}|{w.channel}",)}
        out.append(Entry(w.institution, keys, _measures(r.kind, r.amount, r.to_account_id == r.wallet_id, cost)))
    return out


def compute_points(session: Session, day: date, tz: ZoneInfo) -> list[dict[str, Any]]:
    """The `analytics_points_daily` rows of one local day (views place today's entries live)."""
    cells: dict[tuple[str, ...], list[int]] = {}
    for e in ledger_entries(session, day, tz):
        _spread(cells, e.institution, e.keys, e.measures)
    return [{"day": day, "institution_id": k[0], "f_dim": k[1], "f_key": k[2], "b_dim": k[3], "b_key": k[4],
             **dict(zip(MEASURES, v, strict=True))} for k, v in sorted(cells.items(), key=lambda kv: kv[0][1:])]


@rollup.rollup("points_daily", "day", _daily)
def _points_daily(session: Session, day: date, tz: ZoneInfo) -> list[dict[str, Any]]:
    return compute_points(session, day, tz)


# --- participation (distinct active patients) ----------------------------------------------


def behaviour(day: date, tz: ZoneInfo) -> tuple[Any, ...]:
    """The events that make a patient active on a local day."""
    lo, hi = day_bounds(day, tz)
    return (_ev.c.occurred_at >= lo, _ev.c.occurred_at < hi, _ev.c.status == "accepted",
            _ev.c.type.not_in(NOT_BEHAVIOUR))


def compute_participation(session: Session, day: date, tz: ZoneInfo) -> list[dict[str, Any]]:
    """The patient-days of one local day: one row per patient × where × channel × condition."""
    conn = session.connection()
    where = behaviour(day, tz)
    rows = conn.execute(select(_ev.c.type, _ev.c.source, _ev.c.attributes, _ev.c.patient_id).where(*where)).all()
    if not rows:
        return []
    res = Resolver(conn, day, tz, select(_ev.c.patient_id).where(*where))
    res.load_appointments(r.attributes for r in rows if r.attributes)
    seen: dict[tuple[str, ...], str] = {}
    for r in rows:
        w, person = res.where(r.type, r.source, r.attributes or {}, r.patient_id), res.person(r.patient_id)
        for cond in person.conditions:
            seen[(r.patient_id, w.institution, w.department, w.clinician, w.channel, cond)] = person.band
    return [{"day": day, "patient_id": k[0], "institution_id": k[1], "department_id": k[2], "clinician_id": k[3],
             "channel": k[4], "condition": k[5], "age_band": band} for k, band in seen.items()]


def _fact_keys(row: dict[str, Any] | Any, dim: str) -> str:
    if dim == TOTAL:
        return ""
    if dim == "band_channel":
        return f"{row['age_band']}|{row['channel']}"
    return str(row[PART_COLUMN[dim]])


PART_COLUMN = {"institution": "institution_id", "department": "department_id", "clinician": "clinician_id",
                "age_band": "age_band", "condition": "condition", "channel": "channel", "day": "day"}


def _active_counts(facts: Iterable[dict[str, Any]] | Iterable[Any]) -> dict[tuple[str, str, str], int]:
    """(institution or `*`, dim, key) → distinct patients among patient-day facts."""
    groups: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for f in facts:
        for inst in (STAR, f["institution_id"]):
            for dim in ACTIVE_DIMS:
                groups[(inst, dim, _fact_keys(f, dim))].add(f["patient_id"])
    return {k: len(v) for k, v in groups.items()}


@rollup.rollup("participation_daily", "day", _part)
def _participation_daily(session: Session, day: date, tz: ZoneInfo) -> list[dict[str, Any]]:
    return compute_participation(session, day, tz)


@rollup.rollup("active_daily", "day", _adaily)
def _active_daily(session: Session, day: date, tz: ZoneInfo) -> list[dict[str, Any]]:
    """From the day's stored patient-days (`participation_daily` rolls the day first, in the same
    transaction; computing them again from the events would double the day's main cost)."""
    counts = _active_counts(session.connection().execute(select(_part).where(_part.c.day == day)).mappings())
    return [{"day": day, "institution_id": i, "dim": d, "key": k, "patients": n} for (i, d, k), n in counts.items()]


WINDOW_SPANS = (6, 7, 29, 30)  # the rolling windows stored for every closed day (days ending with it)
WINDOW_DIMS: dict[str, tuple[str, ...]] = {
    "total": (), "department": ("department_id",), "clinician": ("clinician_id",), "age_band": ("age_band",),
    "condition": ("condition",), "channel": ("channel",), "band_channel": ("age_band", "channel")}


def compute_windows(session: Session, day: date, _tz: ZoneInfo) -> list[dict[str, Any]]:
    """Distinct active patients of each window of `WINDOW_SPANS` days ending `day`, from the stored
    patient-days (`participation_daily` rolls `day` first, in the same transaction), in one
    statement: the window's patient-days reduced to each patient's last day per place, then per
    dimension alliance-wide and per institution each patient's last day deciding which windows
    they count in."""
    first = day - timedelta(days=max(WINDOW_SPANS) - 1)
    places = ("institution_id", "department_id", "clinician_id", "channel", "condition", "age_band")
    last = (select(*(_part.c[c] for c in places), _part.c.patient_id, func.max(_part.c.day).label("last"))
            .where(_part.c.day >= first, _part.c.day <= day).group_by(*(_part.c[c] for c in places),
                                                                      _part.c.patient_id).cte("last_days"))
    parts = []
    for dim, cols in WINDOW_DIMS.items():
        for per_inst in (False, True):
            keys = [last.c[c] for c in (("institution_id",) if per_inst else ()) + cols]
            inner = (select(*(k.label(f"k{i}") for i, k in enumerate(keys)), func.max(last.c.last).label("last"))
                     .group_by(*keys, last.c.patient_id).subquery())
            g = [inner.c[f"k{i}"] for i in range(len(keys))]
            shown = [*g, *(literal("") for _ in range(3 - len(g)))]
            spans = [func.sum(case((inner.c.last >= day - timedelta(days=n - 1), 1), else_=0)) for n in WINDOW_SPANS]
            parts.append(select(literal(dim).label("dim"), literal(per_inst).label("per_inst"),
                                *(c.label(f"c{i}") for i, c in enumerate(shown)), *spans).group_by(*g))
    out: list[dict[str, Any]] = []
    for row in session.connection().execute(union_all(*parts)):
        dim, per_inst, vals = row[0], bool(row[1]), [str(v) for v in row[2:5]]
        inst = vals.pop(0) if per_inst else STAR
        key = "|".join(vals[:len(WINDOW_DIMS[dim])])
        out += [{"day": day, "span": n, "institution_id": inst, "dim": dim, "key": key, "patients": int(c)}
                for n, c in zip(WINDOW_SPANS, row[5:], strict=True) if c]
    return out


@rollup.rollup("active_windows", "day", _awin)
def _active_windows(session: Session, day: date, tz: ZoneInfo) -> list[dict[str, Any]]:
    return compute_windows(session, day, tz)


def _active_period(grain: rollup.Grain) -> rollup.Compute:
    def compute(session: Session, first: date, _tz: ZoneInfo) -> list[dict[str, Any]]:
        """From the period's patient-days (rolled up before it: the job rolls days first)."""
        last = rollup.period_of(grain, first)[1]
        facts = session.connection().execute(select(_part).where(_part.c.day >= first, _part.c.day <= last)).mappings()
        return [{"grain": grain, "period_start": first, "institution_id": i, "dim": d, "key": k, "patients": n}
                for (i, d, k), n in _active_counts(facts).items()]
    return compute


rollup.rollup("active_weekly", "week", _aperiod)(_active_period("week"))
rollup.rollup("active_monthly", "month", _aperiod)(_active_period("month"))
