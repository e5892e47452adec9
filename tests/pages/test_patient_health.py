"""The patient's health and learning pages over real HTTP (SQLite and PostgreSQL): each page
shows the signed-in patient's own data from the engagement services, each form's success and
its refusals (with their codes) re-rendered, another patient's record id answers 404, posts
without the CSRF token 403, and signed-out visitors go to the login."""

from __future__ import annotations

import io
import re
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from PIL import Image

from carepoints.app import create_app
from carepoints.audit.service import Actor
from carepoints.config import get_settings
from carepoints.engagement.community import photos
from carepoints.engagement.community.schemas import PhotoTaskCreate
from carepoints.engagement.followups import service as followups
from carepoints.engagement.followups.schemas import PlanCreate, QuestionnaireCreate
from carepoints.engagement.health import medication
from carepoints.engagement.health.schemas import PlanCreate as MedicationPlanCreate
from carepoints.engagement.learning import education, lectures
from carepoints.engagement.learning.schemas import ContentCreate, LectureCreate
from carepoints.kit.db import write_tx
from carepoints.kit.time import local_date, utc_now
from carepoints.scheduling import service as sch
from carepoints.scheduling.schemas import (
    AppointmentCreate,
    CheckInIn,
    ClinicianCreate,
    DepartmentCreate,
    InstitutionCreate,
    SessionCreate,
)
from tests.conftest import Db
from tests.helpers import balance, enrol
from tests.pages.helpers import PageClient, patient_client

SYSTEM = Actor("staff", "0190a5f0-0000-7000-8000-0000000000d9", "frontdesk")
UNKNOWN = "0190a5f0-0000-7000-8000-000000000000"


def refused(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, r.text[:800]
    assert f'data-error="{code}"' in r.text, r.text[:1500]


def key_of(html: str) -> str:
    m = re.search(r'name="key" value="([^"]+)"', html)
    assert m, html[:500]
    return m.group(1)


# --- data the pages show (through the services staff and the content team use) -------------

def quiz_item(title: str = "高血压饮食") -> str:
    with write_tx() as s:
        doc = education.create(s, ContentCreate.model_validate({
            "kind": "article", "title": {"zh": title, "en": "Eating well with high blood pressure"},
            "body_text": "每天食盐不超过5克,多吃蔬菜水果。", "duration_seconds": 120, "status": "published",
            "quiz": {"pass_mark": 100, "questions": [
                {"text": "每天食盐最好不超过多少?", "choices": ["5克", "15克"], "correct": [0]},
                {"text": "哪些食物有益?", "choices": ["蔬菜", "水果", "咸菜"], "correct": [0, 1], "multi": True}]}}),
            SYSTEM, utc_now())
    return str(doc["id"])


def lecture(seats: int = 5, title: str = "糖尿病饮食讲座") -> str:
    start = utc_now() + timedelta(days=2)
    with write_tx() as s:
        doc = lectures.create(s, LectureCreate.model_validate({
            "title": {"zh": title, "en": "Diabetes and food"}, "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=1)).isoformat(), "place": "门诊楼三楼报告厅", "seats": seats}),
            SYSTEM, utc_now())
    return str(doc["id"])


TEMPLATE: dict[str, Any] = {"code": "post_op_patient", "title": {"zh": "术后随访", "en": "After your operation"},
                            "purpose": "rehab", "questions": [
    {"id": "pain", "text": {"zh": "伤口疼痛吗?", "en": "Does the wound hurt?"}, "type": "single", "required": True,
     "choices": [{"value": "none", "label": {"zh": "不痛", "en": "No"}},
                 {"value": "severe", "label": {"zh": "很痛", "en": "A lot"}}],
     "alert": {"any_of": ["severe"], "severity": "high"}},
    {"id": "temp", "text": {"zh": "今天的体温(℃)", "en": "Temperature today (°C)"}, "type": "number",
     "min": 34, "max": 43, "required": True}]}


def due_step(pid: str) -> str:
    now = utc_now()
    occurred = followups.today(now) - timedelta(days=3)
    with write_tx() as s:
        followups.save_questionnaire(s, QuestionnaireCreate.model_validate(TEMPLATE), SYSTEM, now)
        plan, _ = followups.create_plan(s, PlanCreate.model_validate({
            "patient_id": pid, "trigger": "surgery", "occurred_on": occurred.isoformat(),
            "questionnaire": "post_op_patient", "channel": "app", "offsets": [3]}), SYSTEM, now)
    return str(plan["steps"][0]["id"])


_visits = iter(range(10**6))


def attended_visit(pid: str) -> str:
    """An appointment of `pid` booked, checked in and attended (a new hospital each time)."""
    n = next(_visits)
    now = utc_now()
    day = local_date(now, get_settings().tz) + timedelta(days=2)
    with write_tx() as s:
        code = f"hp{n}-{now.timestamp():.0f}"
        inst = sch.create_institution(s, InstitutionCreate(code=code, name_zh="第一医院"), now)
        dept = sch.create_department(s, DepartmentCreate(institution_id=inst["id"], code="c", name_zh="心内科"), now)
        doctor = sch.create_clinician(s, ClinicianCreate(department_id=dept["id"], code="d", name="王医生"), now)
        sess = sch.create_session(s, SessionCreate(
            clinician_id=doctor["id"], date=day, start=time(8), end=time(9), slot_minutes=10, fee_cny=Decimal("15"),
            release_at=now - timedelta(days=1), referral_share=Decimal(0)), now)
        doc, _ = sch.book(s, AppointmentCreate(patient_id=pid, session_id=sess["id"], idempotency_key=f"pv{n}"), now,
                          booked_by="patient")
    start = datetime.fromisoformat(doc["start"])
    with write_tx() as s:
        sch.check_in(s, doc["id"], CheckInIn(), start - timedelta(minutes=5))
    with write_tx() as s:
        sch.attend(s, doc["id"], start + timedelta(minutes=5), start + timedelta(minutes=5))
    return str(doc["id"])


def photo_task(code: str = "walk") -> str:
    with write_tx() as s:
        doc = photos.create_task(s, PhotoTaskCreate.model_validate({
            "code": f"{code}-{next(_visits)}", "title": {"zh": "饭后散步打卡", "en": "Walk after a meal"},
            "per_day": 1}),
            utc_now())
    return str(doc["id"])


def medicine_plan(pid: str) -> str:
    now = utc_now()
    local = now.astimezone(get_settings().tz)
    with write_tx() as s:
        doc = medication.create_plan(s, pid, MedicationPlanCreate(
            medicine_name="氨氯地平", dose_text="5mg 一片", times=[local.strftime("%H:%M")],
            start_date=local.date()), SYSTEM, now)
    return str(doc["id"])


def png(size: tuple[int, int] = (40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (30, 120, 200)).save(out, "PNG")
    return out.getvalue()


# --- health readings -----------------------------------------------------------------------

def test_bp_is_recorded_with_its_points_and_shown_in_the_trend(db: Db) -> None:
    pid = enrol(utc_now())
    client = patient_client(pid)
    r = client.get("/me/health")
    assert r.status_code == 200, r.text[:800]
    assert "记录血压" in r.text
    assert "还没有测量记录" in r.text
    assert 'aria-current="page"' in r.text
    before = balance(pid, utc_now())
    r = client.submit("/me/health/bp", {"systolic": "132", "diastolic": "84", "pulse": "70", "key": key_of(r.text)})
    assert r.status_code == 201, r.text[:800]
    gained = balance(pid, utc_now()) - before
    assert gained > 0
    shown = sum(int(n) for n in re.findall(r"data-outcome=\"ok\">奖励(\d+)积分", r.text))
    assert shown == gained
    assert "132/84 mmHg" in r.text
    assert "data-chart=" in r.text
    assert "echarts.min.js" in r.text
    again = client.get("/me/health")
    assert "132/84 mmHg" in again.text


def test_the_same_form_sent_twice_is_recorded_once(db: Db) -> None:
    pid = enrol(utc_now())
    client = patient_client(pid)
    key = key_of(client.get("/me/health").text)
    first = client.submit("/me/health/bp", {"systolic": "128", "diastolic": "80", "key": key}, htmx=True)
    assert first.status_code == 201
    assert "奖励" in first.text
    after = balance(pid, utc_now())
    second = client.submit("/me/health/bp", {"systolic": "128", "diastolic": "80", "key": key}, htmx=True)
    assert second.status_code == 201
    assert balance(pid, utc_now()) == after
    assert "已记录过" in second.text or "data-outcome=\"notice\"" in second.text


def test_htmx_glucose_gets_a_fragment_and_an_abnormal_value_the_careful_wording(db: Db) -> None:
    pid = enrol(utc_now())
    client = patient_client(pid)
    r = client.submit("/me/health/glucose", {"glucose": "3.2"}, htmx=True)
    assert r.status_code == 201, r.text[:800]
    assert r.text.lstrip().startswith('<div id="glu-box">')
    assert "<html" not in r.text
    assert "data-advice" in r.text
    assert "血糖偏低" in r.text
    assert "诊断" not in r.text
    en = patient_client(pid, lang="en").submit("/me/health/bp", {"systolic": "185", "diastolic": "100"}, htmx=True)
    assert "higher than expected" in en.text


@pytest.mark.parametrize(("form", "field", "data"), [
    ("bp", "systolic", {"systolic": "", "diastolic": "80"}),
    ("bp", "systolic", {"systolic": "abc", "diastolic": "80"}),
    ("bp", "diastolic", {"systolic": "120", "diastolic": "130"}),
    ("bp", "pulse", {"systolic": "120", "diastolic": "80", "pulse": "400"}),
    ("glucose", "glucose", {"glucose": "60"}),
    ("glucose", "glucose", {"glucose": "x"}),
])
def test_reading_refusals_are_shown_on_the_form(db: Db, form: str, field: str, data: dict[str, str]) -> None:
    client = patient_client(enrol(utc_now()))
    r = client.submit(f"/me/health/{form}", data)
    assert r.status_code == 422, r.text[:500]
    assert f'id="e-{field}"' in r.text
    assert 'aria-invalid="true"' in r.text
    h = client.submit(f"/me/health/{form}", data, htmx=True)
    assert h.status_code == 422
    assert f'id="e-{field}"' in h.text
    assert "<html" not in h.text


def test_a_reading_without_health_data_consent_is_refused_with_its_code(db: Db) -> None:
    pid = enrol(utc_now(), consent={"version": "1.0", "accepted_at": (utc_now() - timedelta(days=1)).isoformat(),
                                    "purposes": ["points_programme"]})
    r = patient_client(pid).submit("/me/health/bp", {"systolic": "120", "diastolic": "80"})
    refused(r, 403, "consent.missing")
    assert 'id="bp-box"' in r.text  # shown on the form


def test_todays_medicine_can_be_checked_in_once(db: Db) -> None:
    pid = enrol(utc_now())
    plan = medicine_plan(pid)
    client = patient_client(pid)
    page = client.get("/me/health")
    assert "氨氯地平" in page.text
    assert f"/me/health/doses/{plan}" in page.text
    scheduled = re.search(r'name="scheduled_for" value="([^"]+)"', page.text)
    assert scheduled
    r = client.submit(f"/me/health/doses/{plan}", {"scheduled_for": scheduled.group(1)}, htmx=True)
    assert r.status_code == 200, r.text[:500]
    assert "data-dose-done" in r.text
    assert "data-dose-done" in client.get("/me/health").text
    refused(client.submit(f"/me/health/doses/{plan}", {"scheduled_for": "2020-01-01T08:00:00+08:00"}), 409,
            "health.dose_not_planned")


def test_another_patients_medicine_plan_is_not_found(db: Db) -> None:
    other = enrol(utc_now())
    plan = medicine_plan(other)
    client = patient_client(enrol(utc_now()))
    r = client.submit(f"/me/health/doses/{plan}", {})
    assert r.status_code == 404, r.text[:500]


# --- education -----------------------------------------------------------------------------

def test_quiz_pass_earns_points_once_and_a_fail_says_how_many_were_right(db: Db) -> None:
    item = quiz_item()
    pid = enrol(utc_now())
    client = patient_client(pid)
    listing = client.get("/me/learn")
    assert listing.status_code == 200
    assert f"/me/learn/{item}" in listing.text
    assert "高血压饮食" in listing.text
    page = client.get(f"/me/learn/{item}")
    assert "每天食盐不超过5克" in page.text
    assert 'name="q1"' in page.text
    fail = client.submit(f"/me/learn/{item}", {"q0": "1", "q1": ["0", "1"], "key": key_of(page.text)})
    assert fail.status_code == 201
    assert 'data-score="50"' in fail.text
    assert "测验未通过" in fail.text
    before = balance(pid, utc_now())
    ok = client.submit(f"/me/learn/{item}", {"q0": "0", "q1": ["0", "1"], "key": key_of(fail.text)})
    assert ok.status_code == 201
    assert 'data-score="100"' in ok.text
    gained = balance(pid, utc_now()) - before
    assert gained > 0
    assert f"奖励{gained}积分" in ok.text
    again = client.submit(f"/me/learn/{item}", {"q0": "0", "q1": ["0", "1"], "key": key_of(ok.text)})
    assert "不再重复计分" in again.text
    assert balance(pid, utc_now()) == before + gained


def test_quiz_refusals(db: Db) -> None:
    item = quiz_item()
    client = patient_client(enrol(utc_now()))
    r = client.submit(f"/me/learn/{item}", {"q0": "0"})
    refused(r, 422, "request.invalid")
    assert "请选择答案" in r.text
    refused(client.submit(f"/me/learn/{item}", {"q0": "0", "q1": "7"}), 422, "request.invalid")
    refused(client.submit(f"/me/learn/{item}", {"q0": "0", "q1": "3"}), 422, "engagement.quiz_answers_invalid")
    refused(client.get(f"/me/learn/{UNKNOWN}"), 404, "engagement.content_not_found")


# --- lectures ------------------------------------------------------------------------------

def test_lecture_register_cancel_and_full(db: Db) -> None:
    lec = lecture(seats=1)
    pid = enrol(utc_now())
    client = patient_client(pid)
    page = client.get("/me/lectures")
    assert page.status_code == 200
    assert "糖尿病饮食讲座" in page.text
    assert "剩余座位 1" in page.text
    r = client.submit(f"/me/lectures/{lec}/register", {})
    assert r.status_code == 303
    assert r.headers["location"] == "/me/lectures?done=registered"
    page = client.get("/me/lectures?done=registered")
    assert "报名成功" in page.text
    assert "data-registered" in page.text
    other = patient_client(enrol(utc_now()))
    refused(other.submit(f"/me/lectures/{lec}/register", {}), 409, "engagement.lecture_full")
    reg = re.search(rf"/me/lectures/{lec}/registrations/([0-9a-f-]{{36}})/cancel", page.text)
    assert reg
    # another patient cannot cancel my registration: 404
    assert other.submit(f"/me/lectures/{lec}/registrations/{reg.group(1)}/cancel", {}).status_code == 404
    done = client.submit(f"/me/lectures/{lec}/registrations/{reg.group(1)}/cancel", {})
    assert done.status_code == 303
    assert "cancelled" in done.headers["location"]
    assert "剩余座位 1" in client.get("/me/lectures").text


# --- follow-ups ----------------------------------------------------------------------------

def test_a_due_followup_is_answered_with_points_and_a_care_team_note(db: Db) -> None:
    pid = enrol(utc_now())
    step = due_step(pid)
    client = patient_client(pid)
    listing = client.get("/me/followups")
    assert listing.status_code == 200
    assert f"/me/followups/{step}" in listing.text
    form = client.get(f"/me/followups/{step}")
    assert "伤口疼痛吗" in form.text
    assert 'name="q_temp"' in form.text
    missing = client.submit(f"/me/followups/{step}", {"q_pain": "none", "key": key_of(form.text)})
    refused(missing, 422, "followups.invalid_answers")
    bad = client.submit(f"/me/followups/{step}", {"q_pain": "none", "q_temp": "hot"})
    refused(bad, 422, "request.invalid")
    before = balance(pid, utc_now())
    ok = client.submit(f"/me/followups/{step}", {"q_pain": "severe", "q_temp": "37.2", "key": key_of(form.text)})
    assert ok.status_code == 201, ok.text[:800]
    assert "data-result" in ok.text
    assert balance(pid, utc_now()) >= before
    refused(client.submit(f"/me/followups/{step}", {"q_pain": "none", "q_temp": "37"}), 409,
            "followups.step_completed")
    assert f"/me/followups/{step}" not in client.get("/me/followups").text


def test_another_patients_followup_step_is_not_found(db: Db) -> None:
    step = due_step(enrol(utc_now()))
    client = patient_client(enrol(utc_now()))
    assert client.get(f"/me/followups/{step}").status_code == 404
    assert client.submit(f"/me/followups/{step}", {"q_pain": "none", "q_temp": "37"}).status_code == 404


# --- the monthly satisfaction survey -------------------------------------------------------

SURVEY = {"q_overall": "satisfied", "q_waiting": "neutral", "q_staff": "very_satisfied", "q_recommend": "9",
          "q_comments": "挂号很方便"}


def test_the_monthly_survey_earns_once_then_says_it_is_done(db: Db) -> None:
    pid = enrol(utc_now())
    client = patient_client(pid)
    assert 'href="/me/survey"' in client.get("/me/health").text  # 更多健康任务
    assert 'href="/me/survey"' in client.get("/me/earn").text  # the survey rule
    form = client.get("/me/survey")
    assert form.status_code == 200
    assert "您对本月就诊服务的总体满意度" in form.text
    assert 'name="q_overall"' in form.text
    missing = client.submit("/me/survey", {"q_waiting": "neutral", "key": key_of(form.text)})
    refused(missing, 422, "followups.invalid_answers")
    refused(client.submit("/me/survey", {**SURVEY, "q_recommend": "lots"}), 422, "request.invalid")
    assert balance(pid, utc_now()) == 100  # the refusals stored nothing
    ok = client.submit("/me/survey", {**SURVEY, "key": key_of(form.text)})
    assert ok.status_code == 201, ok.text[:800]
    assert "完成月度满意度调查,奖励50积分" in ok.text
    assert "data-survey-done" in ok.text
    assert balance(pid, utc_now()) == 150
    # the same form sent again (a double tap) answers the first answer's outcome, not a second award
    again = client.submit("/me/survey", {**SURVEY, "key": key_of(form.text)})
    assert again.status_code == 201
    assert "data-survey-done" in again.text
    assert balance(pid, utc_now()) == 150
    # a new answer the same month: refused in plain words, nothing stored
    second = client.submit("/me/survey", {**SURVEY, "q_overall": "dissatisfied", "key": "another"})
    refused(second, 409, "followups.survey_already_answered")
    assert "本月满意度调查已完成" in second.text
    assert "data-survey" not in second.text.replace("data-survey-done", "")
    assert balance(pid, utc_now()) == 150
    # opened again this month: says it is done instead of offering the form
    later = client.get("/me/survey")
    assert later.status_code == 200
    assert "data-survey-answered" in later.text
    assert "<form" not in later.text.split("data-survey-answered")[1].split("</main>")[0]


def test_the_survey_is_only_ever_the_signed_in_patients(db: Db) -> None:
    owner, other = enrol(utc_now()), enrol(utc_now())
    # naming the other patient (a form field, an acting-for cookie without an authorisation) changes nothing
    client = patient_client(other, acting_for=owner)
    ok = client.submit("/me/survey", {**SURVEY, "patient_id": owner, "key": "k1"})
    assert ok.status_code == 201, ok.text[:800]
    assert balance(other, utc_now()) == 150
    assert balance(owner, utc_now()) == 100
    mine = patient_client(owner)
    assert "data-survey" in mine.get("/me/survey").text
    assert mine.submit("/me/survey", {**SURVEY, "key": "k1"}).status_code == 201  # the same key: a new answer
    assert balance(owner, utc_now()) == 150


# --- reviews -------------------------------------------------------------------------------

def test_review_an_attended_visit(db: Db) -> None:
    pid = enrol(utc_now())
    appt = attended_visit(pid)
    client = patient_client(pid)
    page = client.get("/me/reviews")
    assert page.status_code == 200
    assert f'data-appointment="{appt}"' in page.text
    r = client.submit(f"/me/reviews/{appt}", {"rating": "", "text": "很好"})
    refused(r, 422, "request.invalid")
    assert "请选择 1–5 颗星" in r.text
    before = balance(pid, utc_now())
    text = "医生非常耐心,详细解释了检查结果和用药注意事项,护士也很热情,整个就诊过程安排得井井有条,等候时间也不长。"
    ok = client.submit(f"/me/reviews/{appt}", {"rating": "5", "text": text})
    assert ok.status_code == 201, ok.text[:800]
    gained = balance(pid, utc_now()) - before
    assert f'data-review="{appt}"' in ok.text
    assert f'data-appointment="{appt}"' not in ok.text
    if gained:
        assert f"奖励{gained}积分" in ok.text
    refused(client.submit(f"/me/reviews/{appt}", {"rating": "4"}), 409, "engagement.review_exists")


def test_another_patients_visit_cannot_be_reviewed(db: Db) -> None:
    appt = attended_visit(enrol(utc_now()))
    client = patient_client(enrol(utc_now()))
    assert client.submit(f"/me/reviews/{appt}", {"rating": "5"}).status_code == 404


# --- photos --------------------------------------------------------------------------------

def test_photo_upload_with_type_and_daily_limit_checks(db: Db) -> None:
    task = photo_task()
    pid = enrol(utc_now())
    client = patient_client(pid)
    page = client.get("/me/photos")
    assert page.status_code == 200
    assert "饭后散步打卡" in page.text
    assert 'enctype="multipart/form-data"' in page.text
    refused(client.submit(f"/me/photos/{task}", {}, files={"file": ("a.txt", b"not an image", "text/plain")}), 415,
            "engagement.photo_type")
    refused(client.submit(f"/me/photos/{task}", {}), 422, "request.invalid")
    ok = client.submit(f"/me/photos/{task}", {}, files={"file": ("walk.png", png(), "image/png")})
    assert ok.status_code == 201, ok.text[:800]
    assert "data-result" in ok.text
    refused(client.submit(f"/me/photos/{task}", {}, files={"file": ("walk.png", png(), "image/png")}), 409,
            "engagement.photo_daily_limit")
    refused(client.submit(f"/me/photos/{UNKNOWN}", {}, files={"file": ("w.png", png(), "image/png")}), 404,
            "engagement.photo_task_not_found")


def test_photo_too_large_is_refused(db: Db, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAREPOINTS_PHOTO_MAX_BYTES", "10000")
    get_settings.cache_clear()
    try:
        task = photo_task()
        client = patient_client(enrol(utc_now()))
        big = b"\x89PNG" + b"0" * 20_000
        refused(client.submit(f"/me/photos/{task}", {}, files={"file": ("big.png", big, "image/png")}), 413,
                "engagement.photo_too_large")
    finally:
        monkeypatch.delenv("CAREPOINTS_PHOTO_MAX_BYTES")
        get_settings.cache_clear()


# --- invite --------------------------------------------------------------------------------

def test_invite_code_with_qr_and_count(db: Db) -> None:
    client = patient_client(enrol(utc_now()))
    r = client.get("/me/invite")
    assert r.status_code == 200
    code = re.search(r"data-invite-code>([A-Z0-9]+)<", r.text)
    assert code
    assert "<svg" in r.text
    assert 'data-joined="0"' in r.text
    assert code.group(1) in client.get("/me/invite").text  # the same code again


# --- who may post and see ------------------------------------------------------------------

PAGES = ["/me/health", "/me/learn", "/me/lectures", "/me/followups", "/me/survey", "/me/reviews", "/me/photos",
         "/me/invite"]


@pytest.mark.parametrize("url", PAGES)
def test_signed_out_visitors_go_to_the_login(db: Db, url: str) -> None:
    r = PageClient(create_app()).get(url, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/login?next=")


@pytest.mark.parametrize("url", ["/me/health/bp", "/me/health/glucose", f"/me/learn/{UNKNOWN}",
                                 f"/me/lectures/{UNKNOWN}/register", f"/me/followups/{UNKNOWN}",
                                 "/me/survey", f"/me/reviews/{UNKNOWN}", f"/me/photos/{UNKNOWN}"])
def test_posts_without_the_csrf_token_are_refused(db: Db, url: str) -> None:
    r = patient_client(enrol(utc_now())).submit(url, {"systolic": "120", "diastolic": "80"}, csrf=False)
    refused(r, 403, "pages.csrf_failed")


def test_elderly_mode_pages_render(db: Db) -> None:
    quiz_item()
    lecture()
    photo_task()
    pid = enrol(utc_now())
    client = patient_client(pid, elderly=True)
    for url in PAGES:
        r = client.get(url)
        assert r.status_code == 200, (url, r.text[:500])
        assert 'class="elderly"' in r.text
