"""Health API: readings and their trend, the chronic-disease registry, medication plans
and dose check-ins, and the patient's tasks of a day."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query

from carepoints.config import get_settings
from carepoints.engagement.health import conditions, measurements, medication, service
from carepoints.engagement.health.schemas import ConditionCode, ConditionSet, DoseCheckIn, MeasurementCreate, PlanCreate
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.errors import ValidationFailedError
from carepoints.kit.time import local_date, utc_now
from carepoints.kit.web import JSON
from carepoints.security.deps import require
from carepoints.security.service import Principal

router = APIRouter(tags=["health"])
TREND_DAYS = (7, 30, 90)
_REPLAY: dict[int | str, dict[str, Any]] = {200: {"description": "the same idempotency key again (replay)"}}


def _record(patient_id: str | None, body: MeasurementCreate, p: Principal) -> JSON:
    with write_tx() as session:
        pid = service.patient_id(session, patient_id, body.patient)
        doc, created = measurements.record(session, pid, body, p.actor(), utc_now())
    return JSON(doc, status_code=201 if created else 200)


@router.post("/patients/{patient_id}/measurements", status_code=201, responses=_REPLAY)
def record_measurement(patient_id: str, body: MeasurementCreate,
                       p: Principal = Depends(require("health:write"))) -> JSON:
    """Record a blood pressure or glucose reading (mg/dL converted to mmol/L); answers the
    reading, the points outcome and the care alert an abnormal reading raised."""
    if body.patient is not None:
        raise ValidationFailedError(fields=[{"loc": ["body", "patient"], "msg": "the path names the patient"}])
    return _record(patient_id, body, p)


@router.post("/measurements", status_code=201, responses=_REPLAY)
def record_measurement_for(body: MeasurementCreate, p: Principal = Depends(require("health:write"))) -> JSON:
    """Record a reading for the patient named by `patient` ({id} or {system, value})."""
    if body.patient is None:
        raise ValidationFailedError(fields=[{"loc": ["body", "patient"], "msg": "field required"}])
    return _record(None, body, p)


@router.get("/patients/{patient_id}/measurements")
def measurement_trend(patient_id: str, days: int = 30,
                      kind: Literal["blood_pressure", "blood_glucose"] | None = None,
                      _p: Principal = Depends(require("health:read"))) -> JSON:
    """The patient's readings of the last 7, 30 or 90 days (local times) with day summaries."""
    if days not in TREND_DAYS:
        raise ValidationFailedError(fields=[{"loc": ["query", "days"], "msg": "days must be 7, 30 or 90"}])
    with read_tx() as session:
        pid = service.patient_id(session, patient_id)
        return JSON(measurements.trend(session, pid, days, kind, utc_now()))


@router.put("/patients/{patient_id}/conditions/{code}", status_code=201,
            responses={200: {"description": "already recorded; updated"}})
def set_condition(patient_id: str, code: ConditionCode, body: ConditionSet,
                  p: Principal = Depends(require("health:write"))) -> JSON:
    """Record a chronic condition (慢病) of the patient, or update it; audited."""
    with write_tx() as session:
        pid = service.patient_id(session, patient_id)
        doc, started = conditions.set_condition(session, pid, code, body, p.actor(), utc_now())
    return JSON(doc, status_code=201 if started else 200)


@router.delete("/patients/{patient_id}/conditions/{code}")
def end_condition(patient_id: str, code: ConditionCode, p: Principal = Depends(require("health:write"))) -> JSON:
    """End a condition (kept in the registry as ended); audited."""
    with write_tx() as session:
        pid = service.patient_id(session, patient_id)
        return JSON(conditions.end_condition(session, pid, code, p.actor(), utc_now()))


@router.get("/patients/{patient_id}/conditions")
def list_conditions(patient_id: str, include_ended: bool = False,
                    _p: Principal = Depends(require("health:read"))) -> JSON:
    """The patient's chronic conditions (active ones unless `include_ended`)."""
    with read_tx() as session:
        pid = service.patient_id(session, patient_id)
        return JSON({"items": conditions.conditions_of(session, pid, include_ended=include_ended)})


@router.get("/patients/{patient_id}/tasks")
def tasks(patient_id: str, day: date | None = Query(None, alias="date"),
          _p: Principal = Depends(require("health:read"))) -> JSON:
    """The patient's suggested tasks of a local day (today by default): readings the
    conditions ask for, and each planned dose with done / not done."""
    with read_tx() as session:
        pid = service.patient_id(session, patient_id)
        return JSON(service.tasks_for(session, pid, day or local_date(utc_now(), get_settings().tz)))


@router.post("/patients/{patient_id}/medication-plans", status_code=201)
def create_plan(patient_id: str, body: PlanCreate, p: Principal = Depends(require("health:write"))) -> JSON:
    """Create a medication plan (planned local times each day); audited."""
    with write_tx() as session:
        pid = service.patient_id(session, patient_id)
        return JSON(medication.create_plan(session, pid, body, p.actor(), utc_now()), status_code=201)


@router.get("/patients/{patient_id}/medication-plans")
def list_plans(patient_id: str, _p: Principal = Depends(require("health:read"))) -> JSON:
    """The patient's medication plans, active and stopped."""
    with read_tx() as session:
        pid = service.patient_id(session, patient_id)
        return JSON({"items": medication.plans_of(session, pid)})


@router.post("/medication-plans/{plan_id}/stop")
def stop_plan(plan_id: str, p: Principal = Depends(require("health:write"))) -> JSON:
    """Stop a plan: no more reminders or check-ins; again changes nothing."""
    with write_tx() as session:
        return JSON(medication.stop_plan(session, plan_id, p.actor(), utc_now()))


@router.post("/medication-plans/{plan_id}/doses", status_code=201,
             responses={200: {"description": "this planned time was already checked in (duplicate)"}})
def check_in_dose(plan_id: str, body: DoseCheckIn, p: Principal = Depends(require("health:write"))) -> JSON:
    """Check in a dose: the planned time named, or the nearest one of the day within the
    window (409 `health.no_dose_due` otherwise); one per planned time counts."""
    with write_tx() as session:
        doc, created = medication.check_in(session, plan_id, body, p.actor(), utc_now())
    return JSON(doc, status_code=201 if created else 200)
