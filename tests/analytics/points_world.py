"""A small hospital whose points figures are worked out by hand, built through the real services
(enrolment, events, scheduling, rewards, the expiry job) on a fixed clock, for the points, trend,
equity and roll-up tests.

Local time is Asia/Shanghai. W = the ISO week Mon 2026-06-08 .. Sun 06-14 (closed, rolled up),
P = the week before (06-01 .. 06-07), today = Mon 06-15 (live; the test clock is 10:30).

Places: institution H1 (code h1) with department CARD and its clinician D1; institution H2 (h2).
Patients (enrolled 2026-05-20 10:00, welcome +100 each, channel online):
  A born 1950-03-01 (76: 70-79), hypertension + diabetes; never books, so no home institution
  B born 1985-07-01 (40: 40-49), hypertension; booking at H1 links B to H1
  C born 2000-01-01 (26: 18-29), no chronic condition
  D (today only) no birth date (age unknown), enrolled 06-15 09:30

Ledger and events, by local day:
  05-21  (late, after the first roll-up) A public_health occurred 2024-06-01 +100, its lot
         expired 2026-06-01
  06-01  B books CARD/D1 for 06-10 08:00 online (no points; P: B active, online, H1, CARD)
  06-03  A reading (device) first_checkin 50 + health_checkin 10 = 60 online        (P)
  06-08  A reading 10 online
  06-09  A paper sheet (staff.offline_entry: lecture) 30 offline
  06-10  B checks in 07:50 and attends 08:05: book_ahead 30 + on_time 10 = 40 on-site, H1/CARD/D1
  06-11  C kiosk payment at h2 10 on-site (revoked 06-13); C education 20 online
  06-12  C misconduct at h2 −20 (penalty, on-site)
  06-13  B redeems the test coupon (50 points, cost 4.00 CNY) through the HIS (on-site, H1);
         C's kiosk event revoked: −10 issued on 06-13 (H2, on-site, rule self_service)
  06-14  the expiry job expires A's 2024 lot: 100 expired (no channel, institution unknown)
  06-15  (today) C reading (self-reported) 60 online; D enrolled (+100 online) and attends a
         lecture 30 on-site; B's redemption refunded (−50 redeemed, −4.00 budget)

W: active A, B, C = 3 (C's revoked kiosk event does not count; C's education and misconduct do);
issued A 40 + B 40 + C 20 = 100; penalised 20; redeemed 50; expired 100; rate 0.5; budget 4.00;
outstanding at 06-14: A 200 + B 90 + C 100 = 390 points = 39.00 CNY.
P: active A, B = 2; issued 60; outstanding at 06-07: 260 + 100 + 100 = 460 = 46.00 CNY."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from carepoints.analytics import points_rollup, rollup, views
from carepoints.analytics.report import Report
from carepoints.audit.service import Actor
from carepoints.engagement.health import conditions
from carepoints.engagement.health.schemas import ConditionCode, ConditionSet
from carepoints.events import service as events
from carepoints.jobs.registry import ledger_expire_points
from carepoints.kit.db import read_tx, table, write_tx
from carepoints.scheduling import service as sch
from carepoints.scheduling.schemas import (
    AppointmentCreate,
    CheckInIn,
    ClinicianCreate,
    DepartmentCreate,
    InstitutionCreate,
    SessionCreate,
)
from tests.helpers import bp, enrol, event, ingest_one
from tests.rewards.kit import add_reward, redeem, refund

CST = ZoneInfo("Asia/Shanghai")
STAFF = Actor("staff", "00000000-0000-7000-8000-00000000d35c", "nurse")
W = (date(2026, 6, 8), date(2026, 6, 14))
P = (date(2026, 6, 1), date(2026, 6, 7))
TODAY = date(2026, 6, 15)
NOW = datetime(2026, 6, 15, 2, 30, tzinfo=UTC)  # 10:30 in Shanghai
TABLES = (points_rollup.PointsDaily, points_rollup.Participation, points_rollup.ActiveDaily, points_rollup.ActivePeriod)


def at(day: date, hhmm: str) -> datetime:
    return datetime.combine(day, time.fromisoformat(hhmm), tzinfo=CST).astimezone(UTC)


@dataclass
class World:
    h1: str
    h2: str
    card: str
    d1: str
    a: str
    b: str
    c: str
    d: str | None
    coupon: str
    redemption: str


def _places() -> tuple[str, str, str, str, str]:
    t0 = at(date(2026, 5, 20), "09:00")
    with write_tx() as s:
        h1 = sch.create_institution(s, InstitutionCreate(code="h1", name_zh="第一医院", name_en="First Hospital"), t0)
        h2 = sch.create_institution(s, InstitutionCreate(code="h2", name_zh="社区中心", name_en="Community Centre"), t0)
        card = sch.create_department(s, DepartmentCreate(institution_id=h1["id"], code="card", name_zh="心内科",
                                                         name_en="Cardiology"), t0)["id"]
        d1 = sch.create_clinician(s, ClinicianCreate(department_id=card, code="d1", name="王医生"), t0)["id"]
        session = sch.create_session(s, SessionCreate(
            clinician_id=d1, date=date(2026, 6, 10), start=time(8), end=time(9), slot_minutes=10,
            fee_cny=Decimal("15"), release_at=t0 - timedelta(days=1), referral_share=Decimal(0)), t0)
    return h1["id"], h2["id"], card, d1, session["id"]


def _condition(pid: str, code: ConditionCode, since: date) -> None:
    with write_tx() as s:
        conditions.set_condition(s, pid, code, ConditionSet(diagnosed_on=since), STAFF, at(date(2026, 5, 20), "11:00"))


def build(*, today: bool = True, first_rollup: bool = True) -> World:
    """The hospital up to 06-14 (and today's events with `today`); with `first_rollup` the job
    ran once on 05-21, before A's late 2024 event arrived."""
    h1, h2, card, d1, session_id = _places()
    t0 = at(date(2026, 5, 20), "10:00")
    a = enrol(t0, birth_date="1950-03-01")
    b = enrol(t0, birth_date="1985-07-01")
    c = enrol(t0, birth_date="2000-01-01")
    _condition(a, ConditionCode.hypertension, date(2020, 1, 1))
    _condition(a, ConditionCode.diabetes, date(2021, 1, 1))
    _condition(b, ConditionCode.hypertension, date(2019, 1, 1))
    if first_rollup:
        rollup.rollup_analytics(at(date(2026, 5, 21), "03:00"))
    ingest_one(at(date(2026, 5, 21), "09:00"), event(a, "public_health.completed", at(date(2024, 6, 1), "10:00"),
                                                      {"programme": "vaccination", "item": "flu-2024"}))
    with write_tx() as s:
        appt, _ = sch.book(s, AppointmentCreate(patient_id=b, session_id=session_id, idempotency_key="b-card"),
                           at(date(2026, 6, 1), "10:00"), booked_by="patient")
    ingest_one(at(date(2026, 6, 3), "09:00"), event(a, "health.measurement", at(date(2026, 6, 3), "09:00"), bp()))
    ingest_one(at(date(2026, 6, 8), "09:00"), event(a, "health.measurement", at(date(2026, 6, 8), "09:00"), bp()))
    sheet = {"behaviour": "lecture.attended", "attributes": {"lecture_id": "L1"}, "sheet_ref": "S-0609",
             "staff_id": STAFF.id}
    ingest_one(at(date(2026, 6, 9), "15:00"), event(a, "staff.offline_entry", at(date(2026, 6, 9), "15:00"), sheet,
                                                     source=f"staff:{STAFF.id}"))
    with write_tx() as s:
        sch.check_in(s, appt["id"], CheckInIn(), at(date(2026, 6, 10), "07:50"))
    with write_tx() as s:
        sch.attend(s, appt["id"], at(date(2026, 6, 10), "08:05"), at(date(2026, 6, 10), "08:05"))
    ingest_one(at(date(2026, 6, 11), "09:00"), event(c, "selfservice.used", at(date(2026, 6, 11), "09:00"),
                                                      {"action": "pay", "institution": "h2"}, key="kiosk-c"))
    ingest_one(at(date(2026, 6, 11), "20:00"), event(c, "education.completed", at(date(2026, 6, 11), "20:00"),
                                                      {"content_id": "c1", "score": 90, "pass_mark": 60}))
    ingest_one(at(date(2026, 6, 12), "10:00"), event(c, "conduct.violation", at(date(2026, 6, 12), "10:00"),
                                                      {"reason": "插队", "staff_id": STAFF.id, "institution": "h2"}))
    coupon = add_reward(at(date(2026, 6, 13), "09:00"), points=50, cost_cny="4.00",
                        names={"zh": "测试券", "en": "Test coupon"})["code"]
    redemption = redeem(b, coupon, at(date(2026, 6, 13), "10:00"))["id"]
    with write_tx() as s:
        events.revoke(s, now=at(date(2026, 6, 13), "11:00"), reason="HIS correction", source="test",
                      source_event_id="kiosk-c")
    ledger_expire_points(at(date(2026, 6, 14), "03:00"))
    d = None
    if today:
        ingest_one(at(TODAY, "09:00"), event(c, "health.measurement", at(TODAY, "09:00"), bp("self_reported")))
        d = enrol(at(TODAY, "09:30"))
        ingest_one(at(TODAY, "10:00"), event(d, "lecture.attended", at(TODAY, "10:00"), {"lecture_id": "L2"}))
        refund(redemption, at(TODAY, "10:15"))
    return World(h1, h2, card, d1, a, b, c, d, coupon, redemption)


def run(name: str, start: date, end: date, now: datetime = NOW, **kwargs: Any) -> Report:
    with read_tx() as session:
        return views.run(session, name, now, start=start, end=end, **kwargs)


def total(report: Report) -> dict[str, Any]:
    return report.rows[0]


def groups(report: Report) -> dict[Any, dict[str, Any]]:
    return {r["key"]: r for r in report.rows[1:]}


def values(row: dict[str, Any], prefix: str = "value") -> dict[str, Any]:
    return {k.removeprefix(f"{prefix}_"): v for k, v in row.items() if k.startswith(f"{prefix}_")}


def snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the roll-up tables, sorted."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with read_tx() as session:
        for model in TABLES:
            t = table(model)
            out[t.name] = sorted(tuple(r) for r in session.connection().execute(select(t)))
    return out


def uid() -> str:
    return uuid.uuid4().hex
