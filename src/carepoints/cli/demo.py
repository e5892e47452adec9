"""A demo hospital: ~50 patients with some months of behaviour history, and a
schedule: departments, clinicians, a CT scanner, sessions from yesterday to 8
days ahead (those within the release window open for booking now) and
bookings in every state (booked, checked in, attended, cancelled by the
patient, cancelled by 停诊, no-show, waiting), and the mall in use: redemptions
with codes used, unused and refunded, and fee offsets committed, voided and held;
and the engagement features: chronic conditions (高血压, 糖尿病), medication plans,
an abnormal blood pressure reading with its care alert, a published education item
with passed quizzes, a health lecture (健康讲座) with registrations, rehab follow-up
plans with one step answered, and community posts pending moderation and approved.

Idempotent: patients carry fixed idempotency keys and events fixed source
keys, the schedule is made once, and each engagement record is looked up by a fixed
code, title, place, idempotency key or encounter id first, so a second run changes nothing."""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from carepoints.audit.service import Actor
from carepoints.config import get_settings
from carepoints.engagement.community import posts
from carepoints.engagement.community.models import CommunityPost
from carepoints.engagement.community.schemas import PostCreate
from carepoints.engagement.followups import responses
from carepoints.engagement.followups import service as followups
from carepoints.engagement.followups.errors import PlanConflictError
from carepoints.engagement.followups.schemas import Channel, QuestionnaireCreate, ResponseCreate, Trigger
from carepoints.engagement.followups.schemas import PlanCreate as FollowupCreate
from carepoints.engagement.health import conditions, measurements, medication
from carepoints.engagement.health.schemas import ConditionCode, ConditionSet, MeasurementCreate, PlanCreate
from carepoints.engagement.learning import education, lectures
from carepoints.engagement.learning.models import EducationItem, Lecture
from carepoints.engagement.learning.schemas import AttemptCreate, ContentCreate, LectureCreate, RegistrationCreate
from carepoints.enrolment import service as enrolment
from carepoints.events import service as events
from carepoints.events.errors import EventConflictError
from carepoints.kit.db import write_tx
from carepoints.kit.errors import AppError
from carepoints.patients.schemas import PatientCreate
from carepoints.rewards import offsets
from carepoints.rewards import service as rewards
from carepoints.rewards.schemas import FeeOffsetCreate, RedemptionCreate
from carepoints.scheduling import alliance, checkups, waitlist
from carepoints.scheduling import service as scheduling
from carepoints.scheduling.errors import SessionFullError
from carepoints.scheduling.models import Department, Institution
from carepoints.scheduling.schemas import (
    AppointmentCreate,
    CancelIn,
    CheckInIn,
    CheckupPackageCreate,
    ClinicianCreate,
    DepartmentCreate,
    InstitutionCreate,
    ResourceCreate,
    SessionCancel,
    SessionCreate,
    WaitlistJoin,
)
from carepoints.security import service as security
from carepoints.security import staff as staff_accounts
from carepoints.security.models import StaffUser
from carepoints.services.consult import service as consult
from carepoints.services.consult.schemas import AdviserSet
from carepoints.services.pricing import service as pricing

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ["秀英", "桂英", "建国", "志强", "淑珍", "国华", "玉兰", "德明",
         "丽华", "永红", "海燕", "春梅", "文", "静", "伟"]
DEPARTMENTS = ["心内科", "内分泌科", "全科医学科", "老年医学科"]
DEPARTMENT_CODES = {"心内科": ("cardio", "Cardiology"), "内分泌科": ("endo", "Endocrinology"),
                    "全科医学科": ("gp", "General practice"), "老年医学科": ("geri", "Geriatrics")}
CLINICIANS = ["王建华", "李淑芬", "张志远", "刘海燕", "陈国强", "杨丽萍", "赵德明", "周文静"]
PATIENTS = 50
DAYS = 120
DEMO_ACTOR = Actor.system("demo")


def _patient(i: int, now: datetime) -> PatientCreate:
    rnd = random.Random(i)  # noqa: S311 - deterministic demo data
    birth_year = 1940 + rnd.randint(0, 55)
    return PatientCreate.model_validate({
        "name": rnd.choice(SURNAMES) + rnd.choice(GIVEN),
        "phone": f"139{rnd.randint(10_000_000, 99_999_999)}",
        "birth_date": f"{birth_year}-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}",
        "sex": rnd.choice(["male", "female"]),
        "external_ids": [{"system": "urn:demo:his:mrn", "value": f"DEMO{i:05d}"}],
        "consent": {"version": "1.0", "accepted_at": (now - timedelta(days=DAYS + 1)).isoformat()},
        "idempotency_key": f"demo-patient-{i}",
    })


def _history(i: int, pid: str, now: datetime) -> list[dict[str, Any]]:
    rnd = random.Random(1000 + i)  # noqa: S311 - deterministic demo data
    out: list[dict[str, Any]] = []
    start = (now - timedelta(days=DAYS)).replace(hour=0, minute=30, second=0, microsecond=0)
    diligence = rnd.random()

    def add(type_: str, at: datetime, attrs: dict[str, Any], key: str) -> None:
        out.append({"type": type_, "patient": {"id": pid}, "occurred_at": at.isoformat(), "source": "demo",
                    "source_event_id": f"{i}:{key}", "attributes": attrs})

    for d in range(DAYS):
        day = start + timedelta(days=d)
        if rnd.random() < diligence:
            add("health.measurement", day + timedelta(hours=rnd.randint(0, 2)),
                {"kind": "blood_pressure", "systolic": rnd.randint(112, 158), "diastolic": rnd.randint(70, 96),
                 "pulse": rnd.randint(58, 92), "provenance": rnd.choice(["device", "self_reported"])}, f"bp{d}")
        if rnd.random() < diligence * 0.8:
            add("medication.taken", day + timedelta(hours=1), {"plan_id": f"plan-{i}"}, f"med{d}")
        if rnd.random() < 0.05:
            add("selfservice.used", day + timedelta(hours=2), {"action": rnd.choice(["pay", "print_report"])},
                f"kiosk{d}")
    for v in range(rnd.randint(1, 4)):
        slot = (start + timedelta(days=rnd.randint(10, DAYS - 2))).replace(hour=1 + rnd.randint(0, 6))
        appt = f"demo-appt-{i}-{v}"
        if rnd.random() < 0.1:
            add("appointment.no_show", slot, {"appointment_id": appt, "slot_start": slot.isoformat()}, f"ns{v}")
            continue
        booked = slot - timedelta(days=rnd.randint(1, 7))
        attrs = {"appointment_id": appt, "slot_start": slot.isoformat(), "booked_at": booked.isoformat(),
                 "booked_by": "patient", "checked_in_at": (slot - timedelta(minutes=rnd.randint(-5, 20))).isoformat(),
                 "department": rnd.choice(DEPARTMENTS)}
        add("appointment.attended", slot, attrs, f"att{v}")
        if rnd.random() < 0.5:
            add("review.submitted", slot + timedelta(hours=3), {
                "appointment_id": appt, "rating": rnd.randint(4, 5),
                "text": "医生问诊非常仔细,耐心解释了检查结果和用药方法,护士指导测量血压的方法也很清楚,候诊秩序良好,"
                        "预约时间准确,整体就医体验很好,感谢医院的贴心服务。"}, f"rev{v}")
    return out


def load(now: datetime) -> str:
    created = 0
    pids: list[str] = []
    for i in range(PATIENTS):
        with write_tx() as session:
            pid, new = enrolment.enrol(session, _patient(i, now), now - timedelta(days=DAYS), channel="demo")
            history = _history(i, pid, now)
            for b in range(0, len(history), 500):
                events.ingest(session, history[b:b + 500], now)
        created += int(new)
        pids.append(pid)
    sessions = _schedule(pids, now)
    mall = _mall(pids, now)
    engaged = _engagement(pids, now)
    priced = _pricing(now)
    users = _staff(now)
    return (f"demo hospital ready: {PATIENTS} patients ({created} new) with {DAYS} days of history; "
            f"{sessions} new sessions; {mall} redemptions and fee offsets; {engaged} new engagement records; "
            f"{priced} new price items and packages"
            + "".join(f"\n{line}" for line in users))


def _pricing(now: datetime) -> int:
    """(services.pricing) The sample price catalogue and packages for the demo hospital (费用估算);
    a second load changes nothing."""
    with write_tx() as session:
        inst = session.scalar(select(Institution.id).where(Institution.code == "demo"))
        if inst is None:
            return 0
        return pricing.load_samples(session, inst, DEMO_ACTOR, now)["created"]


# (pages.staff) demo staff users of the console, one per role: sign in at /staff/login
DEMO_PASSWORD = "carepoints-demo"  # noqa: S105 - a published demo password, never for production
DEMO_STAFF = [("frontdesk", "frontdesk"), ("nurse", "nurse"), ("moderator", "moderator"),
              ("clinician", "clinician"), ("auditor", "auditor"), ("admin", "admin")]


def _staff(now: datetime) -> list[str]:
    """The demo staff users (made once; password `DEMO_PASSWORD`). The admin signs in with an
    authenticator code too: its otpauth URI is printed when it is made (and only then). The demo
    clinician gets a clinician record in 全科医学科 with two sessions of its own, so that
    诊间复诊预约 (/staff/followup-booking) has sessions to book into."""
    lines: list[str] = []
    with write_tx() as session:
        taken = set(session.scalars(select(StaffUser.username).where(
            StaffUser.username.in_([u for u, _ in DEMO_STAFF]))))
        for username, role in DEMO_STAFF:
            if username in taken:
                lines.append(f"staff user {username} ({role}) exists")
                continue
            uid = security.create_staff(session, username, DEMO_PASSWORD, role, now)
            line = f"staff user {username} ({role}) created, password {DEMO_PASSWORD}"
            if staff_accounts.needs_totp(role):
                uri = staff_accounts.enrol_totp(session, uid, username, get_settings().secret_key)
                line += f"; authenticator (TOTP) URI, shown once: {uri}"
            if role == "clinician":
                _clinician_of(session, uid, now)
            lines.append(line)
    return lines


def _clinician_of(session: Any, staff_user_id: str, now: datetime) -> None:
    inst = session.scalar(select(Institution.id).where(Institution.code == "demo"))
    dep = session.scalar(select(Department.id).where(Department.institution_id == inst, Department.code == "gp"))
    if dep is None:
        return
    doc = scheduling.create_clinician(session, ClinicianCreate(department_id=dep, code="gp-demo", name="孙明",
                                                               title="主治医师", staff_user_id=staff_user_id), now)
    # (services.consult) on the roster of 全科医学科, so that 在线咨询 has someone to ask
    consult.set_adviser(session, staff_user_id, AdviserSet(department_id=dep, profession="clinician",
                                                           display_name="孙明", title="主治医师"), DEMO_ACTOR, now)
    today = now.astimezone(get_settings().tz).date()
    for days, release in ((1, now - timedelta(days=1)), (14, now + timedelta(days=7))):
        scheduling.create_session(session, SessionCreate(
            clinician_id=doc["id"], date=today + timedelta(days=days), start=time(9), end=time(11), slot_minutes=15,
            fee_cny=Decimal("25.00"), release_at=release), now)


EDUCATION_TITLE = "高血压患者的家庭血压测量"
LECTURE_PLACE = "门诊楼三楼健康教育室"
QUIZ = {"pass_mark": 60, "questions": [
    {"text": "测量血压前应安静休息多久?", "choices": ["1分钟", "5分钟", "30分钟"], "correct": [1]},
    {"text": "家庭自测血压的正常上限是?", "choices": ["135/85 mmHg", "160/100 mmHg"], "correct": [0]},
    {"text": "测量时袖带应与哪个部位平齐?", "choices": ["心脏", "腰部", "头部"], "correct": [0]}]}
REHAB = {"code": "demo_rehab", "title": {"zh": "术后康复随访问卷", "en": "Post-operative rehab follow-up"},
         "purpose": "rehab", "questions": [
             {"id": "pain", "text": {"zh": "目前疼痛评分(0-10)"}, "type": "number", "min": 0, "max": 10,
              "alert": {"gte": 8}},
             {"id": "wound", "text": {"zh": "伤口情况"}, "type": "single", "alert": {"any_of": ["red", "oozing"]},
              "choices": [{"value": "healing", "label": {"zh": "愈合良好"}}, {"value": "red", "label": {"zh": "红肿"}},
                          {"value": "oozing", "label": {"zh": "渗液"}}]},
             {"id": "notes", "text": {"zh": "其他不适"}, "type": "text", "required": False}]}
POSTS = [("降压药要不要早上吃?", "医生让我每天吃氨氯地平,早上吃和晚上吃有区别吗?"),
         ("分享控糖经验", "坚持晚饭后散步半小时,三个月空腹血糖从8.1降到了6.5。"),
         ("家用血压计怎么选", "上臂式和手腕式哪个更准?请大家推荐。"),
         ("术后康复打卡", "膝关节置换术后第十天,已经可以扶着助行器走路了,谢谢护士的随访指导。")]


def _engagement(pids: list[str], now: datetime) -> int:
    """Conditions, medication plans, an abnormal reading (its care alert and advice), an
    education item with passed quizzes, a lecture with registrations, rehab follow-ups and
    community posts: each looked up or keyed first, so that a second load changes nothing."""
    tz = get_settings().tz
    today = now.astimezone(tz).date()
    made = 0
    for i, pid in enumerate(pids[:18]):
        with write_tx() as session:
            codes = conditions.active_codes(session, pid)
            wanted = ([ConditionCode.hypertension] if i < 15 else []) + ([ConditionCode.diabetes] if i >= 10 else [])
            for code in (c for c in wanted if c.value not in codes):
                conditions.set_condition(session, pid, code, ConditionSet(diagnosed_on=today - timedelta(
                    days=400 + 30 * i), note="示范数据"), DEMO_ACTOR, now)
                made += 1
            if i < 5 and not medication.plans_of(session, pid):
                medication.create_plan(session, pid, PlanCreate(medicine_name="氨氯地平", dose_text="5mg 一片",
                                       times=["08:00"], start_date=today - timedelta(days=30)), DEMO_ACTOR, now)
                made += 1
    try:
        with write_tx() as session:
            made += int(measurements.record(session, pids[0], MeasurementCreate(
                kind="blood_pressure", systolic=186, diastolic=112, pulse=88, taken_at=now - timedelta(hours=2),
                provenance="self_reported", idempotency_key="demo-bp-high"), DEMO_ACTOR, now)[1])
    except EventConflictError:
        pass  # recorded by an earlier load (at its own clock)
    with write_tx() as session:
        item_id = next((r.id for r in session.execute(select(EducationItem.id, EducationItem.title))
                        if r.title.get("zh") == EDUCATION_TITLE), None)
        if item_id is None:
            item_id = education.create(session, ContentCreate.model_validate({
                "kind": "article", "title": {"zh": EDUCATION_TITLE, "en": "Measuring blood pressure at home"},
                "body_text": "测量前安静休息5分钟,取坐位,袖带与心脏平齐;每天早晚各测一次,每次测两遍取平均值并记录。",
                "duration_seconds": 300, "tags": ["blood_pressure"], "conditions": ["hypertension"],
                "quiz": QUIZ, "status": "published"}), DEMO_ACTOR, now)["id"]
            made += 1
    for k, pid in enumerate(pids[:3]):
        with write_tx() as session:
            made += int(education.attempt(session, item_id, AttemptCreate(
                patient_id=pid, answers=[[1], [0], [0]], watched_seconds=300,
                idempotency_key=f"demo-quiz-{k}"), now)[1])
    with write_tx() as session:
        lecture_id = session.scalar(select(Lecture.id).where(Lecture.place == LECTURE_PLACE))
        if lecture_id is None:
            starts = datetime.combine(today + timedelta(days=3), time(14), tzinfo=tz)
            lecture_id = lectures.create(session, LectureCreate.model_validate({
                "title": {"zh": "健康讲座:高血压的自我管理", "en": "Health lecture: living with hypertension"},
                "starts_at": starts, "ends_at": starts + timedelta(minutes=90), "place": LECTURE_PLACE, "seats": 50,
                "institution_id": session.scalar(select(Institution.id).where(Institution.code == "demo"))}),
                DEMO_ACTOR, now)["id"]
            made += 1
        for pid in pids[3:8]:
            made += int(lectures.register(session, lecture_id, RegistrationCreate(patient_id=pid), DEMO_ACTOR,
                                          now)[1])
    with write_tx() as session:
        made += int(followups.save_questionnaire(session, QuestionnaireCreate.model_validate(REHAB), DEMO_ACTOR,
                                                 now)[1])
    for k, pid in enumerate(pids[20:23]):
        try:
            with write_tx() as session:
                plan, new = followups.create_plan(session, FollowupCreate(
                    patient_id=pid, trigger=Trigger.surgery, occurred_on=today - timedelta(days=5 + 2 * k),
                    questionnaire="demo_rehab", channel=Channel.app, encounter_id=f"DEMO-OP-{k}"), DEMO_ACTOR, now)
                if new and k == 2:  # the first step (day 3) answered in the app
                    responses.answer_step(session, plan["steps"][0]["id"], ResponseCreate(
                        answers={"pain": 2, "wound": "healing"}, channel=Channel.app,
                        idempotency_key="demo-followup-2"), DEMO_ACTOR, now)
            made += int(new)
        except PlanConflictError:
            continue  # made by an earlier load, on another day
    for k, (pid, (title, text)) in enumerate(zip(pids[40:44], POSTS, strict=True)):
        with write_tx() as session:
            if session.scalar(select(CommunityPost.id).where(CommunityPost.patient_id == pid,
                                                             CommunityPost.title == title)) is not None:
                continue
            post = posts.create(session, PostCreate(patient_id=pid, title=title, text=text, topic="demo"),
                                DEMO_ACTOR, now)
            if k == 3:
                posts.approve(session, post["id"], DEMO_ACTOR, now)
            made += 1
    return made


_DEMO_REWARDS = ("lecture_seat", "priority_exam", "checkup_80", "pharmacy_50", "expert_extra_slot")


def _mall(pids: list[str], now: datetime) -> int:
    """Redemptions (some codes used, one refunded) and cashier fee offsets in every state,
    each under a fixed idempotency key so that a second load changes nothing."""
    made = 0
    for i, pid in enumerate(pids[:15]):
        reward = _DEMO_REWARDS[i % len(_DEMO_REWARDS)]
        try:
            with write_tx() as session:
                doc, new = rewards.redeem(session, RedemptionCreate(
                    patient_id=pid, reward=reward, idempotency_key=f"demo-redeem-{i}"), DEMO_ACTOR, now)
                if new and doc["coupon_code"] and i % 3 == 0:
                    rewards.verify(session, doc["coupon_code"], DEMO_ACTOR, now)
                if new and i == 4:
                    rewards.refund(session, doc["id"], DEMO_ACTOR, now)
            made += int(new)
        except AppError:
            continue  # not enough points for this one
    for i, pid in enumerate(pids[15:21]):
        with write_tx() as session:
            doc, new = offsets.create(session, FeeOffsetCreate(
                patient_id=pid, fee_cny=Decimal("25.00"), idempotency_key=f"demo-offset-{i}",
                reference=f"DEMO-{i:04d}"), DEMO_ACTOR, now)
            if new and doc["status"] == "held" and i % 3 != 2:
                (offsets.commit if i % 3 == 0 else offsets.void)(session, doc["id"], DEMO_ACTOR, now)
        made += int(new)
    return made


def _schedule(pids: list[str], now: datetime) -> int:
    """The departments, clinicians, sessions and bookings, made once."""
    with write_tx() as session:
        if session.scalar(select(Institution.id).where(Institution.code == "demo")) is not None:
            return 0
        inst = scheduling.create_institution(session, InstitutionCreate(
            code="demo", name_zh="示范人民医院", name_en="Demo People's Hospital"), now)
        # (ops.alliance) the demo hospital leads an alliance, issues the demo MRNs, and its patients are its own
        alliance.create_alliance(session, "demo", "示范医联体", "Demo alliance", ["demo"], now)
        alliance.add_system(session, inst["id"], "urn:demo:his:mrn", now)  # links the demo patients
        clinicians: list[str] = []
        departments: list[str] = []
        for n, zh in enumerate(DEPARTMENTS):
            code, en = DEPARTMENT_CODES[zh]
            dep = scheduling.create_department(session, DepartmentCreate(
                institution_id=inst["id"], code=code, name_zh=zh, name_en=en), now)["id"]
            departments.append(dep)
            clinicians.extend(scheduling.create_clinician(session, ClinicianCreate(
                department_id=dep, code=f"{code}{k + 1}", name=CLINICIANS[2 * n + k],
                title="主任医师" if k == 0 else "主治医师"), now)["id"] for k in range(2))
        ct = scheduling.create_resource(session, ResourceCreate(
            department_id=departments[0], code="ct1", modality="ct", name="CT 1号机"), now)["id"]
        checkups.create_package(session, CheckupPackageCreate(
            code="elder-basic", name_zh="老年人健康体检套餐", name_en="Senior health checkup",
            items=["一般检查", "血常规", "尿常规", "肝功能", "血脂", "空腹血糖", "心电图", "腹部B超"],
            price_cny=Decimal(0), daily_capacity=40), now)
    today = now.astimezone(get_settings().tz).date()
    made: list[dict[str, Any]] = []
    with write_tx() as session:
        for offset in range(-1, 9):
            day = today + timedelta(days=offset)
            for k, clinician in enumerate(clinicians):
                expert = k % 2 == 0
                made.append(scheduling.create_session(session, SessionCreate(
                    clinician_id=clinician, date=day, start=time(8), end=time(12) if expert else time(11, 30),
                    slot_minutes=15 if expert else 10, level="expert" if expert else "general",
                    fee_cny=Decimal(50 if expert else 15), release_at=_released(day, now)), now))
            made.append(scheduling.create_session(session, SessionCreate(
                resource_id=ct, date=day, start=time(14), end=time(17), slot_minutes=20, fee_cny=Decimal(200),
                release_at=_released(day, now)), now))
    _bookings(made, pids, today, now)
    return len(made)


def _released(day: date, now: datetime) -> datetime:
    """The default release (7 days ahead at 08:00), but never later than a day before the
    session ends for the sessions of yesterday and today, so their bookings could be made."""
    opens = datetime.combine(day - timedelta(days=7), time(8), tzinfo=get_settings().tz)
    return min(opens, now - timedelta(days=3))


def _bookings(made: list[dict[str, Any]], pids: list[str], today: date, now: datetime) -> None:
    """Bookings in every state, made with the clock of when they would have happened."""
    by_day: dict[str, list[dict[str, Any]]] = {}
    for sess in made:
        if sess["clinician"]:
            by_day.setdefault(sess["date"], []).append(sess)
    yesterday, later = by_day[(today - timedelta(days=1)).isoformat()], by_day[(today + timedelta(days=2)).isoformat()]
    earlier = now - timedelta(days=2)
    n = 0

    def book(pid: str, sess: dict[str, Any], at: datetime, channel: str = "online") -> dict[str, Any]:
        nonlocal n
        n += 1
        with write_tx() as session:
            doc, _new = scheduling.book(session, AppointmentCreate.model_validate({
                "patient_id": pid, "session_id": sess["id"], "channel": channel,
                "idempotency_key": f"demo-booking-{n}"}), at)
        return doc

    for i, pid in enumerate(pids[:12]):  # yesterday: attended (most checked in on time) or no-show
        appt = book(pid, yesterday[i % len(yesterday)], earlier)
        start = datetime.fromisoformat(appt["start"])
        with write_tx() as session:
            if i % 4 != 3:  # the fourth never came: a no-show
                scheduling.check_in(session, appt["id"], CheckInIn(), start - timedelta(minutes=10 - i))
            if i % 4 < 2:  # and for the third the HIS never sent the visit: still checked in
                scheduling.attend(session, appt["id"], start + timedelta(minutes=15), start + timedelta(minutes=15))
    with write_tx() as session:
        scheduling.sweep_no_shows(session, now)
    for i, pid in enumerate(pids[12:30]):  # ahead: booked, a few cancelled by the patient
        appt = book(pid, later[i % 3], now - timedelta(hours=1), channel="online" if i % 3 else "onsite")
        if i % 6 == 5:
            with write_tx() as session:
                scheduling.cancel(session, appt["id"], CancelIn(by="patient"), now - timedelta(minutes=30))
    stopped = later[5]  # 停诊: its bookings cancelled by the hospital
    for pid in pids[30:33]:
        book(pid, stopped, now - timedelta(hours=2))
    with write_tx() as session:
        scheduling.cancel_session(session, stopped["id"], SessionCancel(reason="专家外出会诊"),
                                  now - timedelta(hours=1))
    full = later[6]  # a session booked out online, with patients waiting
    for pid in pids[33:45]:
        try:
            book(pid, full, now - timedelta(hours=1))
        except SessionFullError:
            break
    for k, pid in enumerate(pids[45:48]):
        with write_tx() as session:
            waitlist.join(session, full["id"], WaitlistJoin(patient_id=pid, idempotency_key=f"demo-wait-{k}"), now)
