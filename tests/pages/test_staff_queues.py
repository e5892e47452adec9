"""The staff console's review queues over real HTTP (SQLite and PostgreSQL): every decision's
real effect through the services (points moved, appeals reversed, records merged, posts
awarded, earning frozen), the services' refusals shown with their codes, and who may open
each queue (other roles and patients 403)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from carepoints.app import create_app
from carepoints.audit.service import Actor
from carepoints.config import get_settings
from carepoints.engagement.care import service as care
from carepoints.engagement.care.schemas import AlertKind
from carepoints.engagement.community import posts
from carepoints.engagement.community.schemas import PostCreate
from carepoints.engagement.followups import service as followups
from carepoints.engagement.followups.schemas import PlanCreate, QuestionnaireCreate
from carepoints.enrolment import identity
from carepoints.events.schemas import PatientRef
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.time import utc_now
from carepoints.operations import adjustments, appeals, fraud
from carepoints.operations.fraud_rules import Candidate
from carepoints.pages.web import STAFF
from carepoints.patients import service as patients
from carepoints.security import otp
from tests.conftest import Db
from tests.helpers import balance, enrol, event, ingest_one
from tests.pages.helpers import PageClient, _cookie, staff_client

SYSTEM = Actor("staff", "0190a5f0-0000-7000-8000-0000000000d9", "frontdesk")
UNKNOWN = "0190a5f0-0000-7000-8000-000000000000"


def refused(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, r.text[:600]
    assert f'data-error="{code}"' in r.text, r.text[:600]


def patient_in_staff_cookie() -> PageClient:
    """A patient token in a (validly signed) staff cookie: staff pages answer 403."""
    token, _ = otp.patient_token(enrol(utc_now()), utc_now(), get_settings())
    client = PageClient(create_app())
    client.cookies.set(STAFF.cookie, _cookie(STAFF, token))
    return client


# --- adjustments ---------------------------------------------------------------------------

def _pending_id(html: str) -> str:
    m = re.search(r'data-adjustment="([0-9a-f-]{36})" data-status="pending"', html)
    assert m, html[:1000]
    return m.group(1)


def test_adjustment_maker_checker(db: Db) -> None:
    now = utc_now()
    pid = enrol(now, phone="13955550001")
    maker, _ = staff_client("frontdesk")
    checker, _ = staff_client("frontdesk")
    page = maker.get("/staff/adjustments")
    assert page.status_code == 200
    assert "发起调整" in page.text
    # a bad entry re-renders the form with the message and changes nothing
    bad = maker.submit("/staff/adjustments", {"patient": pid, "points": "abc", "reason_code": "goodwill",
                                              "note": "x"})
    refused(bad, 422, "request.invalid")
    assert 'name="patient"' in bad.text
    refused(maker.submit("/staff/adjustments", {"patient": UNKNOWN, "points": "10", "reason_code": "goodwill",
                                                "note": "x"}), 404, "patients.not_found")
    refused(maker.submit("/staff/adjustments", {"patient": pid, "points": "10", "reason_code": "nope",
                                                "note": "x"}), 400, "adjustments.unknown_reason")
    refused(maker.submit("/staff/adjustments", {"patient": pid, "points": "10", "reason_code": "goodwill",
                                                "note": "x"}, csrf=False), 403, "pages.csrf_failed")
    assert balance(pid, now) == 100
    # within the threshold: posted at once (the phone names the patient)
    r = maker.submit("/staff/adjustments", {"patient": "139 5555 0001", "points": "+30", "reason_code": "goodwill",
                                            "note": "窗口补偿"})
    assert r.status_code == 303
    assert r.headers["location"] == "/staff/adjustments?done=posted"
    assert balance(pid, now) == 130
    # above it: pending until a second person approves
    r = maker.submit("/staff/adjustments", {"patient": pid, "points": "500", "reason_code": "missed_award",
                                            "note": "漏发"})
    assert r.headers["location"] == "/staff/adjustments?done=proposed"
    listing = maker.get("/staff/adjustments?done=proposed")
    assert "等待另一位工作人员审批" in listing.text
    aid = _pending_id(listing.text)
    assert balance(pid, now) == 130
    # the maker may not approve their own: the service's code and message, nothing posted
    own = maker.submit(f"/staff/adjustments/{aid}/approve", {}, htmx=True)
    refused(own, 409, "adjustments.approver_is_maker")
    assert "不能审批自己的" in own.text
    assert balance(pid, now) == 130
    # the second person approves (HTMX: the row comes back decided)
    ok = checker.submit(f"/staff/adjustments/{aid}/approve", {"note": "核实"}, htmx=True)
    assert ok.status_code == 200, ok.text[:500]
    assert f'data-adjustment="{aid}" data-status="posted"' in ok.text
    assert balance(pid, now) == 630
    refused(checker.submit(f"/staff/adjustments/{aid}/approve", {}), 409, "adjustments.not_pending")
    # a rejection needs a note and posts nothing
    maker.submit("/staff/adjustments", {"patient": pid, "points": "-300", "reason_code": "correction", "note": "错"})
    with read_tx() as s:
        [pending] = adjustments.queue(s, status="pending", patient_id=pid)["items"]
    refused(checker.submit(f"/staff/adjustments/{pending['id']}/reject", {"note": " "}), 422, "request.invalid")
    r = checker.submit(f"/staff/adjustments/{pending['id']}/reject", {"note": "不需要"})
    assert r.headers["location"] == "/staff/adjustments?done=rejected"
    with read_tx() as s:
        assert adjustments.adjustment(s, pending["id"])["status"] == "rejected"
    assert balance(pid, now) == 630
    history = checker.get("/staff/adjustments?history=rejected")
    assert f'data-adjustment="{pending["id"]}" data-status="rejected"' in history.text


def test_adjustments_who_may(db: Db) -> None:
    nurse, _ = staff_client("nurse")
    refused(nurse.get("/staff/adjustments"), 403, "auth.forbidden")
    auditor, _ = staff_client("auditor")
    assert auditor.get("/staff/adjustments").status_code == 200
    assert "发起调整" not in auditor.get("/staff/adjustments").text
    refused(auditor.submit("/staff/adjustments", {"patient": enrol(utc_now()), "points": "5",
                                                  "reason_code": "goodwill", "note": "x"}), 403, "auth.forbidden")
    refused(auditor.submit(f"/staff/adjustments/{UNKNOWN}/approve", {}), 403, "auth.forbidden")
    refused(patient_in_staff_cookie().get("/staff/adjustments"), 403, "pages.staff_only")


# --- appeals -------------------------------------------------------------------------------

def _no_show(pid: str, days_ago: int) -> str:
    now = utc_now()
    slot = now - timedelta(days=days_ago)
    out = ingest_one(now, event(pid, "appointment.no_show", slot + timedelta(minutes=30),
                                {"appointment_id": f"appt-{pid[-6:]}-{days_ago}", "slot_start": slot.isoformat()}))
    return str(out["event_id"])


def _appeal(pid: str, event_id: str) -> str:
    with write_tx() as s:
        return str(appeals.file(s, SYSTEM, utc_now(), patient_id=None, ref=PatientRef(id=pid), reason="hospitalised",
                                event_id=event_id)["id"])


def test_appeals_queue_detail_and_decisions(db: Db) -> None:
    now = utc_now()
    pid = enrol(now)
    first, second = _appeal(pid, _no_show(pid, 3)), _appeal(pid, _no_show(pid, 2))
    assert balance(pid, now) == 0
    desk, _ = staff_client("frontdesk")
    queue = desk.get("/staff/appeals")
    assert queue.status_code == 200
    assert f'data-appeal="{first}"' in queue.text
    assert "住院" in queue.text
    detail = desk.get(f"/staff/appeals/{first}")
    assert "爽约" in detail.text
    assert "−50" in detail.text or "-50" in detail.text
    assert "data-balance>0<" in detail.text
    # reverse: the penalty's event is revoked and the points come back
    r = desk.submit(f"/staff/appeals/{first}/decide", {"outcome": "reversed", "note": "住院证明"}, htmx=True)
    assert r.status_code == 200, r.text[:500]
    assert 'data-appeal-status="reversed"' in r.text
    assert 'hx-swap-oob="outerHTML"' in r.text  # the history and balance are refreshed with it
    assert "data-balance>50<" in r.text
    assert balance(pid, now) == 50
    refused(desk.submit(f"/staff/appeals/{first}/decide", {"outcome": "upheld", "note": "again"}), 409,
            "appeals.already_decided")
    # a note is required; then uphold: nothing changes
    refused(desk.submit(f"/staff/appeals/{second}/decide", {"outcome": "upheld", "note": ""}), 422,
            "request.invalid")
    r = desk.submit(f"/staff/appeals/{second}/decide", {"outcome": "upheld", "note": "无证明"})
    assert r.headers["location"] == f"/staff/appeals/{second}?done=upheld"
    assert balance(pid, now) == 50
    with read_tx() as s:
        assert appeals.appeal(s, second)["status"] == "upheld"
    assert f'data-appeal="{second}"' in desk.get("/staff/appeals?status=upheld").text
    refused(desk.get(f"/staff/appeals/{UNKNOWN}"), 404, "appeals.not_found")
    nurse, _ = staff_client("nurse")
    refused(nurse.get("/staff/appeals"), 403, "auth.forbidden")
    auditor, _ = staff_client("auditor")
    assert auditor.get(f"/staff/appeals/{second}").status_code == 200
    refused(auditor.submit(f"/staff/appeals/{second}/decide", {"outcome": "reversed", "note": "x"}), 403,
            "auth.forbidden")
    refused(patient_in_staff_cookie().get("/staff/appeals"), 403, "pages.staff_only")


# --- duplicates ----------------------------------------------------------------------------

def _pair(phone: str) -> tuple[str, str, str]:
    now = utc_now()
    a = enrol(now, phone=phone, name="赵重复", birth_date="1960-01-02")
    b = enrol(now, phone=phone, name="赵重复", birth_date="1960-01-02")
    with write_tx() as s:
        identity.detect_for(s, b, now)
    with read_tx() as s:
        [cand] = [c for c in identity.duplicates(s, status="open", limit=100, before=None)["items"]
                  if set(c["patient_ids"]) == {a, b}]
    return str(cand["id"]), a, b


def test_duplicates_dismiss_and_merge(db: Db) -> None:
    cid, a, b = _pair("13955550011")
    other, _c, _d = _pair("13955550012")
    desk, _ = staff_client("frontdesk")
    listing = desk.get("/staff/duplicates")
    assert listing.status_code == 200
    assert f'data-candidate="{cid}"' in listing.text
    assert "赵重复" not in listing.text  # masked
    assert "139****0011" in listing.text or "0011" in listing.text
    assert "姓名、出生日期和手机号相同" in listing.text
    # the confirmation step, then the merge: the duplicate becomes merged into the survivor
    confirm = desk.get(f"/staff/duplicates/{cid}/merge?survivor={a}")
    assert confirm.status_code == 200
    assert "确认合并" in confirm.text
    refused(desk.get(f"/staff/duplicates/{cid}/merge?survivor={UNKNOWN}"), 422, "request.invalid")
    r = desk.submit(f"/staff/duplicates/{cid}/merge", {"survivor_id": a, "reason_code": "duplicate_registration"})
    assert r.status_code == 303, r.text[:500]
    with read_tx() as s:
        dup = patients.read(s, b, reveal_pii=False)
        assert identity.candidate(s, cid)["status"] == "merged"
    assert dup["status"] == "merged"
    assert dup["merged_into"] == a
    assert f'data-candidate="{cid}"' in desk.get("/staff/duplicates?status=merged").text
    # dismiss (HTMX: the card comes back dismissed); again: the service's 409
    r = desk.submit(f"/staff/duplicates/{other}/dismiss", {"note": "双胞胎"}, htmx=True)
    assert r.status_code == 200
    assert 'data-status="dismissed"' in r.text
    refused(desk.submit(f"/staff/duplicates/{other}/dismiss", {}), 409, "identity.candidate_closed")
    nurse, _ = staff_client("nurse")
    refused(nurse.get("/staff/duplicates"), 403, "auth.forbidden")
    refused(nurse.submit(f"/staff/duplicates/{cid}/merge", {"survivor_id": a}), 403, "auth.forbidden")
    refused(patient_in_staff_cookie().get("/staff/duplicates"), 403, "pages.staff_only")


# --- care alerts ---------------------------------------------------------------------------

def test_care_alerts_acknowledge_and_resolve(db: Db) -> None:
    now = utc_now()
    pid = enrol(now)
    with write_tx() as s:
        normal = care.raise_alert(s, patient_id=pid, kind=AlertKind.inactivity, source_ref=f"inactive:{pid}", now=now)
        urgent = care.raise_alert(s, patient_id=pid, kind=AlertKind.abnormal_reading, source_ref=f"r:{pid}",
                                  now=now, severity="critical")
    assert normal
    assert urgent
    nurse, user = staff_client("nurse")
    listing = nurse.get("/staff/care-alerts")
    assert listing.status_code == 200
    assert listing.text.index(urgent) < listing.text.index(normal)  # critical first
    assert "读数异常" in listing.text
    r = nurse.submit(f"/staff/care-alerts/{urgent}/acknowledge", {}, htmx=True)
    assert r.status_code == 200
    assert 'data-status="acknowledged"' in r.text
    r = nurse.submit(f"/staff/care-alerts/{urgent}/resolve", {"resolution": "referred"})
    assert r.headers["location"] == "/staff/care-alerts?done=resolved"
    with read_tx() as s:
        doc = care.get(s, urgent)
    assert (doc["status"], doc["resolution"], doc["assigned_to"]) == ("resolved", "referred", user["id"])
    refused(nurse.submit(f"/staff/care-alerts/{urgent}/resolve", {"resolution": "contacted"}), 409,
            "care.alert_resolved")
    refused(nurse.submit(f"/staff/care-alerts/{normal}/resolve", {"resolution": "bogus"}), 422, "request.invalid")
    assert urgent in nurse.get("/staff/care-alerts?view=resolved").text
    moderator, _ = staff_client("moderator")
    refused(moderator.get("/staff/care-alerts"), 403, "auth.forbidden")
    refused(patient_in_staff_cookie().get("/staff/care-alerts"), 403, "pages.staff_only")


# --- follow-ups ----------------------------------------------------------------------------

TEMPLATE: dict[str, Any] = {"code": "post_op_page", "title": {"zh": "术后随访"}, "purpose": "rehab", "questions": [
    {"id": "pain", "text": {"zh": "疼痛程度"}, "type": "single", "required": True,
     "choices": [{"value": "none", "label": {"zh": "无"}}, {"value": "severe", "label": {"zh": "剧烈"}}],
     "alert": {"any_of": ["severe"], "severity": "high"}},
    {"id": "temp", "text": {"zh": "体温"}, "type": "number", "min": 34, "max": 43, "required": True}]}


def _due_step(pid: str) -> str:
    now = utc_now()
    occurred = followups.today(now) - timedelta(days=3)
    with write_tx() as s:
        followups.save_questionnaire(s, QuestionnaireCreate.model_validate(TEMPLATE), SYSTEM, now)
        plan, _ = followups.create_plan(s, PlanCreate.model_validate({
            "patient_id": pid, "trigger": "surgery", "occurred_on": occurred.isoformat(),
            "questionnaire": "post_op_page", "channel": "phone", "offsets": [3]}), SYSTEM, now)
    return str(plan["steps"][0]["id"])


def test_followup_queue_and_a_phone_follow_up(db: Db) -> None:
    pid = enrol(utc_now())
    step = _due_step(pid)
    nurse, _ = staff_client("nurse")
    queue = nurse.get("/staff/followups")
    assert queue.status_code == 200
    assert f'data-step="{step}"' in queue.text
    form = nurse.get(f"/staff/followups/{step}")
    assert "疼痛程度" in form.text
    assert 'name="q_pain"' in form.text
    # missing and out-of-range answers: the form again with the questions' messages, nothing stored
    bad = nurse.submit(f"/staff/followups/{step}", {"q_temp": "50"})
    refused(bad, 422, "followups.invalid_answers")
    assert 'name="q_pain"' in bad.text
    refused(nurse.submit(f"/staff/followups/{step}", {"q_pain": "none", "q_temp": "abc"}), 422, "request.invalid")
    # an abnormal answer: recorded, the care team told, first on the queue page
    r = nurse.submit(f"/staff/followups/{step}", {"q_pain": "severe", "q_temp": "37.2"})
    assert r.status_code == 303, r.text[:600]
    assert r.headers["location"] == "/staff/followups?done=recorded_abnormal"
    with read_tx() as s:
        plan = followups.get_plan(s, followups.step_view(s, step, utc_now())["plan"]["id"], utc_now())
        alerts = care.queue(s, kind="abnormal_answer", patient_id=pid)["items"]
    assert plan["steps"][0]["state"] == "completed"
    assert len(alerts) == 1
    after = nurse.get("/staff/followups?done=recorded_abnormal")
    assert "data-abnormal" in after.text
    assert f'data-step="{step}"' not in after.text
    refused(nurse.submit(f"/staff/followups/{step}", {"q_pain": "none", "q_temp": "37"}), 409,
            "followups.step_completed")
    desk, _ = staff_client("frontdesk")
    refused(desk.get("/staff/followups"), 403, "auth.forbidden")
    clinician, _ = staff_client("clinician")
    assert clinician.get("/staff/followups").status_code == 200
    refused(patient_in_staff_cookie().get("/staff/followups"), 403, "pages.staff_only")


# --- moderation ----------------------------------------------------------------------------

def _post(pid: str, text: str) -> str:
    with write_tx() as s:
        return str(posts.create(s, PostCreate.model_validate({"patient_id": pid, "text": text, "title": "控糖心得"}),
                                SYSTEM, utc_now())["id"])


def test_moderation_approve_awards_and_reject(db: Db) -> None:
    now = utc_now()
    pid = enrol(now)
    good, spam = _post(pid, "每天散步三十分钟"), _post(pid, "加微信买药")
    mod, _ = staff_client("moderator")
    listing = mod.get("/staff/moderation")
    assert listing.status_code == 200
    assert "每天散步三十分钟" in listing.text
    r = mod.submit(f"/staff/moderation/{good}/approve", {}, htmx=True)
    assert r.status_code == 200, r.text[:500]
    assert 'data-status="approved"' in r.text
    assert "作者获得 20 积分" in r.text
    assert balance(pid, now) == 120  # approval is what makes it earn
    refused(mod.submit(f"/staff/moderation/{good}/approve", {}), 409, "community.post_already_decided")
    r = mod.submit(f"/staff/moderation/{spam}/reject", {"reason_code": "spam"})
    assert r.headers["location"] == "/staff/moderation?done=post_rejected"
    with read_tx() as s:
        doc = posts.read(s, spam, moderator=True, as_patient=None)
    assert (doc["status"], doc["reason_code"]) == ("rejected", "spam")
    assert balance(pid, now) == 120
    refused(mod.submit(f"/staff/moderation/{UNKNOWN}/approve", {}), 404, "community.post_not_found")
    nurse, _ = staff_client("nurse")
    refused(nurse.get("/staff/moderation"), 403, "auth.forbidden")
    refused(patient_in_staff_cookie().get("/staff/moderation"), 403, "pages.staff_only")


# --- fraud signals -------------------------------------------------------------------------

def _signal(pid: str, window: str) -> tuple[str, list[str]]:
    now = utc_now()
    evs = [ingest_one(now, event(pid, "selfservice.used", now - timedelta(minutes=5 + i), {"action": "query"}))
           for i in range(2)]
    ids = [str(e["event_id"]) for e in evs]
    with write_tx() as s:
        [sid] = fraud.raise_signals(s, [Candidate("velocity", f"patient:{pid}", window, {"count": 2}, ids,
                                                  patient_id=pid)], now)
    return sid, ids


def test_fraud_review_freezes_and_dismisses(db: Db) -> None:
    pid = enrol(utc_now())
    sid, _ids = _signal(pid, "w1")
    other, _ = _signal(enrol(utc_now()), "w2")
    admin, _ = staff_client("admin")
    listing = admin.get("/staff/fraud")
    assert listing.status_code == 200
    assert f'data-signal="{sid}"' in listing.text
    assert "短时高频" in listing.text
    r = admin.submit(f"/staff/fraud/{sid}/review", {"action": "freeze", "note": "核查中"}, htmx=True)
    assert r.status_code == 200, r.text[:500]
    assert 'data-status="actioned"' in r.text
    with read_tx() as s:
        assert patients.read(s, pid, reveal_pii=False)["earning_frozen"] is True
    refused(admin.submit(f"/staff/fraud/{sid}/review", {"action": "dismiss"}), 409, "fraud.already_reviewed")
    r = admin.submit(f"/staff/fraud/{other}/review", {"action": "dismiss"})
    assert r.headers["location"] == "/staff/fraud?done=reviewed"
    with read_tx() as s:
        assert fraud.signal(s, other)["status"] == "dismissed"
    refused(admin.submit(f"/staff/fraud/{other}/review", {"action": "explode"}), 422, "request.invalid")
    assert f'data-signal="{other}"' in admin.get("/staff/fraud?status=dismissed&kind=velocity").text
    auditor, _ = staff_client("auditor")
    assert auditor.get("/staff/fraud?status=actioned").status_code == 200
    refused(auditor.submit(f"/staff/fraud/{other}/review", {"action": "dismiss"}), 403, "auth.forbidden")
    desk, _ = staff_client("frontdesk")
    refused(desk.get("/staff/fraud"), 403, "auth.forbidden")
    refused(patient_in_staff_cookie().get("/staff/fraud"), 403, "pages.staff_only")


@pytest.mark.parametrize("url", ["/staff/adjustments", "/staff/appeals", "/staff/duplicates", "/staff/care-alerts",
                                 "/staff/followups", "/staff/moderation", "/staff/fraud"])
def test_signed_out_staff_go_to_the_login(db: Db, url: str) -> None:
    r = PageClient(create_app()).get(url, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/staff/login?next=")
