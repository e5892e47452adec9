"""Answering: a follow-up step (by the patient in the app, or a nurse recording a phone
follow-up) and the monthly satisfaction survey. One response per step and per patient
and month (unique constraints; the step row is locked on PostgreSQL). Completion
emits `followup.completed` / `survey.completed` to the spine in the same transaction;
abnormal answers raise care alerts carrying question ids, never the answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.orm import Session

from carepoints.audit import service as audit
from carepoints.audit.service import Actor
from carepoints.engagement import spine
from carepoints.engagement.care import service as care
from carepoints.engagement.care.schemas import AlertKind
from carepoints.engagement.followups import scoring, service
from carepoints.engagement.followups.errors import (
    IdempotencyConflictError,
    InvalidAnswersError,
    PeriodClosedError,
    PlanCancelledError,
    RecordedByRequiredError,
    StaffNotFoundError,
    StepCompletedError,
    StepNotDueError,
    StepNotFoundError,
    SurveyAnsweredError,
    WrongPurposeError,
)
from carepoints.engagement.followups.models import FollowupStep, QuestionnaireResponse
from carepoints.engagement.followups.schemas import Channel, Purpose, ResponseCreate, SurveyResponseCreate
from carepoints.kit.db import is_postgres, table
from carepoints.kit.errors import AppError
from carepoints.kit.ids import is_id, new_id
from carepoints.security import service as security

NOTIFIED = {"zh": "您的部分回答需要医护人员进一步了解,我们会尽快与您联系。如感觉不适,请及时就医。",
            "en": "Some of your answers need a closer look from your care team; they will contact you soon. "
                  "If you feel unwell, please see a doctor."}
_steps = table(FollowupStep)
_responses = table(QuestionnaireResponse)


def _recorder(session: Session, channel: Channel, recorded_by: str | None, actor: Actor) -> str | None:
    """The staff user who recorded the answers: named, or the staff caller; a phone
    follow-up must have one."""
    if recorded_by is None and actor.kind == "staff":
        recorded_by = actor.id
    if recorded_by is None:
        if channel == Channel.phone:
            raise RecordedByRequiredError()
        return None
    if not is_id(recorded_by) or security.active_staff(session, recorded_by) is None:
        raise StaffNotFoundError()
    return recorded_by


def _checked(template: RowMapping, answers: dict[str, Any]) -> list[tuple[str, str]]:
    errors = scoring.validate(template["questions"], answers)
    if errors:
        raise InvalidAnswersError(fields=errors)
    return scoring.abnormal(template["questions"], answers)


def _store(session: Session, template: RowMapping, patient_id: str, answers: dict[str, Any], channel: str,
           hits: list[tuple[str, str]], actor: Actor, now: datetime, **fields: Any) -> str:
    rid = new_id()
    session.connection().execute(insert(_responses), [{
        "id": rid, "patient_id": patient_id, "questionnaire_id": template["id"], "answers": answers,
        "answers_digest": service.digest(answers), "channel": channel, "actor_kind": actor.kind,
        "actor_id": actor.id, "abnormal": [q for q, _ in hits], "created_at": now,
        "step_id": None, "survey_period": None, "recorded_by": None, "idempotency_key": None, **fields}])
    for qid, severity in hits:
        care.raise_alert(session, patient_id=patient_id, kind=AlertKind.abnormal_answer,
                         source_ref=f"answer:{rid}:{qid}", now=now, severity=severity,
                         details={"questionnaire": template["code"], "version": template["version"],
                                  "question_id": qid, "response_id": rid})
    return rid


def _replay(stored: RowMapping, key: str | None, answers: dict[str, Any], busy: type[AppError]) -> None:
    """A second answer is the first one replayed (same idempotency key and answers) or an error."""
    if key is None or stored["idempotency_key"] != key:
        raise busy()
    if stored["answers_digest"] != service.digest(answers):
        raise IdempotencyConflictError()


def _doc(response: RowMapping, template: RowMapping, outcome: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": response["id"], "patient_id": response["patient_id"], "channel": response["channel"],
            "questionnaire": {"code": template["code"], "version": template["version"]},
            "recorded_by": response["recorded_by"], "created_at": response["created_at"].isoformat(),
            "care_team_notified": bool(response["abnormal"]),
            "message": NOTIFIED if response["abnormal"] else None, "outcome": outcome, **extra}


def _response(session: Session, response_id: str) -> RowMapping:
    return session.connection().execute(select(_responses).where(_responses.c.id == response_id)).mappings().one()


def _step(session: Session, step_id: str) -> RowMapping:
    if not is_id(step_id):
        raise StepNotFoundError()
    stmt = select(_steps).where(_steps.c.id == step_id)
    if is_postgres(session):
        stmt = stmt.with_for_update()  # two answers to one step queue here; the second sees it completed
    row = session.connection().execute(stmt).mappings().first()
    if row is None:
        raise StepNotFoundError()
    return row


def _completion(session: Session, step: RowMapping, plan: dict[str, Any], response: RowMapping,
                now: datetime) -> dict[str, Any]:
    """Emit (or replay) the step's `followup.completed`; its outcome."""
    return spine.emit(session, "followup.completed", step["patient_id"], response["created_at"], now,
                 f"followup:{step['id']}", {"plan_id": step["plan_id"], "step": step["offset_days"],
                                            "kind": plan["kind"], "channel": response["channel"]})


def answer_step(session: Session, step_id: str, body: ResponseCreate, actor: Actor, now: datetime
                ) -> tuple[dict[str, Any], bool]:
    """Record the response to a due (or overdue) step, validated against the current
    version of the plan's questionnaire; emit `followup.completed` (the rules pay it once
    per plan and step); audit it with the caller and the recording nurse. A second answer
    is a 409 unless it replays the first (same idempotency key): then the same result (False)."""
    step = _step(session, step_id)
    plan = service.get_plan(session, step["plan_id"], now)
    if step["status"] == "completed":
        stored = _response(session, step["response_id"])
        _replay(stored, body.idempotency_key, body.answers, StepCompletedError)
        template = service.by_id(session, stored["questionnaire_id"])
        return _doc(stored, template, _completion(session, step, plan, stored, now), step_id=step["id"],
                    plan_id=step["plan_id"], step=step["offset_days"]), False
    if step["status"] == "cancelled" or plan["status"] != "active":
        raise PlanCancelledError()
    if service.today(now) < step["due_on"]:
        raise StepNotDueError()
    recorded_by = _recorder(session, body.channel, body.recorded_by, actor)
    template = service.current(session, plan["questionnaire"])
    hits = _checked(template, body.answers)
    rid = _store(session, template, step["patient_id"], body.answers, body.channel.value, hits, actor, now,
                 step_id=step["id"], recorded_by=recorded_by, idempotency_key=body.idempotency_key)
    done = session.connection().execute(
        update(_steps).where(_steps.c.id == step["id"], _steps.c.status == "pending")
        .values(status="completed", response_id=rid, completed_at=now).returning(_steps.c.id)).first()
    if done is None:  # the unique step_id above already stops a racer; this is the guard's second half
        raise StepCompletedError()
    audit.record(session, actor, "followups:step:answer", now, subject_id=rid, patient_id=step["patient_id"],
                 step_id=step["id"], plan_id=step["plan_id"], channel=body.channel.value, recorded_by=recorded_by,
                 questionnaire=template["code"], version=template["version"], alerts=len(hits))
    stored = _response(session, rid)
    return _doc(stored, template, _completion(session, step, plan, stored, now), step_id=step["id"],
                plan_id=step["plan_id"], step=step["offset_days"]), True


def survey_answered(session: Session, patient_id: str, now: datetime) -> bool:
    """Whether the patient has answered this month's satisfaction survey."""
    period = scoring.period_of(service.today(now))
    return session.connection().execute(select(_responses.c.id).where(
        _responses.c.patient_id == patient_id, _responses.c.survey_period == period).limit(1)).first() is not None


def answer_survey(session: Session, body: SurveyResponseCreate, actor: Actor, now: datetime
                  ) -> tuple[dict[str, Any], bool]:
    """Store a patient's monthly satisfaction survey (this month by default, or last
    month) and emit `survey.completed` (source key `survey:{patient}:{period}`, so once
    per period). A second response for the period is a 409 unless it replays the first."""
    pid = service.patient_of(session, body.patient_id, body.patient)
    day = service.today(now)
    period = body.period or scoring.period_of(day)
    if not scoring.period_open(period, day):
        raise PeriodClosedError()
    stored = session.connection().execute(select(_responses).where(
        _responses.c.patient_id == pid, _responses.c.survey_period == period)).mappings().first()
    if stored is not None:
        _replay(stored, body.idempotency_key, body.answers, SurveyAnsweredError)
        template = service.by_id(session, stored["questionnaire_id"])
        return _doc(stored, template, _survey_event(session, stored, now), period=period), False
    if body.questionnaire is None:
        template = service.satisfaction_template(session, now)
    else:
        template = service.current(session, body.questionnaire)
    if template["purpose"] != Purpose.satisfaction.value:
        raise WrongPurposeError()
    hits = _checked(template, body.answers)
    recorded_by = actor.id if actor.kind == "staff" else None
    rid = _store(session, template, pid, body.answers, Channel.app.value, hits, actor, now, survey_period=period,
                 recorded_by=recorded_by, idempotency_key=body.idempotency_key)
    audit.record(session, actor, "followups:survey:answer", now, subject_id=rid, patient_id=pid, period=period,
                 questionnaire=template["code"], version=template["version"])
    stored = _response(session, rid)
    return _doc(stored, template, _survey_event(session, stored, now), period=period), True


def _survey_event(session: Session, response: RowMapping, now: datetime) -> dict[str, Any]:
    period = response["survey_period"]
    return spine.emit(session, "survey.completed", response["patient_id"], response["created_at"], now,
                 f"survey:{response['patient_id']}:{period}", {"survey_id": response["id"], "period": period})
