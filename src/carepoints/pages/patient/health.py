"""The patient's health and learning pages: readings with their feedback and 30-day trend
(/me/health), education and quizzes (/me/learn), lectures (/me/lectures), follow-up
questionnaires (/me/followups), the monthly satisfaction survey (/me/survey), reviews after a
visit (/me/reviews), photo tasks (/me/photos) and the invite code (/me/invite).

Every page calls the services the engagement API calls, with the API's permissions
(engagement.health / learning / followups / community endpoints); a record named by its
own id in a path is checked by carepoints.ownership. Reading values are health data:
they are shown to the patient only, never logged or put into an error message."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import Response
from pydantic import ValidationError

from carepoints.config import get_settings
from carepoints.engagement.community import invites, photos
from carepoints.engagement.community.errors import PhotoTooLargeError
from carepoints.engagement.followups import responses as followup_responses
from carepoints.engagement.followups import service as followups
from carepoints.engagement.followups.errors import QuestionnaireNotFoundError
from carepoints.engagement.followups.schemas import Channel, ResponseCreate, SurveyResponseCreate
from carepoints.engagement.health import measurements, medication
from carepoints.engagement.health import service as health
from carepoints.engagement.health.schemas import DoseCheckIn, MeasurementCreate
from carepoints.engagement.learning import education, lectures, reviews
from carepoints.engagement.learning.schemas import AttemptCreate, RegistrationCreate, ReviewCreate
from carepoints.kit.errors import AppError, ValidationFailedError
from carepoints.kit.ids import new_id
from carepoints.kit.time import local_date, utc_now
from carepoints.notifications import templates as wording
from carepoints.pages.web import Page, form_errors, invalid, patient_page, questionnaire_answers, reading, writing
from carepoints.scheduling import privacy as scheduling_privacy

router = APIRouter(include_in_schema=False)

TREND_DAYS = 30
FORM_ERRORS = (404, 409, 422)  # service answers re-rendered in their form; others take the error page


def _pydantic(err: ValidationError, names: dict[str, str] | None = None) -> ValidationFailedError:
    """A schema's refusal as form errors (the last loc part, renamed to the form's field)."""
    fields = []
    for e in err.errors():
        loc = [str(p) for p in e.get("loc", ())]
        name = (names or {}).get(loc[-1], loc[-1]) if loc else ""
        fields.append({"loc": [name], "msg": f"填写有误 / {e.get('msg', 'invalid')}"})
    return ValidationFailedError(fields=fields)


def outcome_lines(page: Page, doc: dict[str, Any]) -> list[dict[str, str]]:
    """What a step earned, in words: each award ("奖励10积分") and each notice the spine gave
    (why nothing was awarded); a replay says it was already recorded."""
    lines: list[dict[str, str]] = []
    for award in doc.get("awards") or []:
        pts = int(award.get("points") or 0)
        why = page.say(str(award.get("message") or ""))
        if pts > 0:
            text = page.tr(f"奖励{pts}积分", f"+{pts} points")
            lines.append({"kind": "ok", "text": f"{text} · {why}" if why else text})
        elif pts < 0:
            text = page.tr(f"扣除{-pts}积分", f"{pts} points")
            lines.append({"kind": "notice", "text": f"{text} · {why}" if why else text})
    lines.extend({"kind": "notice", "text": page.say(str(n.get("message") or n.get("code") or ""))}
                 for n in doc.get("notices") or [])
    if doc.get("duplicate") and not lines:
        lines.append({"kind": "notice", "text": page.tr("已记录过,本次不再奖励积分",
                                                        "Already recorded: no more points for this")})
    if not lines:
        lines.append({"kind": "notice", "text": page.tr("已记录,本次没有积分", "Recorded: no points this time")})
    return lines


# --- health readings ---------------------------------------------------------------------

def _advice(page: Page, reading_doc: dict[str, Any] | None) -> str | None:
    """The approved wording for an abnormal reading (the configurable `health.advice` message
    the patient is also sent; never a diagnosis)."""
    if not reading_doc or not reading_doc.get("abnormal"):
        return None
    reasons = reading_doc.get("reasons") or []
    variant = "glucose_low" if "glucose_low" in reasons else "glucose_high" if "glucose_high" in reasons else "bp_high"
    found = wording.lookup(wording.registry(get_settings().notification_templates), "health.advice", variant)
    if found is None:
        return None
    return (found.en if page.lang == "en" else found.zh)[1]


def _chart(page: Page, items: list[dict[str, Any]], today: date) -> dict[str, Any]:
    """The ECharts option of the trend: systolic / diastolic (mmHg) and glucose (mmol/L) over the
    last TREND_DAYS days, at the programme's local time (what the table beside it shows)."""
    tz = get_settings().tz

    def at(value: str) -> str:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(tz).strftime("%Y-%m-%d %H:%M")

    items = [{**i, "taken_at": at(i["taken_at"])} for i in items]
    bp = [i for i in items if i["kind"] == "blood_pressure"]
    glu = [i for i in items if i["kind"] == "blood_glucose"]
    series: list[dict[str, Any]] = [
        {"name": page.tr("收缩压", "Systolic"), "type": "line", "yAxisIndex": 0, "showSymbol": True,
         "data": [[i["taken_at"][:16], i["systolic"]] for i in bp]},
        {"name": page.tr("舒张压", "Diastolic"), "type": "line", "yAxisIndex": 0, "showSymbol": True,
         "data": [[i["taken_at"][:16], i["diastolic"]] for i in bp]},
        {"name": page.tr("血糖", "Glucose"), "type": "line", "yAxisIndex": 1, "showSymbol": True,
         "data": [[i["taken_at"][:16], i["glucose_mmol_l"]] for i in glu]},
    ]
    return {"animation": False, "color": ["#c0392b", "#2d6cdf", "#1e7d3a"],
            "legend": {"top": 0, "textStyle": {"fontSize": 14}, "itemGap": 12},
            "grid": {"left": 40, "right": 44, "top": 64, "bottom": 30},
            "tooltip": {"trigger": "axis"},
            "xAxis": {"type": "time", "min": (today - timedelta(days=TREND_DAYS - 1)).isoformat(),
                      "max": (today + timedelta(days=1)).isoformat(),
                      "axisLabel": {"formatter": "{MM}-{dd}", "hideOverlap": True}},
            "yAxis": [{"type": "value", "name": "mmHg", "min": 40},
                      {"type": "value", "name": "mmol/L", "min": 0, "splitLine": {"show": False}}],
            "series": series}


def _health_page(page: Page, status: int = 200, **values: Any) -> Response:
    now = utc_now()
    pid = page.patient_id
    with reading() as session:
        trend = measurements.trend(session, pid, TREND_DAYS, None, now)
        day = local_date(now, get_settings().tz)
        today = health.tasks_for(session, pid, day)
    items = trend["readings"]
    doses = [t for t in today["items"] if t["kind"] == "medication"]
    checks = [t for t in today["items"] if t["kind"] != "medication"]
    values.setdefault("bp", {})
    values.setdefault("glu", {})
    values.setdefault("errors", {})
    return page.render("patient/health/index.html", status=status, tab="health", readings=items,
                       table=list(reversed(items))[: (10 if page.elderly else 30)],
                       chart=json.dumps(_chart(page, items, day), ensure_ascii=False), doses=doses, checks=checks,
                       key_bp=new_id(), key_glu=new_id(), **values)


@router.get("/me/health")
def health_home(page: Annotated[Page, Depends(patient_page("health:read"))]) -> Response:
    """Record blood pressure / glucose, today's medicines and the 30-day trend."""
    return _health_page(page)


def _int(raw: str, field: str, label: tuple[str, str], lo: int, hi: int, *, required: bool = True) -> int | None:
    value = raw.strip()
    if not value:
        if required:
            raise invalid(field, f"请填写{label[0]} / Enter the {label[1]}")
        return None
    if not value.isdigit():
        raise invalid(field, f"{label[0]}请填写整数 / The {label[1]} is a whole number")
    number = int(value)
    if not lo <= number <= hi:
        raise invalid(field, f"{label[0]}应在 {lo}–{hi} 之间 / The {label[1]} must be {lo}–{hi}")
    return number


def _record(page: Page, body: dict[str, Any], form: str, form_values: dict[str, str]) -> Response:
    """Record one reading through the API's service and answer the result (a fragment for
    HTMX, the page with the result otherwise); a refusal re-renders the form with its message."""
    assert page.principal is not None  # noqa: S101 - signed in (patient_page)
    now = utc_now()
    try:
        try:
            data = MeasurementCreate(taken_at=now, provenance="self_reported", **body)
        except ValidationError as err:
            raise _pydantic(err, {"glucose": "glucose", "systolic": "systolic", "diastolic": "diastolic",
                                  "pulse": "pulse"}) from None
        with writing() as session:
            doc, _created = measurements.record(session, page.patient_id, data, page.principal.actor(), now)
    except AppError as err:
        if err.code == "events.conflict" and body.get("idempotency_key"):
            # the same form sent again (a double tap, a resend): it was recorded the first time
            doc = {"duplicate": True, "awards": [], "notices": [], "reading": None}
            return _answer(page, form, doc)
        if err.status_code not in FORM_ERRORS and err.code != "consent.missing":
            raise
        errors = form_errors(err, page.lang)
        if page.htmx:
            return page.render(f"patient/health/_{form}.html", status=err.status_code, errors=errors,
                               values=form_values, key=new_id(), error=err.to_dict())
        return _health_page(page, err.status_code, errors=errors, **{form: form_values}, error=err.to_dict(),
                            error_for=form)
    return _answer(page, form, doc)


def _answer(page: Page, form: str, doc: dict[str, Any]) -> Response:
    result = {"lines": outcome_lines(page, doc), "advice": _advice(page, doc.get("reading"))}
    if page.htmx:
        return page.render(f"patient/health/_{form}.html", status=201, result=result, values={}, errors={},
                           key=new_id())
    return _health_page(page, 201, result=result, result_for=form)


@router.post("/me/health/bp")
def record_bp(page: Annotated[Page, Depends(patient_page("health:write"))],
              systolic: Annotated[str, Form(max_length=8)] = "", diastolic: Annotated[str, Form(max_length=8)] = "",
              pulse: Annotated[str, Form(max_length=8)] = "",
              key: Annotated[str, Form(max_length=64)] = "") -> Response:
    """Record a blood pressure reading (收缩压/舒张压/脉搏)."""
    values = {"systolic": systolic, "diastolic": diastolic, "pulse": pulse}
    try:
        body: dict[str, Any] = {
            "kind": "blood_pressure",
            "systolic": _int(systolic, "systolic", ("收缩压", "systolic pressure"), 50, 300),
            "diastolic": _int(diastolic, "diastolic", ("舒张压", "diastolic pressure"), 30, 200),
            "pulse": _int(pulse, "pulse", ("脉搏", "pulse"), 30, 250, required=False)}
        if body["diastolic"] >= body["systolic"]:
            raise invalid("diastolic", "舒张压应低于收缩压 / The diastolic must be below the systolic")
    except ValidationFailedError as err:
        return _form_error(page, err, "bp", values)
    if key:
        body["idempotency_key"] = key
    return _record(page, body, "bp", values)


@router.post("/me/health/glucose")
def record_glucose(page: Annotated[Page, Depends(patient_page("health:write"))],
                   glucose: Annotated[str, Form(max_length=12)] = "",
                   key: Annotated[str, Form(max_length=64)] = "") -> Response:
    """Record a blood glucose reading in mmol/L."""
    values = {"glucose": glucose}
    raw = glucose.strip().replace(",", ".")
    try:
        if not raw:
            raise invalid("glucose", "请填写血糖值 / Enter the glucose value")
        try:
            number = float(raw)
        except ValueError:
            raise invalid("glucose", "血糖请填写数字,如 6.1 / Enter a number, e.g. 6.1") from None
        if not 1.1 <= number <= 33.3:
            raise invalid("glucose", "血糖应在 1.1–33.3 mmol/L 之间 / Glucose must be 1.1–33.3 mmol/L")
    except ValidationFailedError as err:
        return _form_error(page, err, "glu", values)
    body: dict[str, Any] = {"kind": "blood_glucose", "glucose": number, "unit": "mmol/L"}
    if key:
        body["idempotency_key"] = key
    return _record(page, body, "glu", values)


def _form_error(page: Page, err: AppError, form: str, values: dict[str, str]) -> Response:
    errors = form_errors(err, page.lang)
    if page.htmx:
        return page.render(f"patient/health/_{form}.html", status=err.status_code, errors=errors,
                           values=values, key=new_id())
    return _health_page(page, err.status_code, errors=errors, **{form: values}, error_for=form)


@router.post("/me/health/doses/{plan_id}")
def take_dose(page: Annotated[Page, Depends(patient_page("health:write"))], plan_id: str,
              scheduled_for: Annotated[str, Form(max_length=40)] = "") -> Response:
    """已服药: check in the dose planned at `scheduled_for` (today's list)."""
    assert page.principal is not None  # noqa: S101
    now = utc_now()
    try:
        try:
            body = DoseCheckIn(scheduled_for=datetime.fromisoformat(scheduled_for) if scheduled_for else None)
        except ValueError:
            raise invalid("scheduled_for", "时间格式不正确 / The time is not valid") from None
        with writing() as session:
            doc, _created = medication.check_in(session, plan_id, body, page.principal.actor(), now)
    except AppError as err:
        if err.status_code not in (409, 422):
            raise
        return _health_page(page, err.status_code, dose_error=err.to_dict())
    if page.htmx:
        return page.render("patient/health/_dose_done.html", lines=outcome_lines(page, doc))
    return _health_page(page, dose_result=outcome_lines(page, doc))


# --- education and quizzes ---------------------------------------------------------------

@router.get("/me/learn")
def learn(page: Annotated[Page, Depends(patient_page("engagement:read"))]) -> Response:
    """Published education items, newest first (fewer in elderly mode)."""
    with reading() as session:
        found = education.catalogue(session, limit=10 if page.elderly else 50)
    return page.render("patient/health/learn.html", tab="health", back="/me/health", items=found["items"])


def _item_page(page: Page, item_id: str, status: int = 200, **values: Any) -> Response:
    with reading() as session:
        item = education.read(session, item_id)
        tried = education.attempts_of(session, item_id, page.patient_id, limit=5)
    values.setdefault("errors", {})
    values.setdefault("chosen", {})
    return page.render("patient/health/item.html", status=status, tab="health", back="/me/learn", item=item,
                       passed=any(a["passed"] for a in tried), attempts=tried, key=new_id(), **values)


@router.get("/me/learn/{item_id}")
def learn_item(page: Annotated[Page, Depends(patient_page("engagement:read"))], item_id: str) -> Response:
    """One item: its text (or link) and its quiz."""
    return _item_page(page, item_id)


def _quiz_answers(count: int, form: Any) -> tuple[list[list[int]], dict[str, list[int]], list[dict[str, Any]]]:
    """The chosen choice indexes per question, in order, by field, and the unanswered questions."""
    answers: list[list[int]] = []
    chosen: dict[str, list[int]] = {}
    missing: list[dict[str, Any]] = []
    for n in range(count):
        name = f"q{n}"
        picked = sorted({int(v) for v in form.getlist(name) if isinstance(v, str) and v.isdigit()})
        chosen[name] = picked
        if not picked:
            missing.append({"loc": [name], "msg": "请选择答案 / Choose an answer"})
        answers.append(picked)
    return answers, chosen, missing


@router.post("/me/learn/{item_id}")
async def answer_quiz(page: Annotated[Page, Depends(patient_page("engagement:write"))], item_id: str,
                      request: Request) -> Response:
    """Submit the quiz: the score and what it earned (the first pass), or how many were right."""
    form = await request.form()
    key = form.get("key")
    with reading() as session:
        questions = education.read(session, item_id)["quiz"]["questions"]
    answers, chosen, missing = _quiz_answers(len(questions), form)
    try:
        if missing:
            raise ValidationFailedError(fields=missing)
        try:
            data = AttemptCreate(patient_id=page.patient_id, answers=answers,
                                 idempotency_key=key if isinstance(key, str) and key else None)
        except ValidationError as err:
            raise _pydantic(err) from None
        with writing() as session:
            doc, _created = education.attempt(session, item_id, data, utc_now())
    except AppError as err:
        if err.status_code not in (409, 422):
            raise
        return _item_page(page, item_id, err.status_code, error=err.to_dict(), chosen=chosen,
                          errors=form_errors(err, page.lang))
    result = {"lines": outcome_lines(page, doc["outcome"] or {}), "score": doc["score"], "right": doc["right"],
              "questions": doc["questions"], "passed": doc["passed"]}
    return _item_page(page, item_id, 201, result=result, chosen=chosen)


# --- lectures ----------------------------------------------------------------------------

def _lectures_page(page: Page, status: int = 200, **values: Any) -> Response:
    now = utc_now()
    with reading() as session:
        items = lectures.upcoming(session, now, limit=10 if page.elderly else 50)
        mine = {i["id"]: lectures.registration_of(session, i["id"], page.patient_id)
                for i in items}
    for item in items:
        reg = mine.get(item["id"])
        item["registration"] = {"id": reg["id"], "status": reg["status"]} if reg is not None else None
        item["open"] = datetime.fromisoformat(item["starts_at"]) > now
    return page.render("patient/health/lectures.html", status=status, tab="health", back="/me/health",
                       items=items, **values)


@router.get("/me/lectures")
def lecture_list(page: Annotated[Page, Depends(patient_page("engagement:read"))]) -> Response:
    """Lectures not yet over with the seats left, and my registration for each."""
    return _lectures_page(page, done=page.request.query_params.get("done"))


@router.post("/me/lectures/{lecture_id}/register")
def lecture_register(page: Annotated[Page, Depends(patient_page("engagement:write"))], lecture_id: str) -> Response:
    """Take a seat (409 when full or registration has closed)."""
    assert page.principal is not None  # noqa: S101
    try:
        with writing() as session:
            lectures.register(session, lecture_id, RegistrationCreate(patient_id=page.patient_id),
                              page.principal.actor(), utc_now())
    except AppError as err:
        if err.status_code != 409:
            raise
        return _lectures_page(page, err.status_code, error=err.to_dict(), failed=lecture_id)
    return page.redirect("/me/lectures?done=registered")


@router.post("/me/lectures/{lecture_id}/registrations/{registration_id}/cancel")
def lecture_cancel(page: Annotated[Page, Depends(patient_page("engagement:write"))], lecture_id: str,
                   registration_id: str) -> Response:
    """Cancel my registration and free the seat (not after signing in at the door)."""
    assert page.principal is not None  # noqa: S101
    try:
        with writing() as session:
            lectures.cancel(session, lecture_id, registration_id, page.principal.actor(), utc_now())
    except AppError as err:
        if err.status_code != 409:
            raise
        return _lectures_page(page, err.status_code, error=err.to_dict(), failed=lecture_id)
    return page.redirect("/me/lectures?done=cancelled")


# --- follow-up questionnaires ---------------------------------------------------------------

OPEN_STEPS = ("due", "overdue")


@router.get("/me/followups")
def followup_list(page: Annotated[Page, Depends(patient_page("followups:read", "engagement:read"))]) -> Response:
    """My follow-up questionnaires to answer now (due or overdue), then the answered ones."""
    with reading() as session:
        plans = followups.patient_plans(session, page.patient_id, utc_now())["items"]
    due, done = [], []
    for plan in plans:
        for step in plan["steps"]:
            row = {**step, "trigger": plan["trigger"], "occurred_on": plan["occurred_on"]}
            if step["state"] in OPEN_STEPS:
                due.append(row)
            elif step["state"] == "completed":
                done.append(row)
    due.sort(key=lambda s: s["due_on"])
    return page.render("patient/health/followups.html", tab="health", back="/me/health", due=due,
                       done=done[: 5 if page.elderly else 20], ok=page.request.query_params.get("done"))


def _step_page(page: Page, step_id: str, status: int = 200, **values: Any) -> Response:
    with reading() as session:
        view = followups.step_view(session, step_id, utc_now())
    values.setdefault("errors", {})
    values.setdefault("answers", {})
    return page.render("patient/health/followup.html", status=status, tab="health", back="/me/followups",
                       key=new_id(), **view, **values)


@router.get("/me/followups/{step_id}")
def followup_step(page: Annotated[Page, Depends(patient_page("followups:read", "engagement:read"))],
                  step_id: str) -> Response:
    """The questionnaire of a follow-up step as a form."""
    return _step_page(page, step_id)


@router.post("/me/followups/{step_id}")
async def followup_answer(page: Annotated[Page, Depends(patient_page("followups:write", "engagement:write"))],
                          step_id: str, request: Request) -> Response:
    """Answer a follow-up in the app: points for completing it; answers that need attention
    tell the care team (and the page says so)."""
    assert page.principal is not None  # noqa: S101
    form = await request.form()
    with reading() as session:
        questions = followups.step_view(session, step_id, utc_now())["questionnaire"]["questions"]
    given = {str(q["id"]): [str(v) for v in form.getlist(f"q_{q['id']}")] for q in questions}
    key = form.get("key")
    try:
        answers = questionnaire_answers(questions, form)
        body = ResponseCreate(answers=answers, channel=Channel.app,
                              idempotency_key=key if isinstance(key, str) and key else None)
        with writing() as session:
            doc, _created = followup_responses.answer_step(session, step_id, body, page.principal.actor(), utc_now())
    except ValidationError as err:
        failed = _pydantic(err)
        return _step_page(page, step_id, 422, answers=given, error=failed.to_dict(),
                          errors=form_errors(failed, page.lang))
    except AppError as err:
        if err.status_code not in (409, 422):
            raise
        return _step_page(page, step_id, err.status_code, answers=given, error=err.to_dict(),
                          errors=form_errors(err, page.lang))
    lines = outcome_lines(page, doc["outcome"] or {})
    if doc.get("message"):
        lines.append({"kind": "notice", "text": page.say(str(doc["message"]))})
    return _step_page(page, step_id, 201, result={"lines": lines, "advice": None}, answers=given)


# --- the monthly satisfaction survey ----------------------------------------------------------

def _survey_page(page: Page, status: int = 200, **values: Any) -> Response:
    """The survey's form (the current version of the satisfaction questionnaire; made on first
    use as `POST /surveys/satisfaction/responses` makes it) or, after an answer, its result."""
    now = utc_now()
    try:
        with reading() as session:
            template = followups.current(session, followups.SATISFACTION_CODE)
    except QuestionnaireNotFoundError:
        with writing() as session:
            template = followups.satisfaction_template(session, now)
    values.setdefault("errors", {})
    values.setdefault("answers", {})
    if status == 200 and "result" not in values:
        with reading() as session:
            values["answered"] = followup_responses.survey_answered(session, page.patient_id, now)
    return page.render("patient/health/survey.html", status=status, tab="health", back="/me/health",
                       questionnaire=followups.questionnaire_doc(template), key=new_id(), **values)


@router.get("/me/survey")
def survey(page: Annotated[Page, Depends(patient_page("followups:write", "engagement:write"))]) -> Response:
    """满意度调查: this month's satisfaction survey (once a month, points the first time)."""
    return _survey_page(page)


@router.post("/me/survey")
async def survey_answer(page: Annotated[Page, Depends(patient_page("followups:write", "engagement:write"))],
                        request: Request) -> Response:
    """Answer this month's survey through the service the API calls (`survey.completed` once per
    patient and month); a second answer the same month is refused in plain words (409)."""
    assert page.principal is not None  # noqa: S101
    form = await request.form()
    now = utc_now()
    with reading() as session:
        try:
            questions = followups.current(session, followups.SATISFACTION_CODE)["questions"]
        except QuestionnaireNotFoundError:
            questions = followups.SATISFACTION["questions"]
    given = {str(q["id"]): [str(v) for v in form.getlist(f"q_{q['id']}")] for q in questions}
    key = form.get("key")
    try:
        answers = questionnaire_answers(questions, form)
        body = SurveyResponseCreate(patient_id=page.patient_id, answers=answers,
                                    idempotency_key=key if isinstance(key, str) and key else None)
        with writing() as session:
            doc, _created = followup_responses.answer_survey(session, body, page.principal.actor(), now)
    except ValidationError as err:
        failed = _pydantic(err)
        return _survey_page(page, 422, answers=given, error=failed.to_dict(), errors=form_errors(failed, page.lang))
    except AppError as err:
        if err.status_code not in (400, 409, 422):
            raise
        return _survey_page(page, err.status_code, answers=given, error=err.to_dict(),
                            errors=form_errors(err, page.lang), refused=err.status_code == 409)
    lines = outcome_lines(page, doc["outcome"] or {})
    if doc.get("message"):
        lines.append({"kind": "notice", "text": page.say(str(doc["message"]))})
    return _survey_page(page, 201, result={"lines": lines, "advice": None}, period=doc.get("period"))


# --- reviews after a visit -----------------------------------------------------------------

def _reviews_page(page: Page, status: int = 200, **values: Any) -> Response:
    with reading() as session:
        visits = [a for a in scheduling_privacy.appointments(session, page.patient_id) if a["status"] == "attended"]
        mine = reviews.of_patient(session, page.patient_id, limit=200)["items"]
    reviewed = {r["appointment_id"] for r in mine}
    todo = [a for a in reversed(visits) if a["id"] not in reviewed][: 5 if page.elderly else 20]
    values.setdefault("errors", {})
    values.setdefault("form", {})
    return page.render("patient/health/reviews.html", status=status, tab="health", back="/me/health", todo=todo,
                       reviewed=mine[: 5 if page.elderly else 20], **values)


@router.get("/me/reviews")
def review_list(page: Annotated[Page, Depends(patient_page("engagement:read"))]) -> Response:
    """Attended visits not yet reviewed (stars + text) and my reviews."""
    return _reviews_page(page)


@router.post("/me/reviews/{appointment_id}")
def review_submit(page: Annotated[Page, Depends(patient_page("engagement:write"))], appointment_id: str,
                  rating: Annotated[str, Form(max_length=2)] = "",
                  text: Annotated[str, Form(max_length=4000)] = "") -> Response:
    """Review an attended visit once: points, or the notice why none (a repeat of an earlier review)."""
    form = {"appointment_id": appointment_id, "rating": rating, "text": text}
    try:
        if rating not in ("1", "2", "3", "4", "5"):
            raise invalid("rating", "请选择 1–5 颗星 / Choose 1–5 stars")
        if len(text) > 2000:
            raise invalid("text", "评价最多 2000 字 / At most 2000 characters")
        with writing() as session:
            doc = reviews.submit(session, appointment_id, ReviewCreate(rating=int(rating), text=text.strip()),
                                 utc_now())
    except AppError as err:
        if err.status_code not in (409, 422):
            raise
        return _reviews_page(page, err.status_code, error=err.to_dict(), errors=form_errors(err, page.lang),
                             form=form)
    return _reviews_page(page, 201, result={"lines": outcome_lines(page, doc["outcome"] or {}), "advice": None})


# --- photo tasks ---------------------------------------------------------------------------

ACCEPT = "image/jpeg,image/png,image/webp"


def _photos_page(page: Page, status: int = 200, **values: Any) -> Response:
    with reading() as session:
        items = photos.tasks(session, active_only=True)
    return page.render("patient/health/photos.html", status=status, tab="health", back="/me/health", items=items,
                       accept=ACCEPT, max_mb=round(get_settings().photo_max_bytes / 1024 / 1024, 1), **values)


@router.get("/me/photos")
def photo_tasks(page: Annotated[Page, Depends(patient_page("engagement:read"))]) -> Response:
    """Photo check-in tasks (拍照打卡) with an upload form each."""
    return _photos_page(page)


@router.post("/me/photos/{task_id}")
def photo_upload(page: Annotated[Page, Depends(patient_page("engagement:write"))], task_id: str, request: Request,
                 file: Annotated[UploadFile | None, File()] = None) -> Response:
    """Upload a check-in photo: JPEG / PNG / WebP judged by content, at most the configured size
    (the service strips metadata); points, or why not."""
    limit = get_settings().photo_max_bytes
    try:
        if file is None or not file.filename:
            raise invalid("file", "请选择一张照片 / Choose a photo")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit + 64 * 1024:
            raise PhotoTooLargeError(limit=limit)
        raw = photos.read_limited(file.file, limit)
        now = utc_now()
        with writing() as session:
            doc = photos.check_in(session, task_id, page.patient_id, raw, taken_at=None, done_by=None, now=now)
    except AppError as err:
        if err.status_code not in (409, 413, 415, 422):
            raise
        return _photos_page(page, err.status_code, error=err.to_dict(), failed=task_id,
                            errors=form_errors(err, page.lang))
    return _photos_page(page, 201, done=task_id,
                        result={"lines": outcome_lines(page, doc["outcome"] or {}), "advice": None})


# --- invite a friend -----------------------------------------------------------------------

@router.get("/me/invite")
def invite(page: Annotated[Page, Depends(patient_page("engagement:write"))]) -> Response:
    """My invite code (created on first visit, as the API does) with its QR code, and how many joined."""
    now = utc_now()
    with writing() as session:
        code = invites.code_of(session, page.patient_id, now)["code"]
        joined = invites.of_inviter(session, page.patient_id)
    return page.render("patient/health/invite.html", tab="health", back="/me/health", code=code,
                       joined=len(joined), completed=sum(1 for j in joined if j["status"] == "completed"))
