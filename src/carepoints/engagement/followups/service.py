"""Questionnaire templates (versioned), follow-up plans and their steps, the nurses'
queue, and the two daily sweeps: `followup.due` notices and overdue care alerts.
Staff writes are audited in their transaction; services never commit."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

import orjson
from sqlalchemy import and_, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.orm import Session

from carepoints.audit import service as audit
from carepoints.audit.service import Actor
from carepoints.config import get_settings
from carepoints.engagement.care import service as care
from carepoints.engagement.care.schemas import AlertKind
from carepoints.engagement.followups import scoring
from carepoints.engagement.followups.errors import (
    OccurredInFutureError,
    PlanCancelledError,
    PlanConflictError,
    PlanNotFoundError,
    QuestionnaireNotFoundError,
    StepNotFoundError,
    WrongPurposeError,
)
from carepoints.engagement.followups.models import FollowupPlan, FollowupStep, Questionnaire
from carepoints.engagement.followups.schemas import PlanCancel, PlanCreate, Purpose, QuestionnaireCreate, StepState
from carepoints.kit.bulk import insert_new
from carepoints.kit.db import is_postgres, table
from carepoints.kit.errors import ConflictError
from carepoints.kit.ids import is_id, new_id
from carepoints.kit.outbox import enqueue_many
from carepoints.kit.time import local_date
from carepoints.patients import service as patients
from carepoints.patients.errors import PatientNotFoundError
from carepoints.scheduling.schemas import PatientRef

_q = table(Questionnaire)
_plans = table(FollowupPlan)
_steps = table(FollowupStep)
BATCH = 500
DUE_TOPIC = "followup.due"


def today(now: datetime) -> date:
    return local_date(now, get_settings().tz)


def patient_of(session: Session, patient_id: str | None, ref: PatientRef | None) -> str:
    """The patient a request names, locked for the rest of the transaction (PostgreSQL)."""
    return patients.locked(session, patient_id, ref).patient_id


# --- questionnaire templates --------------------------------------------------------------

def _stored_questions(body: QuestionnaireCreate) -> list[dict[str, Any]]:
    out = []
    for q in body.questions:
        doc = q.model_dump(mode="json", exclude_none=True, exclude={"alert"})
        doc["alerts"] = [r.model_dump(mode="json", exclude_none=True) for r in q.rules()]
        out.append(doc)
    return out


def digest(value: Any) -> str:
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()


def questionnaire_doc(row: RowMapping | dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "code": row["code"], "version": row["version"], "title": row["title"],
            "purpose": row["purpose"], "questions": row["questions"], "created_at": row["created_at"].isoformat()}


def current(session: Session, code: str) -> RowMapping:
    """The latest version of a template (404 when there is none)."""
    row = session.connection().execute(
        select(_q).where(_q.c.code == code).order_by(_q.c.version.desc()).limit(1)).mappings().first()
    if row is None:
        raise QuestionnaireNotFoundError()
    return row


def version(session: Session, code: str, number: int | None) -> RowMapping:
    if number is None:
        return current(session, code)
    row = session.connection().execute(
        select(_q).where(_q.c.code == code, _q.c.version == number)).mappings().first()
    if row is None:
        raise QuestionnaireNotFoundError()
    return row


def by_id(session: Session, questionnaire_id: str) -> RowMapping:
    row = session.connection().execute(select(_q).where(_q.c.id == questionnaire_id)).mappings().first()
    if row is None:
        raise QuestionnaireNotFoundError()
    return row


def _add_version(session: Session, code: str, number: int, content: dict[str, Any], now: datetime) -> bool:
    return insert_new(session.connection(), _q, {
        "id": new_id(), "code": code, "version": number, "title": content["title"], "purpose": content["purpose"],
        "questions": content["questions"], "digest": digest(content), "created_at": now}, ("code", "version"))


def save_questionnaire(session: Session, body: QuestionnaireCreate, actor: Actor, now: datetime
                       ) -> tuple[dict[str, Any], bool]:
    """Store a template: the same content as the latest version answers that version
    (False); changed content is a new version (True). Responses keep their version."""
    content = {"title": body.title.model_dump(mode="json", exclude_none=True), "purpose": body.purpose.value,
               "questions": _stored_questions(body)}
    try:
        latest: RowMapping | None = current(session, body.code)
    except QuestionnaireNotFoundError:
        latest = None
    if latest is not None and latest["digest"] == digest(content):
        return questionnaire_doc(latest), False
    number = 1 if latest is None else latest["version"] + 1
    if not _add_version(session, body.code, number, content, now):
        raise ConflictError("问卷正在被同时修改,请重试 / The questionnaire changed meanwhile; try again")
    row = current(session, body.code)
    audit.record(session, actor, "followups:questionnaire:create", now, subject_id=row["id"], code=body.code,
                 version=number)
    return questionnaire_doc(row), True


SATISFACTION_CODE = "satisfaction_monthly"
_LEVELS = [("very_satisfied", "非常满意", "Very satisfied"), ("satisfied", "满意", "Satisfied"),
           ("neutral", "一般", "Neutral"), ("dissatisfied", "不满意", "Dissatisfied"),
           ("very_dissatisfied", "非常不满意", "Very dissatisfied")]


def _level_question(qid: str, zh: str, en: str) -> dict[str, Any]:
    return {"id": qid, "text": {"zh": zh, "en": en}, "type": "single", "required": True, "alerts": [],
            "choices": [{"value": v, "label": {"zh": z, "en": e}} for v, z, e in _LEVELS]}


SATISFACTION = {
    "title": {"zh": "月度满意度调查", "en": "Monthly satisfaction survey"}, "purpose": Purpose.satisfaction.value,
    "questions": [
        _level_question("overall", "您对本月就诊服务的总体满意度", "Overall, how satisfied were you this month?"),
        _level_question("waiting", "您对候诊时间的满意度", "How satisfied were you with the waiting time?"),
        _level_question("staff", "您对医护人员服务态度的满意度", "How satisfied were you with our staff?"),
        {"id": "recommend", "text": {"zh": "您向亲友推荐本院的可能性(0-10)",
                                     "en": "How likely are you to recommend us (0-10)?"},
         "type": "number", "min": 0, "max": 10, "required": False, "alerts": []},
        {"id": "comments", "text": {"zh": "其他意见或建议", "en": "Other comments"}, "type": "text",
         "required": False, "alerts": []},
    ]}


def satisfaction_template(session: Session, now: datetime) -> RowMapping:
    """The default satisfaction survey, created on first use (idempotent, race-safe)."""
    try:
        return current(session, SATISFACTION_CODE)
    except QuestionnaireNotFoundError:
        _add_version(session, SATISFACTION_CODE, 1, SATISFACTION, now)
        return current(session, SATISFACTION_CODE)


# --- plans ----------------------------------------------------------------------------------

def _step_state(step: RowMapping, day: date) -> str:
    if step["status"] == "completed":
        return StepState.completed.value
    if step["status"] == "cancelled":
        return StepState.cancelled.value
    return scoring.state(step["due_on"], step["overdue_on"], day)


def step_doc(step: RowMapping, day: date) -> dict[str, Any]:
    return {"id": step["id"], "plan_id": step["plan_id"], "patient_id": step["patient_id"],
            "step": step["offset_days"], "position": step["position"], "channel": step["channel"],
            "due_on": step["due_on"].isoformat(), "due_until": (step["overdue_on"] - timedelta(days=1)).isoformat(),
            "state": _step_state(step, day), "response_id": step["response_id"],
            "completed_at": step["completed_at"].isoformat() if step["completed_at"] else None}


def _plan_row(session: Session, plan_id: str, *, lock: bool = False) -> RowMapping:
    if not is_id(plan_id):
        raise PlanNotFoundError()
    stmt = select(_plans).where(_plans.c.id == plan_id)
    if lock and is_postgres(session):
        stmt = stmt.with_for_update()
    row = session.connection().execute(stmt).mappings().first()
    if row is None:
        raise PlanNotFoundError()
    return row


def _plan_steps(session: Session, plan_ids: Sequence[str]) -> dict[str, list[RowMapping]]:
    out: dict[str, list[RowMapping]] = {p: [] for p in plan_ids}
    if plan_ids:
        for s in session.connection().execute(select(_steps).where(_steps.c.plan_id.in_(list(plan_ids)))
                                              .order_by(_steps.c.position)).mappings():
            out[s["plan_id"]].append(s)
    return out


def _plan_doc(plan: RowMapping, steps: list[RowMapping], day: date) -> dict[str, Any]:
    return {"id": plan["id"], "patient_id": plan["patient_id"], "trigger": plan["trigger"],
            "occurred_on": plan["occurred_on"].isoformat(), "questionnaire": plan["questionnaire_code"],
            "kind": plan["kind"], "channel": plan["channel"], "encounter_id": plan["encounter_id"],
            "status": plan["status"], "cancel_reason": plan["cancel_reason"],
            "created_at": plan["created_at"].isoformat(),
            "cancelled_at": plan["cancelled_at"].isoformat() if plan["cancelled_at"] else None,
            "steps": [step_doc(s, day) for s in steps]}


def get_plan(session: Session, plan_id: str, now: datetime) -> dict[str, Any]:
    plan = _plan_row(session, plan_id)
    return _plan_doc(plan, _plan_steps(session, [plan_id])[plan_id], today(now))


def patient_plans(session: Session, patient_id: str, now: datetime) -> dict[str, Any]:
    """A patient's plans, newest first, with their steps."""
    found, _refs = patients.resolve(session, [patient_id], [])
    if patient_id not in found:
        raise PatientNotFoundError()
    plans = session.connection().execute(
        select(_plans).where(_plans.c.patient_id == patient_id)
        .order_by(_plans.c.created_at.desc(), _plans.c.id.desc()).limit(200)).mappings().all()
    steps = _plan_steps(session, [p["id"] for p in plans])
    day = today(now)
    return {"items": [_plan_doc(p, steps[p["id"]], day) for p in plans]}


def _same_plan(plan: RowMapping, steps: list[RowMapping], body: PlanCreate, offsets: list[int]) -> bool:
    return (plan["occurred_on"] == body.occurred_on and plan["questionnaire_code"] == body.questionnaire
            and plan["kind"] == body.kind_or_default().value and plan["channel"] == body.channel.value
            and [s["offset_days"] for s in steps] == offsets)


def create_plan(session: Session, body: PlanCreate, actor: Actor, now: datetime) -> tuple[dict[str, Any], bool]:
    """Schedule the plan's steps on the local calendar (occurred_on + offset days, due
    for the due window, then overdue). The same (patient, trigger, encounter_id) again
    answers the stored plan (False) or, with different content, a 409. Audited."""
    settings = get_settings()
    pid = patient_of(session, body.patient_id, body.patient)
    template = current(session, body.questionnaire)
    if template["purpose"] == Purpose.satisfaction.value:
        raise WrongPurposeError()
    if body.occurred_on > today(now):
        raise OccurredInFutureError()
    offsets = sorted(body.offsets or scoring.parse_offsets(settings.followup_offsets))
    conn = session.connection()
    if body.encounter_id is not None:
        existing = conn.execute(select(_plans).where(
            _plans.c.patient_id == pid, _plans.c.trigger == body.trigger.value,
            _plans.c.encounter_id == body.encounter_id)).mappings().first()
        if existing is not None:
            steps = _plan_steps(session, [existing["id"]])[existing["id"]]
            if not _same_plan(existing, steps, body, offsets):
                raise PlanConflictError()
            return _plan_doc(existing, steps, today(now)), False
    plan_id = new_id()
    conn.execute(insert(_plans), [{
        "id": plan_id, "patient_id": pid, "trigger": body.trigger.value, "occurred_on": body.occurred_on,
        "questionnaire_code": body.questionnaire, "kind": body.kind_or_default().value,
        "channel": body.channel.value, "encounter_id": body.encounter_id, "status": "active",
        "cancel_reason": None, "created_at": now, "cancelled_at": None}])
    conn.execute(insert(_steps), [{
        "id": new_id(), "plan_id": plan_id, "patient_id": pid, "offset_days": offset, "position": i,
        "channel": body.channel.value, "due_on": scoring.due_on(body.occurred_on, offset),
        "overdue_on": scoring.overdue_on(scoring.due_on(body.occurred_on, offset), settings.followup_due_window_days),
        "status": "pending", "response_id": None, "completed_at": None, "due_notified_at": None,
        "overdue_flagged_at": None} for i, offset in enumerate(offsets, start=1)])
    audit.record(session, actor, "followups:plan:create", now, subject_id=plan_id, patient_id=pid,
                 trigger=body.trigger.value, questionnaire=body.questionnaire, kind=body.kind_or_default().value,
                 channel=body.channel.value, offsets=offsets)
    return get_plan(session, plan_id, now), True


def cancel_plan(session: Session, plan_id: str, body: PlanCancel, actor: Actor, now: datetime) -> dict[str, Any]:
    """Cancel a plan: its steps still waiting are cancelled (answered ones stay). Audited;
    cancelling a cancelled plan is a 409."""
    plan = _plan_row(session, plan_id, lock=True)
    if plan["status"] != "active":
        raise PlanCancelledError()
    conn = session.connection()
    conn.execute(update(_plans).where(_plans.c.id == plan_id, _plans.c.status == "active")
                 .values(status="cancelled", cancelled_at=now, cancel_reason=body.reason))
    conn.execute(update(_steps).where(_steps.c.plan_id == plan_id, _steps.c.status == "pending")
                 .values(status="cancelled"))
    audit.record(session, actor, "followups:plan:cancel", now, subject_id=plan_id, patient_id=plan["patient_id"],
                 reason=body.reason)
    return get_plan(session, plan_id, now)


# --- the nurses' queue ------------------------------------------------------------------------

def queue(session: Session, *, state: StepState, day: date, channel: str | None = None, limit: int = 100,
          offset: int = 0) -> dict[str, Any]:
    """Steps still waiting for their response that are `state` on local `day`: due first
    (earliest due day first), with the plan's kind, trigger and questionnaire."""
    s, p = _steps, _plans
    stmt = (select(s, p.c.kind, p.c.trigger, p.c.questionnaire_code).join(p, p.c.id == s.c.plan_id)
            .where(s.c.status == "pending"))
    if state == StepState.due:
        stmt = stmt.where(and_(s.c.due_on <= day, s.c.overdue_on > day))
    elif state == StepState.overdue:
        stmt = stmt.where(s.c.overdue_on <= day)
    elif state == StepState.upcoming:
        stmt = stmt.where(s.c.due_on > day)
    else:
        return {"items": [], "next_offset": None, "date": day.isoformat()}
    if channel is not None:
        stmt = stmt.where(s.c.channel == channel)
    rows = session.connection().execute(
        stmt.order_by(s.c.due_on, s.c.id).limit(limit + 1).offset(offset)).mappings().all()
    items = [{**step_doc(r, day), "step_id": r["id"], "kind": r["kind"], "trigger": r["trigger"],
              "questionnaire": r["questionnaire_code"]} for r in rows[:limit]]
    return {"items": items, "next_offset": offset + limit if len(rows) > limit else None, "date": day.isoformat()}



def step_view(session: Session, step_id: str, now: datetime) -> dict[str, Any]:
    """(pages.queues) One step for the nurse recording a phone follow-up: the step (its state
    today), its plan and the questionnaire version an answer is checked against now."""
    row = session.connection().execute(select(_steps).where(_steps.c.id == step_id)).mappings().first() \
        if is_id(step_id) else None
    if row is None:
        raise StepNotFoundError()
    plan = get_plan(session, row["plan_id"], now)
    return {"step": step_doc(row, today(now)), "plan": plan,
            "questionnaire": questionnaire_doc(current(session, plan["questionnaire"]))}

# --- daily sweeps -----------------------------------------------------------------------------

def _claim(session: Session, where: Any, mark: str, now: datetime) -> list[RowMapping]:
    """Set `mark` on up to BATCH steps matching `where` that do not carry it yet; the
    guarded UPDATE decides, so concurrent runs never claim a step twice."""
    conn = session.connection()
    ids = [r[0] for r in conn.execute(select(_steps.c.id).where(where, _steps.c[mark].is_(None))
                                      .order_by(_steps.c.id).limit(BATCH))]
    if not ids:
        return []
    claimed = [r[0] for r in conn.execute(update(_steps).where(_steps.c.id.in_(ids), _steps.c[mark].is_(None))
                                          .values({mark: now}).returning(_steps.c.id))]
    if not claimed:
        return []
    return list(conn.execute(select(_steps, _plans.c.questionnaire_code).join(_plans, _plans.c.id == _steps.c.plan_id)
                             .where(_steps.c.id.in_(claimed)).order_by(_steps.c.id)).mappings())


def _due_at(step: RowMapping) -> str:
    """The end of the step's due window (its last local day, 23:59:59), ISO 8601 with offset."""
    last = step["overdue_on"] - timedelta(days=1)
    return datetime.combine(last, time(23, 59, 59), tzinfo=get_settings().tz).isoformat()


def remind_due(session: Session, now: datetime) -> int:
    """Queue `followup.due` once per app / SMS step that is due today (phone steps are
    the nurses' queue); answers how many were queued."""
    day = today(now)
    where = and_(_steps.c.status == "pending", _steps.c.channel.in_(["app", "sms"]), _steps.c.due_on <= day,
                 _steps.c.overdue_on > day)
    total = 0
    while batch := _claim(session, where, "due_notified_at", now):
        enqueue_many(session.connection(), [(DUE_TOPIC, s["patient_id"], {
            "patient_id": s["patient_id"], "plan_id": s["plan_id"], "step_id": s["id"], "step": s["offset_days"],
            "due_at": _due_at(s)}) for s in batch], now)
        total += len(batch)
    return total


def flag_overdue(session: Session, now: datetime) -> int:
    """Raise one care alert (overdue_followup, source_ref `overdue:{step_id}`) per step
    that became overdue without a response; a step is flagged once, and the alert's own
    (kind, source_ref) key makes a re-run raise nothing. Answers the alerts raised."""
    where = and_(_steps.c.status == "pending", _steps.c.overdue_on <= today(now))
    raised = 0
    while batch := _claim(session, where, "overdue_flagged_at", now):
        for s in batch:
            if care.raise_alert(session, patient_id=s["patient_id"], kind=AlertKind.overdue_followup,
                                source_ref=f"overdue:{s['id']}", now=now, severity="normal",
                                details={"plan_id": s["plan_id"], "step_id": s["id"], "step": s["offset_days"],
                                         "questionnaire": s["questionnaire_code"]}):
                raised += 1
    return raised
