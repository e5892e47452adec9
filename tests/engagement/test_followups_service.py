"""Follow-up plans, answers, jobs and surveys on both databases, through the services
with a fixed clock (and a few requests over HTTP)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import func, select

from carepoints.audit import service as audit
from carepoints.audit.service import Actor
from carepoints.engagement.care.models import CareAlert
from carepoints.engagement.followups import errors, responses, service, tasks
from carepoints.engagement.followups.models import FollowupStep
from carepoints.engagement.followups.schemas import (
    PlanCancel,
    PlanCreate,
    QuestionnaireCreate,
    ResponseCreate,
    StepState,
    SurveyResponseCreate,
)
from carepoints.kit.db import read_tx, table, write_tx
from carepoints.kit.outbox import OutboxMessage
from tests.conftest import Db
from tests.helpers import assert_ledger_intact, balance, enrol, error
from tests.locks import errors as race_errors
from tests.locks import oks, race

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]
STAFF = Actor("api_key", "k-test", "admin")
NOW = datetime(2026, 2, 1, 2, 0, tzinfo=UTC)  # 2026-02-01 10:00 Shanghai
TEMPLATE: dict[str, Any] = {"code": "post_op", "title": {"zh": "术后随访"}, "purpose": "rehab", "questions": [
    {"id": "pain", "text": {"zh": "疼痛"}, "type": "single", "required": True,
     "choices": [{"value": "none", "label": {"zh": "无"}}, {"value": "severe_pain", "label": {"zh": "剧烈"}}],
     "alert": {"any_of": ["severe_pain"], "severity": "high"}},
    {"id": "temp", "text": {"zh": "体温"}, "type": "number", "min": 34, "max": 43, "required": True,
     "alert": {"gte": 38.5, "severity": "critical"}}]}
OK = {"pain": "none", "temp": 36.8}


def setup_plan(now: datetime, occurred: date, **extra: Any) -> tuple[str, dict[str, Any]]:
    pid = enrol(now)
    with write_tx() as s:
        service.save_questionnaire(s, QuestionnaireCreate.model_validate(TEMPLATE), STAFF, now)
        plan, _ = service.create_plan(s, PlanCreate.model_validate({
            "patient_id": pid, "trigger": "surgery", "occurred_on": occurred.isoformat(), "questionnaire": "post_op",
            "channel": "app", **extra}), STAFF, now)
    return pid, plan


def answer(step_id: str, now: datetime, answers: dict[str, Any] = OK, **extra: Any) -> dict[str, Any]:
    with write_tx() as s:
        return responses.answer_step(s, step_id, ResponseCreate.model_validate(
            {"answers": answers, "channel": "app", **extra}), STAFF, now)[0]


def count(model: Any, *where: Any) -> int:
    t = table(model)
    with read_tx() as s:
        return int(s.connection().execute(select(func.count()).select_from(t).where(*where)).scalar_one())


def test_steps_across_month_end_and_states(db: Db) -> None:
    _pid, plan = setup_plan(NOW, date(2026, 1, 28))
    assert [(s["step"], s["due_on"], s["due_until"]) for s in plan["steps"]] == [
        (3, "2026-01-31", "2026-02-02"), (7, "2026-02-04", "2026-02-06"), (30, "2026-02-27", "2026-03-01")]
    assert [s["state"] for s in plan["steps"]] == ["due", "upcoming", "upcoming"]
    with read_tx() as s:
        assert [i["step"] for i in service.queue(s, state=StepState.due, day=date(2026, 2, 2))["items"]] == [3]
        assert [i["step"] for i in service.queue(s, state=StepState.overdue, day=date(2026, 2, 3))["items"]] == [3]
        assert service.queue(s, state=StepState.due, day=date(2026, 2, 3))["items"] == []


def test_year_end_and_leap_day(db: Db) -> None:
    _pid, plan = setup_plan(datetime(2027, 1, 2, 2, tzinfo=UTC), date(2026, 12, 29))
    assert plan["steps"][0]["due_on"] == "2027-01-01"
    _pid, plan = setup_plan(datetime(2028, 3, 1, 2, tzinfo=UTC), date(2028, 2, 26), offsets=[3])
    assert plan["steps"][0]["due_on"] == "2028-02-29"


def test_completion_pays_once_and_alerts_once(db: Db) -> None:
    pid, plan = setup_plan(NOW, date(2026, 1, 28))
    step = plan["steps"][0]["id"]
    doc = answer(step, NOW, {"pain": "severe_pain", "temp": 39.0}, idempotency_key="k1")
    assert [a["points"] for a in doc["outcome"]["awards"]] == [50]
    assert doc["care_team_notified"] is True
    assert balance(pid, NOW) == 150
    assert count(CareAlert, table(CareAlert).c.kind == "abnormal_answer") == 2
    again = answer(step, NOW, {"pain": "severe_pain", "temp": 39.0}, idempotency_key="k1")
    assert again["id"] == doc["id"]
    assert again["outcome"]["duplicate"] is True
    assert count(CareAlert) == 2
    assert balance(pid, NOW) == 150
    with pytest.raises(errors.StepCompletedError):
        answer(step, NOW)
    with pytest.raises(errors.IdempotencyConflictError):
        answer(step, NOW, idempotency_key="k1")
    with pytest.raises(errors.StepNotDueError):
        answer(plan["steps"][1]["id"], NOW)
    assert_ledger_intact()


def test_routine_pays_30(db: Db) -> None:
    pid, plan = setup_plan(NOW, date(2026, 1, 28), kind="routine")
    assert [a["points"] for a in answer(plan["steps"][0]["id"], NOW)["outcome"]["awards"]] == [30]
    assert balance(pid, NOW) == 130


def test_invalid_answers_are_422_with_fields(db: Db) -> None:
    _pid, plan = setup_plan(NOW, date(2026, 1, 28))
    with pytest.raises(errors.InvalidAnswersError) as exc:
        answer(plan["steps"][0]["id"], NOW, {"pain": "x", "temp": 50})
    assert {tuple(f["loc"]) for f in exc.value.fields or []} == {("answers", "pain"), ("answers", "temp")}


def test_jobs_are_idempotent(db: Db) -> None:
    setup_plan(NOW, date(2026, 1, 28))
    assert tasks.remind_followups(NOW) == {"notices": 1}
    assert tasks.remind_followups(NOW) == {"notices": 0}
    out = table(OutboxMessage)
    assert count(OutboxMessage, out.c.topic == "followup.due") == 1
    with read_tx() as s:
        payload = s.connection().execute(select(out.c.payload).where(out.c.topic == "followup.due")).scalar_one()
    assert set(payload) == {"patient_id", "plan_id", "step_id", "step", "due_at"}
    assert payload["due_at"].startswith("2026-02-02T23:59:59")
    assert tasks.flag_overdue_followups(NOW) == {"alerts": 0}
    later = datetime(2026, 2, 2, 16, 0, tzinfo=UTC)  # 2026-02-03 00:00 Shanghai
    assert tasks.flag_overdue_followups(later) == {"alerts": 1}
    assert tasks.flag_overdue_followups(later) == {"alerts": 0}
    assert count(CareAlert, table(CareAlert).c.kind == "overdue_followup") == 1


def test_cancelled_plan_refuses_answers(db: Db) -> None:
    _pid, plan = setup_plan(NOW, date(2026, 1, 28))
    with write_tx() as s:
        doc = service.cancel_plan(s, plan["id"], PlanCancel(), STAFF, NOW)
    assert {st["state"] for st in doc["steps"]} == {"cancelled"}
    with pytest.raises(errors.PlanCancelledError):
        answer(plan["steps"][0]["id"], NOW)


def test_survey_once_per_period(db: Db) -> None:
    pid = enrol(NOW)
    body = {"patient_id": pid, "answers": {"overall": "satisfied", "waiting": "neutral", "staff": "satisfied"}}
    with write_tx() as s:
        doc, _ = responses.answer_survey(s, SurveyResponseCreate.model_validate(body), STAFF, NOW)
    assert doc["period"] == "2026-02"
    assert [a["points"] for a in doc["outcome"]["awards"]] == [50]
    with pytest.raises(errors.SurveyAnsweredError), write_tx() as s:
        responses.answer_survey(s, SurveyResponseCreate.model_validate(body), STAFF, NOW)
    with write_tx() as s:
        prev, _ = responses.answer_survey(s, SurveyResponseCreate.model_validate({**body, "period": "2026-01"}),
                                          STAFF, NOW)
    assert prev["period"] == "2026-01"
    with pytest.raises(errors.PeriodClosedError), write_tx() as s:
        responses.answer_survey(s, SurveyResponseCreate.model_validate({**body, "period": "2025-12"}), STAFF, NOW)
    assert balance(pid, NOW) == 200


def test_two_answers_at_once_one_completion(racing: Db) -> None:
    pid, plan = setup_plan(NOW, date(2026, 1, 28))
    step = plan["steps"][0]["id"]
    results = race(racing, [lambda: answer(step, NOW)] * 2, lock=(table(FollowupStep), [step]))
    assert len(oks(results)) == 1
    assert all(isinstance(e, errors.StepCompletedError) for e in race_errors(results))
    assert balance(pid, NOW) == 150
    assert_ledger_intact()


def test_api_phone_followup_is_audited_and_bad_input_is_4xx(api: Api) -> None:
    today = api.now().date()
    assert api.post("/questionnaires", TEMPLATE).status_code == 201
    assert api.post("/questionnaires", TEMPLATE).status_code == 200
    pid = api.enrol()
    yesterday = date.fromordinal(today.toordinal() - 1).isoformat()
    plan_body = {"patient_id": pid, "trigger": "discharge", "occurred_on": yesterday,
                 "questionnaire": "post_op", "channel": "phone", "offsets": [1], "encounter_id": "E1"}
    r = api.post("/followup-plans", plan_body)
    assert r.status_code == 201, r.text
    assert api.post("/followup-plans", plan_body).status_code == 200
    error(api.post("/followup-plans", {**plan_body, "offsets": [2]}), 409, "followups.plan_conflict")
    step = r.json()["steps"][0]["id"]
    assert r.json()["kind"] == "routine"
    error(api.post(f"/followup-steps/{step}/responses", {"answers": OK, "channel": "phone"}), 400,
          "followups.recorded_by_required")
    nurse = api.make_staff("nurse1", "pw-123456789", "nurse")
    r = api.post(f"/followup-steps/{step}/responses", {"answers": OK, "channel": "phone", "recorded_by": nurse})
    assert r.status_code == 201, r.text
    with read_tx() as s:
        rows = audit.entries(s, subject_id=r.json()["id"])
    assert [e["action"] for e in rows] == ["followups:step:answer"]
    assert rows[0]["details"]["recorded_by"] == nurse
    assert "none" not in str(rows[0]["details"])
    error(api.post(f"/followup-steps/{step}/responses", {"answers": OK, "channel": "phone", "recorded_by": nurse}),
          409, "followups.step_completed")
    assert [i["state"] for i in api.get(f"/patients/{pid}/followup-plans").json()["items"][0]["steps"]] == ["completed"]
    error(api.post("/followup-steps/nope/responses", {"answers": OK, "channel": "app"}), 404,
          "followups.step_not_found")
    error(api.post("/followup-plans", {**plan_body, "questionnaire": "missing", "encounter_id": "E2"}), 404,
          "followups.questionnaire_not_found")
    error(api.post("/followup-plans", {**plan_body, "occurred_on": "2999-01-01", "encounter_id": "E3"}), 400,
          "followups.occurred_in_future")
    error(api.post("/followup-plans", {**plan_body, "offsets": [0]}), 422, "request.invalid")
    error(api.post("/followup-plans", {**plan_body, "channel": "fax"}), 422, "request.invalid")
    error(api.post("/questionnaires", {**TEMPLATE, "questions": [{**TEMPLATE["questions"][0],
                                                                  "alert": {"any_of": ["nope"]}}]}),
          422, "request.invalid")
    error(api.get("/followups/queue", params={"state": "late"}), 422, "request.invalid")
    assert api.get("/followups/queue", params={"state": "due"}).status_code == 200
    error(api.get("/followup-plans/nope"), 404, "followups.plan_not_found")
    error(api.post("/surveys/satisfaction/responses", {"patient_id": pid, "answers": {"overall": "x"}}), 422,
          "followups.invalid_answers")
    error(api.post("/surveys/satisfaction/responses", {"patient_id": pid, "questionnaire": "post_op",
                                                       "answers": OK}), 409, "followups.wrong_purpose")


def test_the_care_alerts_job_flags_overdue_steps(db: Db) -> None:
    from carepoints.jobs import registry

    setup_plan(NOW, date(2026, 1, 28))
    later = datetime(2026, 2, 2, 16, 0, tzinfo=UTC)  # 2026-02-03 00:00 Shanghai: day 3's window is over
    first = registry.run("care-alerts", later)
    assert first["overdue_followups"] == 1
    assert registry.run("care-alerts", later)["overdue_followups"] == 0
    assert count(CareAlert, table(CareAlert).c.kind == "overdue_followup") == 1
