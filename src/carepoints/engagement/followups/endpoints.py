"""Questionnaire, follow-up and survey API: templates (content team), plans and the
queue (nurses, the HIS), answers (the patient's app or a nurse on the phone)."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Depends, Path, Query

from carepoints.engagement.followups import responses, service
from carepoints.engagement.followups.schemas import (
    Channel,
    PlanCancel,
    PlanCreate,
    QuestionnaireCreate,
    ResponseCreate,
    StepState,
    SurveyResponseCreate,
)
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.errors import PermissionDeniedError
from carepoints.kit.time import utc_now
from carepoints.kit.web import JSON
from carepoints.security.deps import require, require_any  # (trust.auth) the matrix and patient reach
from carepoints.security.service import Principal

router = APIRouter(tags=["follow-ups"])


_reader = require_any("followups:read", "engagement:read")
_answerer = require_any("followups:write", "engagement:write")


@router.post("/questionnaires")
def save_questionnaire(body: QuestionnaireCreate, p: Principal = Depends(require("content:write"))) -> JSON:
    """Create a questionnaire template, or a new version of it when its content changed
    (201); the same content as the latest version answers that version (200)."""
    with write_tx() as session:
        doc, created = service.save_questionnaire(session, body, p.actor(), utc_now())
    return JSON(doc, status_code=201 if created else 200)


@router.get("/questionnaires/{code}")
def get_questionnaire(code: str = Path(max_length=64), version: int | None = Query(None, ge=1, le=100_000),
                      _p: Principal = Depends(_reader)) -> JSON:
    """A questionnaire template: the latest version, or the one asked for."""
    with read_tx() as session:
        return JSON(service.questionnaire_doc(service.version(session, code, version)))


@router.post("/followup-plans")
def create_plan(body: PlanCreate, p: Principal = Depends(require("followups:write"))) -> JSON:
    """Plan follow-up questionnaires after a discharge or surgery (default day 3, 7, 30);
    a resend for the same encounter answers the stored plan (200)."""
    with write_tx() as session:
        doc, created = service.create_plan(session, body, p.actor(), utc_now())
    return JSON(doc, status_code=201 if created else 200)


@router.get("/followup-plans/{plan_id}")
def get_plan(plan_id: str, _p: Principal = Depends(_reader)) -> JSON:
    """A follow-up plan with its steps and their state today."""
    with read_tx() as session:
        return JSON(service.get_plan(session, plan_id, utc_now()))


@router.post("/followup-plans/{plan_id}/cancel")
def cancel_plan(plan_id: str, body: PlanCancel | None = None,
                p: Principal = Depends(require("followups:write"))) -> JSON:
    """Cancel a plan: its steps not yet answered are dropped from the queue."""
    with write_tx() as session:
        return JSON(service.cancel_plan(session, plan_id, body or PlanCancel(), p.actor(), utc_now()))


@router.get("/patients/{patient_id}/followup-plans")
def patient_plans(patient_id: str = Path(max_length=64), _p: Principal = Depends(_reader)) -> JSON:
    """A patient's follow-up plans, newest first."""
    with read_tx() as session:
        return JSON(service.patient_plans(session, patient_id, utc_now()))


@router.get("/followups/queue")
def followup_queue(state: StepState = StepState.due, channel: Channel | None = None,
                   on: date | None = Query(None, alias="date"), limit: int = Query(100, ge=1, le=500),
                   offset: int = Query(0, ge=0, le=100_000),
                   _p: Principal = Depends(require("followups:read"))) -> JSON:
    """The nurses' queue: steps due, overdue or upcoming on a local day (default today)."""
    with read_tx() as session:
        return JSON(service.queue(session, state=state, day=on or service.today(utc_now()),
                                  channel=channel.value if channel else None, limit=limit, offset=offset))


@router.post("/followup-steps/{step_id}/responses")
def answer_step(step_id: str, body: ResponseCreate, p: Principal = Depends(_answerer)) -> JSON:
    """Answer a follow-up: the patient in the app, or a nurse recording a phone follow-up
    (`followups:write`). Emits `followup.completed`; abnormal answers alert the care team."""
    if body.channel == Channel.phone and not p.can("followups:write"):
        raise PermissionDeniedError(permission="followups:write")
    with write_tx() as session:
        doc, created = responses.answer_step(session, step_id, body, p.actor(), utc_now())
    return JSON(doc, status_code=201 if created else 200)


@router.post("/surveys/satisfaction/responses")
def answer_survey(body: SurveyResponseCreate, p: Principal = Depends(_answerer)) -> JSON:
    """The monthly satisfaction survey (once per patient and month); emits `survey.completed`."""
    with write_tx() as session:
        doc, created = responses.answer_survey(session, body, p.actor(), utc_now())
    return JSON(doc, status_code=201 if created else 200)
