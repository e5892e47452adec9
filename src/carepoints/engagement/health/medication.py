"""Medication plans (用药计划): planned local times each day, reminders when a planned
time comes, and check-ins that emit `medication.taken`. A planned dose is one row of
`medication_doses` under a unique (plan, planned instant): one reminder, one check-in,
and the event's source key `medication:{plan}:{instant}` makes the spine pay it once.
The medicine's name is health data: never logged, audited or put in a payload."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from carepoints.audit import service as audit
from carepoints.audit.service import Actor
from carepoints.config import get_settings
from carepoints.engagement import spine
from carepoints.engagement.health.errors import (
    DoseNotPlannedError,
    DoseOutOfWindowError,
    NoDoseDueError,
    PlanNotFoundError,
    PlanStoppedError,
    TakenInFutureError,
)
from carepoints.engagement.health.measurements import CLOCK_SKEW
from carepoints.engagement.health.models import MedicationDose, MedicationPlan
from carepoints.engagement.health.schemas import DoseCheckIn, PlanCreate
from carepoints.kit.bulk import insert_new, upsert
from carepoints.kit.db import table
from carepoints.kit.ids import is_id, new_id
from carepoints.kit.outbox import enqueue_many
from carepoints.kit.time import as_utc, iso_z, local_date

_plans = table(MedicationPlan)
_doses = table(MedicationDose)
REMINDER_CHUNK = 500


def _plan_doc(row: Any) -> dict[str, Any]:
    return {"id": row["id"], "patient_id": row["patient_id"], "medicine_name": row["medicine_name"],
            "dose_text": row["dose_text"], "times": list(row["times"]), "start_date": row["start_date"].isoformat(),
            "end_date": row["end_date"].isoformat() if row["end_date"] else None, "status": row["status"],
            "created_at": row["created_at"].isoformat(),
            "stopped_at": row["stopped_at"].isoformat() if row["stopped_at"] else None}


def get_plan(session: Session, plan_id: str, *, lock: bool = False) -> dict[str, Any]:
    if not is_id(plan_id):
        raise PlanNotFoundError()
    stmt = select(_plans).where(_plans.c.id == plan_id)
    row = session.connection().execute(stmt.with_for_update() if lock else stmt).mappings().first()
    if row is None:
        raise PlanNotFoundError()
    return dict(row)


def create_plan(session: Session, patient_id: str, data: PlanCreate, actor: Actor, now: datetime) -> dict[str, Any]:
    """A new plan for an existing patient (the caller checked), audited with ids only."""
    pid = new_id()
    row = {"id": pid, "patient_id": patient_id, "medicine_name": data.medicine_name, "dose_text": data.dose_text,
           "times": data.times, "start_date": data.start_date, "end_date": data.end_date, "status": "active",
           "created_at": now, "stopped_at": None}
    session.connection().execute(_plans.insert().values(**row))
    audit.record(session, actor, "health:medication_plan:create", now, subject_id=pid, patient_id=patient_id)
    return _plan_doc(row)


def plans_of(session: Session, patient_id: str, *, include_stopped: bool = True) -> list[dict[str, Any]]:
    stmt = select(_plans).where(_plans.c.patient_id == patient_id).order_by(_plans.c.id)
    if not include_stopped:
        stmt = stmt.where(_plans.c.status == "active")
    return [_plan_doc(r) for r in session.connection().execute(stmt).mappings()]


def stop_plan(session: Session, plan_id: str, actor: Actor, now: datetime) -> dict[str, Any]:
    """Stop a plan: no more reminders or check-ins. Stopping it again changes nothing."""
    plan = get_plan(session, plan_id)
    stopped = session.connection().execute(update(_plans).where(
        _plans.c.id == plan_id, _plans.c.status == "active").values(status="stopped", stopped_at=now)
        .returning(_plans.c.id)).scalar()
    if stopped is not None:
        audit.record(session, actor, "health:medication_plan:stop", now, subject_id=plan_id,
                     patient_id=plan["patient_id"])
    return _plan_doc(get_plan(session, plan_id))


# --- planned instants --------------------------------------------------------------------

def _on(plan: dict[str, Any], day: date) -> bool:
    return bool(plan["start_date"] <= day and (plan["end_date"] is None or day <= plan["end_date"]))


def planned(plan: dict[str, Any], day: date, tz: ZoneInfo) -> list[datetime]:
    """The plan's planned instants (UTC) of a local day; none outside its dates."""
    if not _on(plan, day):
        return []
    return [as_utc(datetime.combine(day, time.fromisoformat(t), tzinfo=tz)) for t in plan["times"]]


def _is_planned(plan: dict[str, Any], instant: datetime, tz: ZoneInfo) -> bool:
    return as_utc(instant) in planned(plan, local_date(instant, tz), tz)


# --- check-in ----------------------------------------------------------------------------

def check_in(session: Session, plan_id: str, data: DoseCheckIn, actor: Actor,
             now: datetime) -> tuple[dict[str, Any], bool]:
    """Record a dose taken and emit `medication.taken` {plan_id, scheduled_for}. Without
    `scheduled_for` the nearest planned time of the local day within the window is meant.
    A second check-in of the same planned time re-sends the first one's event, which the
    spine answers as a duplicate (no points); created is False then."""
    settings = get_settings()
    tz, window = settings.tz, timedelta(minutes=settings.medication_window_minutes)
    plan = get_plan(session, plan_id)
    if plan["status"] != "active":
        raise PlanStoppedError()
    taken = as_utc(data.taken_at) if data.taken_at is not None else now
    if taken > now + CLOCK_SKEW:
        raise TakenInFutureError()
    if data.scheduled_for is not None:
        scheduled = as_utc(data.scheduled_for)
        if not _is_planned(plan, scheduled, tz):
            raise DoseNotPlannedError()
        if abs(taken - scheduled) > window:
            raise DoseOutOfWindowError()
    else:
        near = [s for s in planned(plan, local_date(taken, tz), tz) if abs(taken - s) <= window]
        if not near:
            raise NoDoseDueError()
        scheduled = min(near, key=lambda s: (abs(taken - s), s))
    taken = _claim_dose(session, plan, scheduled, taken)
    result = spine.emit(session, "medication.taken", plan["patient_id"], taken, now,
                        f"medication:{plan_id}:{iso_z(scheduled)}",
                        {"plan_id": plan_id, "scheduled_for": scheduled.isoformat()})
    session.connection().execute(update(_doses).where(_doses.c.plan_id == plan_id,
                                                      _doses.c.scheduled_for == scheduled)
                                 .values(event_id=result["event_id"]))
    duplicate = bool(result.get("duplicate"))
    if not duplicate:
        audit.record(session, actor, "health:dose:check_in", now, subject_id=result["event_id"],
                     patient_id=plan["patient_id"], plan_id=plan_id)
    return {"plan_id": plan_id, "scheduled_for": scheduled.astimezone(tz).isoformat(),
            "taken_at": taken.astimezone(tz).isoformat(), "event_id": result["event_id"], "duplicate": duplicate,
            "awards": result.get("awards", []), "notices": result.get("notices", []),
            "balance": result.get("balance")}, not duplicate


def _claim_dose(session: Session, plan: dict[str, Any], scheduled: datetime, taken: datetime) -> datetime:
    """Mark the dose taken unless it already is; the time it was taken (the first check-in's).
    The dose row's unique key and the guarded UPDATE decide between concurrent check-ins."""
    conn = session.connection()
    if insert_new(conn, _doses, {"id": new_id(), "plan_id": plan["id"], "patient_id": plan["patient_id"],
                                 "scheduled_for": scheduled, "reminded_at": None, "taken_at": taken,
                                 "event_id": None}, ("plan_id", "scheduled_for")):
        return taken
    where = (_doses.c.plan_id == plan["id"], _doses.c.scheduled_for == scheduled)
    if conn.execute(update(_doses).where(*where, _doses.c.taken_at.is_(None)).values(taken_at=taken)
                    .returning(_doses.c.id)).first() is not None:
        return taken
    return as_utc(conn.execute(select(_doses.c.taken_at).where(*where)).scalar_one())


def doses_on(session: Session, plan_ids: Iterable[str], start: datetime, end: datetime) -> dict[tuple[str, datetime],
                                                                                              dict[str, Any]]:
    """Dose rows of these plans planned in [start, end), by (plan, instant)."""
    ids = list(plan_ids)
    if not ids:
        return {}
    rows = session.connection().execute(select(_doses).where(
        _doses.c.plan_id.in_(ids), _doses.c.scheduled_for >= start, _doses.c.scheduled_for < end)).mappings()
    return {(r["plan_id"], as_utc(r["scheduled_for"])): dict(r) for r in rows}


# --- reminders ---------------------------------------------------------------------------

def remind(session: Session, now: datetime) -> int:
    """Enqueue `medication.reminder` {patient_id, plan_id, scheduled_for} for each planned
    dose of an active plan whose time has come within the window and that has no dose row
    yet (one reminder each, the unique key decides); never for stopped or ended plans, and
    not for a dose already checked in. Returns the reminders queued."""
    settings = get_settings()
    tz, window = settings.tz, timedelta(minutes=settings.medication_window_minutes)
    today = local_date(now, tz)
    days = sorted({local_date(now - window, tz), today})
    conn = session.connection()
    plans = conn.execute(select(_plans).where(
        _plans.c.status == "active", _plans.c.start_date <= today,
        or_(_plans.c.end_date.is_(None), _plans.c.end_date >= days[0]))).mappings().all()
    due = [{"id": new_id(), "plan_id": p["id"], "patient_id": p["patient_id"], "scheduled_for": s,
            "reminded_at": now, "taken_at": None, "event_id": None}
           for p in plans for d in days for s in planned(dict(p), d, tz) if now - window < s <= now]
    sent = 0
    for i in range(0, len(due), REMINDER_CHUNK):
        stmt = upsert(conn, _doses).values(due[i:i + REMINDER_CHUNK]).on_conflict_do_nothing(
            index_elements=["plan_id", "scheduled_for"])
        inserted = conn.execute(stmt.returning(_doses.c.plan_id, _doses.c.patient_id, _doses.c.scheduled_for)).all()
        enqueue_many(conn, [("medication.reminder", r[1], {"patient_id": r[1], "plan_id": r[0],
                                                           "scheduled_for": iso_z(as_utc(r[2]))})
                            for r in inserted], now)
        sent += len(inserted)
    return sent
