"""Every query of the recommendations domain. A patient's snapshot takes a fixed handful of
queries whatever the patient's history holds (no query per item): the switch with the patient,
one row of behaviour counts, the readings of the last 7 days by kind and day, the education items
on offer with their labels, and the lectures open for registration with the patient's seat."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, case, func, or_, select, union, update
from sqlalchemy.orm import Session

from carepoints.engagement.followups.models import FollowupPlan, FollowupStep
from carepoints.engagement.health.models import HealthMeasurement
from carepoints.engagement.learning.models import (
    EducationCompletion,
    EducationItem,
    EducationLabel,
    Lecture,
    LectureAttendance,
    LectureRegistration,
)
from carepoints.events.models import Event
from carepoints.kit.bulk import insert_new
from carepoints.kit.db import table
from carepoints.kit.ids import is_id
from carepoints.patients.models import Patient
from carepoints.scheduling.models import Appointment
from carepoints.services.recommend.models import RecommendationSetting

_settings = table(RecommendationSetting)
_patients = table(Patient)
_appts = table(Appointment)
_plans = table(FollowupPlan)
_steps = table(FollowupStep)
_readings = table(HealthMeasurement)
_events = table(Event)
_items = table(EducationItem)
_labels = table(EducationLabel)
_done = table(EducationCompletion)
_lectures = table(Lecture)
_signins = table(LectureAttendance)
_regs = table(LectureRegistration)

NEWEST_ITEMS = 20  # items on offer to everyone (beside those labelled for the patient)
MAX_ITEMS = 100
MAX_LECTURES = 50


def profile(session: Session, patient_id: str) -> Any:
    """The patient's status, elderly mode and switch (`enabled` None: never set, i.e. on); None
    when there is no such patient."""
    if not is_id(patient_id):
        return None
    stmt = (select(_patients.c.id, _patients.c.status, _patients.c.elderly_mode, _settings.c.enabled,
                   _settings.c.updated_at)
            .outerjoin(_settings, _settings.c.patient_id == _patients.c.id).where(_patients.c.id == patient_id))
    return session.connection().execute(stmt).mappings().first()


def ensure_setting(session: Session, patient_id: str, now: datetime) -> None:
    """The patient's switch row, on, unless it exists (one statement: racers cannot both insert)."""
    insert_new(session.connection(), _settings, {"patient_id": patient_id, "enabled": True, "updated_at": now},
               ("patient_id",))


def flip(session: Session, patient_id: str, enabled: bool, now: datetime) -> bool:
    """Set the switch when it differs (a guarded UPDATE: of racers asking the same, one changes it)."""
    stmt = (update(_settings).where(_settings.c.patient_id == patient_id, _settings.c.enabled.is_not(enabled))
            .values(enabled=enabled, updated_at=now))
    return bool(session.connection().execute(stmt).rowcount)


def counts(session: Session, patient_id: str, since: date, today: date) -> dict[str, int]:
    """Behaviour counts in one query: bookings by channel and visits since `since` (local day),
    follow-up steps due or overdue today, education items passed and lectures attended ever."""
    appts = _appts.c

    def booked(*where: Any) -> Any:
        return (select(func.count()).select_from(_appts)
                .where(appts.patient_id == patient_id, appts.day >= since, *where).scalar_subquery())

    # the patient's plans, then their steps by plan (the state is counted, not filtered on, so that
    # no planner walks every patient's pending steps through the queue index instead)
    due = and_(_steps.c.status == "pending", _steps.c.due_on <= today)
    open_steps = (select(func.coalesce(func.sum(case((due, 1), else_=0)), 0))
                  .select_from(_plans.join(_steps, _steps.c.plan_id == _plans.c.id))
                  .where(_plans.c.patient_id == patient_id).scalar_subquery())
    passed = select(func.count()).select_from(_done).where(_done.c.patient_id == patient_id).scalar_subquery()
    # attendances have no patient index: look each lecture's (lecture, patient) key up instead
    attended = (select(func.count()).select_from(_signins)
                .where(_signins.c.patient_id == patient_id, _signins.c.lecture_id.in_(select(_lectures.c.id)))
                .scalar_subquery())
    stmt = select(booked(appts.channel == "online").label("online_bookings"),
                  booked(appts.channel == "onsite").label("onsite_bookings"),
                  booked(appts.status == "attended").label("visits"),
                  open_steps.label("followups_open"), passed.label("education_completed"),
                  attended.label("lectures_attended"))
    row = session.connection().execute(stmt).mappings().one()
    return {k: int(v or 0) for k, v in row.items()}


def readings(session: Session, patient_id: str, since: datetime) -> list[tuple[str, date, int]]:
    """(kind, local day, count) of the patient's accepted self-monitored readings since `since`."""
    stmt = (select(_readings.c.kind, _readings.c.local_day, func.count())
            .join(_events, _events.c.id == _readings.c.event_id)
            .where(_readings.c.patient_id == patient_id, _readings.c.self_monitored.is_(True),
                   _readings.c.taken_at >= since, _events.c.status == "accepted")
            .group_by(_readings.c.kind, _readings.c.local_day))
    return [(str(k), d, int(n)) for k, d, n in session.connection().execute(stmt).all()]


def education(session: Session, patient_id: str, conditions: Iterable[str], tags: Iterable[str]) -> list[Any]:
    """Published items labelled with one of the conditions or tags, and the newest few, newest
    first, each with `completed` (the patient passed it) and `labels` [(kind, value)]."""
    wanted = [and_(_labels.c.kind == "condition", _labels.c.value.in_(sorted(conditions))),
              and_(_labels.c.kind == "tag", _labels.c.value.in_(sorted(tags)))]
    labelled = select(_labels.c.item_id.label("id")).where(or_(*wanted))
    newest = (select(_items.c.id).where(_items.c.status == "published")
              .order_by(_items.c.id.desc()).limit(NEWEST_ITEMS))
    ids = union(labelled, select(newest.subquery().c.id)).subquery()
    stmt = (select(_items.c.id, _items.c.title, _done.c.item_id.is_not(None).label("completed"))
            .outerjoin(_done, and_(_done.c.item_id == _items.c.id, _done.c.patient_id == patient_id))
            .where(_items.c.status == "published", _items.c.id.in_(select(ids.c.id)))
            .order_by(_items.c.id.desc()).limit(MAX_ITEMS))
    conn = session.connection()
    rows = [dict(r) for r in conn.execute(stmt).mappings()]
    if not rows:
        return []
    labels: dict[str, list[tuple[str, str]]] = {r["id"]: [] for r in rows}
    for item_id, kind, value in conn.execute(select(_labels.c.item_id, _labels.c.kind, _labels.c.value)
                                             .where(_labels.c.item_id.in_(list(labels)))):
        labels[item_id].append((kind, value))
    for r in rows:
        r["labels"] = labels[r["id"]]
    return rows


def lectures(session: Session, patient_id: str, now: datetime) -> list[Any]:
    """Lectures still open for registration, soonest first, with the patient's registration status."""
    stmt = (select(_lectures.c.id, _lectures.c.title, _lectures.c.seats, _lectures.c.taken,
                   _regs.c.status.label("registration"))
            .outerjoin(_regs, and_(_regs.c.lecture_id == _lectures.c.id, _regs.c.patient_id == patient_id))
            .where(_lectures.c.starts_at > now).order_by(_lectures.c.starts_at, _lectures.c.id).limit(MAX_LECTURES))
    return list(session.connection().execute(stmt).mappings().all())
