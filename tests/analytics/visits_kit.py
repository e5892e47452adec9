"""Set-up shared by the visit, care and cost-benefit analytics tests: a clock of whole ISO weeks
before this one, patients of fixed ages, a hospital, and the scheduling, health and follow-up
verbs each in its own committed transaction on a past clock (the services take `now`; the
analytics endpoints read the real one)."""

from __future__ import annotations

import itertools
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from carepoints.analytics.care import CareDaily, PublicHealthFacts
from carepoints.analytics.cubes import VisitPeriod
from carepoints.analytics.rollup import rollup_analytics
from carepoints.analytics.visits import VisitPatients, VisitsDaily
from carepoints.audit.service import Actor
from carepoints.config import get_settings
from carepoints.engagement.followups import responses
from carepoints.engagement.followups import service as followups
from carepoints.engagement.followups.schemas import PlanCreate, QuestionnaireCreate, ResponseCreate
from carepoints.engagement.health import conditions
from carepoints.engagement.health.schemas import ConditionCode, ConditionSet
from carepoints.kit.db import read_tx, table, write_tx
from carepoints.kit.time import local_date, utc_now
from carepoints.scheduling import service as sch
from carepoints.scheduling import tasks as sch_tasks
from carepoints.scheduling.schemas import (
    AppointmentCreate,
    CancelIn,
    CheckInIn,
    ClinicianCreate,
    DepartmentCreate,
    InstitutionCreate,
    SessionCreate,
)

STAFF = Actor("api_key", "k-analytics-test", "admin")
_keys = itertools.count(1)


def tz() -> Any:
    return get_settings().tz


def today() -> date:
    return local_date(utc_now(), tz())


def week(back: int) -> date:
    """The Monday of the ISO week `back` weeks before this one."""
    t = today()
    return t - timedelta(days=t.weekday() + 7 * back)


W1, W2 = week(2), week(1)  # the previous period and the period the tests ask for
T0 = W1 - timedelta(days=30)  # when the patients enrolled


def at(day: date, hhmm: str) -> datetime:
    """A local wall-clock time on `day` as an aware datetime."""
    return datetime.combine(day, time.fromisoformat(hhmm), tzinfo=tz())


def born(age: int) -> str:
    """A birth date for someone `age` years old on every day from T0 − 1 to today."""
    anchor = T0 - timedelta(days=2)
    try:
        return date(anchor.year - age, anchor.month, anchor.day).isoformat()
    except ValueError:  # 29 February
        return date(anchor.year - age, 2, 28).isoformat()


def window(start: date, end: date) -> dict[str, str]:
    return {"start": start.isoformat(), "end": end.isoformat()}


class Hospital:
    """Institutions, departments and clinicians (committed)."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.institutions: dict[str, str] = {}
        self.departments: dict[str, str] = {}
        self.clinicians: dict[str, str] = {}

    def institution(self, code: str) -> str:
        with write_tx() as s:
            self.institutions[code] = sch.create_institution(s, InstitutionCreate(code=code, name_zh=f"医院{code}",
                                                                                  name_en=f"Hospital {code}"),
                                                             self.now)["id"]
        return self.institutions[code]

    def department(self, code: str, inst: str) -> str:
        with write_tx() as s:
            self.departments[code] = sch.create_department(s, DepartmentCreate(
                institution_id=self.institutions[inst], code=code, name_zh=f"科室{code}", name_en=f"Dept {code}"),
                self.now)["id"]
        return self.departments[code]

    def clinician(self, code: str, dept: str) -> str:
        with write_tx() as s:
            self.clinicians[code] = sch.create_clinician(s, ClinicianCreate(
                department_id=self.departments[dept], code=code, name=f"医生{code}"), self.now)["id"]
        return self.clinicians[code]

    def session(self, clinician: str, day: date, start: str, end: str) -> str:
        """Ten-minute slots alternating online / on-site, open since long before."""
        with write_tx() as s:
            return str(sch.create_session(s, SessionCreate(
                clinician_id=self.clinicians[clinician], date=day, start=time.fromisoformat(start),
                end=time.fromisoformat(end), slot_minutes=10, fee_cny=Decimal("15"), pattern=["online", "onsite"],
                referral_share=Decimal(0), release_at=self.now), self.now)["id"])


def book(pid: str, session_id: str, when: datetime, channel: str = "online") -> dict[str, Any]:
    with write_tx() as s:
        doc, _created = sch.book(s, AppointmentCreate(patient_id=pid, session_id=session_id, channel=channel,
                                                      idempotency_key=f"a{next(_keys)}"), when)
    return doc


def start_of(appt: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(appt["start"])


def attend(appt: dict[str, Any]) -> None:
    begin = start_of(appt)
    with write_tx() as s:
        sch.check_in(s, appt["id"], CheckInIn(), begin - timedelta(minutes=5))
    with write_tx() as s:
        sch.attend(s, appt["id"], begin + timedelta(minutes=5), begin + timedelta(minutes=5))


def cancel(appt: dict[str, Any], when: datetime) -> None:
    with write_tx() as s:
        sch.cancel(s, appt["id"], CancelIn(by="patient"), when)


def sweep(when: datetime) -> int:
    """The no-show sweep job on a past clock."""
    return int(sch_tasks.sweep_no_shows(when)["no_shows"])


def condition(pid: str, code: str, now: datetime, diagnosed_on: date | None = None) -> None:
    with write_tx() as s:
        conditions.set_condition(s, pid, ConditionCode(code), ConditionSet(diagnosed_on=diagnosed_on), STAFF, now)


TEMPLATE: dict[str, Any] = {"code": "visit_followup", "title": {"zh": "随访"}, "purpose": "followup", "questions": [
    {"id": "ok", "text": {"zh": "感觉如何"}, "type": "single", "required": True,
     "choices": [{"value": "good", "label": {"zh": "好"}}, {"value": "bad", "label": {"zh": "不好"}}]}]}


def plan(pid: str, occurred: date, offsets: list[int], now: datetime) -> dict[str, Any]:
    """A follow-up plan (steps due `offsets` days after `occurred`)."""
    with write_tx() as s:
        followups.save_questionnaire(s, QuestionnaireCreate.model_validate(TEMPLATE), STAFF, now)
        doc, _ = followups.create_plan(s, PlanCreate.model_validate({
            "patient_id": pid, "trigger": "discharge", "occurred_on": occurred.isoformat(),
            "questionnaire": "visit_followup", "channel": "app", "kind": "routine", "offsets": offsets}), STAFF, now)
    return doc


def answer(step_id: str, now: datetime) -> None:
    with write_tx() as s:
        responses.answer_step(s, step_id, ResponseCreate.model_validate({"answers": {"ok": "good"}, "channel": "app"}),
                              STAFF, now)


def rollup() -> dict[str, Any]:
    """`rollup-analytics` now (every closed day since the first ledger entry)."""
    return rollup_analytics(utc_now())


TABLES = (VisitsDaily, VisitPatients, CareDaily, PublicHealthFacts, VisitPeriod)


def stored() -> dict[str, list[tuple[Any, ...]]]:
    """Every row of this area's roll-up tables, sorted (to compare two runs)."""
    with read_tx() as s:
        return {m.__tablename__: sorted(tuple(r) for r in s.connection().execute(select(table(m))))
                for m in TABLES}


def rows_by_key(doc: dict[str, Any]) -> dict[Any, dict[str, Any]]:
    return {r["key"]: r for r in doc["rows"]}


def pick(row: dict[str, Any], *keys: str) -> tuple[Any, ...]:
    return tuple(row[k] for k in keys)


# --- the visits world ---------------------------------------------------------------------
#
# Hospital h1 (departments A: clinicians a1, a2; B: b1) and h2 (C: c1). Patients, by age on
# every day of the test: P1 70 (hypertension, diabetes), P2 70 (hypertension), P3 40, P4 25,
# P5 40 (diabetes).
#
# W1 Monday, a1 08:00-10:00: P1 attends (booked 8 days ahead), P4 attends (booked on-site that
#   morning), P2, P3 and P5 miss it (no-show sweep).
# W2 Monday, a1 08:00-09:00: P1 attends (ahead), P3 attends (on-site that morning), P2 misses.
#    Tuesday, a2 10:00-11:00 (off-peak): P1 attends (ahead), P4 cancels.
#    Wednesday, b1 08:00-09:00: P5 attends (ahead), P3 misses.
#    Thursday, c1 at h2 14:00-15:00 (off-peak): P4 attends (ahead).
#    Friday: P4 earns 2 × 200 (referral visits) and redeems a checkup coupon (500 points, cost
#    60.00 CNY); P2 answers a follow-up step due Wednesday (a second step, due in W1 + 2 weeks,
#    is not in W2).


def visits_world(now: datetime) -> tuple[Hospital, dict[str, str]]:
    from carepoints.rewards import service as rewards
    from carepoints.rewards.schemas import RedemptionCreate
    from tests.helpers import enrol, event, ingest_one

    h = Hospital(now)
    h.institution("h1")
    h.institution("h2")
    h.department("A", "h1")
    h.department("B", "h1")
    h.department("C", "h2")
    for code, dept in (("a1", "A"), ("a2", "A"), ("b1", "B"), ("c1", "C")):
        h.clinician(code, dept)
    enrolled = at(T0, "09:00")
    p = {name: enrol(enrolled, birth_date=born(age)) for name, age in
         (("P1", 70), ("P2", 70), ("P3", 40), ("P4", 25), ("P5", 40))}
    for name, code in (("P1", "hypertension"), ("P1", "diabetes"), ("P2", "hypertension"), ("P5", "diabetes")):
        condition(p[name], code, enrolled, T0 - timedelta(days=10))
    s0 = h.session("a1", W1, "08:00", "10:00")
    for name in ("P1", "P2", "P3", "P5"):
        appt = book(p[name], s0, at(W1 - timedelta(days=8), "20:00"))
        if name == "P1":
            attend(appt)
    attend(book(p["P4"], s0, at(W1, "07:30"), "onsite"))
    assert sweep(at(W1, "12:00")) == 3
    mon, tue, wed, thu, fri = (W2 + timedelta(days=i) for i in range(5))
    s1, s2 = h.session("a1", mon, "08:00", "09:00"), h.session("a2", tue, "10:00", "11:00")
    s3, s4 = h.session("b1", wed, "08:00", "09:00"), h.session("c1", thu, "14:00", "15:00")
    ahead = at(W2 - timedelta(days=8), "20:00")
    attend(book(p["P1"], s1, ahead))
    book(p["P2"], s1, ahead)
    attend(book(p["P3"], s1, at(mon, "07:30"), "onsite"))
    attend(book(p["P1"], s2, ahead))
    cancel(book(p["P4"], s2, ahead), at(mon, "12:00"))
    attend(book(p["P5"], s3, ahead))
    book(p["P3"], s3, ahead)
    attend(book(p["P4"], s4, ahead))
    assert sweep(at(W2 + timedelta(days=6), "23:00")) == 2
    for k in range(2):
        ingest_one(at(fri, "09:00"), event(p["P4"], "referral.visit", at(fri, "09:00"),
                                           {"referral_id": f"ref-{k}", "from_institution": "社区中心"}))
    with write_tx() as s:
        rewards.redeem(s, RedemptionCreate(patient_id=p["P4"], reward="checkup_80", idempotency_key="cb-1"),
                       STAFF, at(fri, "10:00"))
    steps = plan(p["P2"], W2 - timedelta(days=1), [3, 16], at(W2 - timedelta(days=1), "09:00"))["steps"]
    answer(steps[0]["id"], at(wed, "09:00"))
    return h, p
