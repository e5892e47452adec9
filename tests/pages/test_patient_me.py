"""The patient's home and "me" pages over real HTTP (SQLite and PostgreSQL): each page shows the
patient's real data from the services the API uses, each form's success and its refusals
(with their codes) re-rendered, another patient's record ids answer 404, posts without the CSRF
token 403, signed-out visitors go to the login, and acting for someone (代办) only for whom one
may act for."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from carepoints.app import create_app
from carepoints.audit import service as audit
from carepoints.audit.service import Actor
from carepoints.config import get_settings, reset_settings
from carepoints.engagement.health import conditions
from carepoints.engagement.health.schemas import ConditionCode, ConditionSet
from carepoints.enrolment import households
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.time import utc_now
from carepoints.notifications.tasks import dispatch_outbox
from carepoints.operations import appeals
from carepoints.patients import proxies
from carepoints.patients import service as patients_service
from carepoints.security import otp
from tests.conftest import Db
from tests.helpers import balance, enrol, event, ingest_one
from tests.pages.helpers import PageClient, patient_client
from tests.wechat.conftest import APP_ID, APP_SECRET, Stub, stub_server

__all__ = ["stub_server"]

STAFF = Actor("staff", "0190a5f0-0000-7000-8000-0000000000d9", "frontdesk")
UNKNOWN = "0190a5f0-0000-7000-8000-000000000000"


def refused(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, r.text[:800]
    assert f'data-error="{code}"' in r.text, r.text[:1500]


def penalise(pid: str, at: Any = None) -> str:
    """A misconduct deduction (−20) for the patient; returns the penalty's event id."""
    now = utc_now()
    out = ingest_one(now, event(pid, "conduct.violation", at or now - timedelta(hours=1),
                                {"reason": "插队", "staff_id": "N7"}))
    return str(out["event_id"])


def main(html: str) -> str:
    m = re.search(r'<main id="main".*?</main>', html, re.S)
    assert m, html[:500]
    return m.group(0)


# --- home --------------------------------------------------------------------------------

def test_home_shows_points_tier_tasks_and_messages(db: Db) -> None:
    now = utc_now()
    pid = enrol(now)
    with write_tx() as s:
        conditions.set_condition(s, pid, ConditionCode.hypertension, ConditionSet(), STAFF, now)
    penalise(pid)
    dispatch_outbox(utc_now() + timedelta(seconds=1), 100)
    client = patient_client(pid)
    r = client.get("/")
    assert r.status_code == 200, r.text[:1000]
    page = main(r.text)
    assert 'data-balance>80<' in page
    assert 'data-available>80<' in page
    assert 'data-tier="standard"' in page
    assert "普通会员" in page
    assert 'data-task="measure_bp" data-done="false"' in page
    assert "测量血压" in page
    assert "data-messages" in page
    assert "您的积分减少了 20 积分" in page  # the latest messages, newest first
    assert page.index("积分变动") < page.index("积分到账")
    for href in ("/me/book", "/me/health", "/me/mall", "/me/earn"):
        assert f'href="{href}"' in page
    # a reading today marks the check-in done
    ingest_one(now, event(pid, "health.measurement", now, {"kind": "blood_pressure", "systolic": 128,
                                                             "diastolic": 82, "provenance": "device"}))
    assert 'data-task="measure_bp" data-done="true"' in client.get("/").text
    # English
    en = patient_client(pid, lang="en").get("/").text
    assert "Standard" in en
    assert "Measure your blood pressure" in en


def test_home_in_elderly_mode_shows_fewer_things(db: Db) -> None:
    now = utc_now()
    pid = enrol(now)
    dispatch_outbox(utc_now() + timedelta(seconds=1), 100)
    page = main(patient_client(pid, elderly=True).get("/").text)
    assert 'data-balance>100<' in page
    assert 'data-task="checkin"' in page  # no conditions: the daily check-in
    assert "data-messages" not in page
    assert 'href="/me/mall"' not in page
    assert 'href="/me/book"' in page
    assert 'href="/me/health"' in page


# --- menu and rules ------------------------------------------------------------------------

def test_menu_and_how_to_earn(db: Db) -> None:
    pid = enrol(utc_now())
    client = patient_client(pid)
    menu = main(client.get("/me").text)
    for href in ("/me/points", "/me/earn", "/me/appeals", "/me/messages", "/me/family", "/me/privacy",
                 "/me/settings"):
        assert f'href="{href}"' in menu
    assert 'action="/logout"' in menu
    earn = main(client.get("/me/earn").text)
    codes = re.findall(r'<li class="cp-rule" data-rule="([a-z_0-9]+)"', earn)
    assert codes == ["book_ahead", "on_time", "health_checkin", "followup", "education"]
    assert earn.count('<svg class="cp-svg"') >= 5  # a picture each
    assert "提前预约" in earn
    assert "+30积分" in earn
    assert "<details" in earn
    assert "更多规则" in earn
    assert 'data-rule="no_show"' in earn.split("<details")[1]
    en = patient_client(pid, lang="en").get("/me/earn").text
    assert "More rules" in en
    assert "Book ahead" in en or "book" in en.lower()


# --- points history and appeals ---------------------------------------------------------------

def test_points_history_in_words_with_more(db: Db) -> None:
    now = utc_now()
    pid = enrol(now)
    for i in range(21):
        penalise(pid, now - timedelta(minutes=30 + i))
    client = patient_client(pid)
    r = client.get("/me/points")
    assert r.status_code == 200
    page = main(r.text)
    assert page.count('class="cp-entry"') == 20
    assert "违规行为" in page  # the rule's name
    assert "−20" in page
    assert "data-appeal" in page
    m = re.search(r'hx-get="/me/points\?cursor=(\d+)"', page)
    assert m
    more = client.get(f"/me/points?cursor={m.group(1)}", headers={"HX-Request": "true"})
    assert more.status_code == 200
    assert "<main" not in more.text  # a fragment appended to the list
    assert more.text.count('class="cp-entry"') == 2
    assert "新用户注册" in more.text
    assert "data-more" not in more.text
    # without JavaScript the link opens the next page
    assert 'class="cp-entry"' in client.get(f"/me/points?cursor={m.group(1)}").text
    refused(client.get("/me/points?cursor=abc"), 422, "request.invalid")
    # elderly mode: fewer per page
    assert main(patient_client(pid, elderly=True).get("/me/points").text).count('class="cp-entry"') == 10


def test_appeal_a_penalty(db: Db) -> None:
    now = utc_now()
    pid = enrol(now)
    penalty = penalise(pid)
    client = patient_client(pid)
    history = client.get("/me/points").text
    assert f'href="/me/appeals/new?entry={penalty}"' in history
    form = client.get(f"/me/appeals/new?entry={penalty}")
    assert form.status_code == 200
    assert 'name="reason"' in form.text
    # no reason: the form again with the message
    bad = client.submit("/me/appeals/new", {"entry": penalty, "reason": ""})
    refused(bad, 422, "request.invalid")
    assert "请选择申诉原因" in bad.text
    assert 'name="reason"' in bad.text
    # "other" needs a note
    note = client.submit("/me/appeals/new", {"entry": penalty, "reason": "other", "note": " "})
    assert note.status_code in (400, 409, 422), note.text[:500]
    assert 'data-error="appeals.' in note.text
    # not a penalty (the welcome event) / unknown
    with read_tx() as s:
        from carepoints.enrolment import service as enrolment

        welcome = next(e for e in enrolment.entries(s, pid, limit=10, cursor=None)["items"]  # type: ignore[attr-defined]
                       if e["rule"] == "welcome")["event_id"]
    refused(client.submit("/me/appeals/new", {"entry": welcome, "reason": "hospitalised"}), 409,
            "appeals.not_a_penalty")
    refused(client.submit("/me/appeals/new", {"entry": UNKNOWN, "reason": "hospitalised"}), 404,
            "appeals.subject_not_found")
    refused(client.submit("/me/appeals/new", {"entry": penalty, "reason": "hospitalised"}, csrf=False), 403,
            "pages.csrf_failed")
    # filed
    ok = client.submit("/me/appeals/new", {"entry": penalty, "reason": "hospitalised", "note": "住院"})
    assert ok.status_code == 303, ok.text[:800]
    location = ok.headers["location"]
    aid = re.match(r"/me/appeals/([0-9a-f-]{36})\?done=filed$", location)
    assert aid
    with read_tx() as s:
        doc = appeals.appeal(s, aid.group(1))
    assert doc["patient_id"] == pid
    assert doc["event_id"] == penalty
    detail = client.get(location)
    assert detail.status_code == 200
    assert "申诉已提交" in detail.text
    assert f'data-appeal="{aid.group(1)}" data-status="open"' in detail.text
    # again: already open
    refused(client.submit("/me/appeals/new", {"entry": penalty, "reason": "hospitalised"}), 409,
            "appeals.already_open")
    listing = client.get("/me/appeals").text
    assert f'data-appeal="{aid.group(1)}" data-status="open"' in listing
    assert "当时住院" in listing
    assert 'data-appealed' in client.get("/me/points").text
    # another patient's appeal: 404, and they do not see it in their list
    other = patient_client(enrol(now))
    refused(other.get(f"/me/appeals/{aid.group(1)}"), 404, "patients.not_found")
    assert aid.group(1) not in other.get("/me/appeals").text
    refused(other.get(f"/me/appeals/{UNKNOWN}"), 404, "patients.not_found")
    # and cannot appeal it (the penalty is not theirs)
    refused(other.submit("/me/appeals/new", {"entry": penalty, "reason": "hospitalised"}), 404,
            "appeals.subject_not_found")


def test_appeal_too_late(db: Db, monkeypatch: pytest.MonkeyPatch) -> None:
    now = utc_now()
    pid = enrol(now)
    penalty = penalise(pid)
    days = get_settings().appeal_window_days
    client = patient_client(pid)
    monkeypatch.setattr("carepoints.pages.patient.me.utc_now", lambda: now + timedelta(days=days + 1))
    refused(client.submit("/me/appeals/new", {"entry": penalty, "reason": "hospitalised"}), 409, "appeals.too_late")


# --- messages ---------------------------------------------------------------------------------

def test_messages_and_mark_read(db: Db) -> None:
    now = utc_now()
    pid = enrol(now)
    penalise(pid)
    dispatch_outbox(utc_now() + timedelta(seconds=1), 100)
    client = patient_client(pid)
    page = main(client.get("/me/messages").text)
    ids = re.findall(r'data-message="([0-9a-f-]{36})" data-read="false"', page)
    assert len(ids) == 2
    assert "积分到账" in page
    assert "2 条未读" in page
    refused(client.submit(f"/me/messages/{ids[0]}/read", {}, csrf=False), 403, "pages.csrf_failed")
    # another patient's message: 404 and still unread
    other = patient_client(enrol(now))
    refused(other.submit(f"/me/messages/{ids[0]}/read", {}), 404, "patients.not_found")
    refused(other.submit(f"/me/messages/{UNKNOWN}/read", {}), 404, "patients.not_found")
    # HTMX: the message comes back read
    r = client.submit(f"/me/messages/{ids[0]}/read", {}, htmx=True)
    assert r.status_code == 200, r.text[:500]
    assert f'data-message="{ids[0]}" data-read="true"' in r.text
    assert "<main" not in r.text
    # a form post: back to the inbox
    r = client.submit(f"/me/messages/{ids[1]}/read", {})
    assert r.status_code == 303
    assert r.headers["location"] == "/me/messages"
    page = main(client.get("/me/messages").text)
    assert 'data-read="false"' not in page
    assert "条未读" not in page


# --- privacy ----------------------------------------------------------------------------------

def test_consents_grant_and_withdraw(db: Db) -> None:
    now = utc_now()
    pid = enrol(now)
    client = patient_client(pid)
    page = main(client.get("/me/privacy").text)
    assert 'data-purpose="health_data" data-granted="true"' in page
    assert 'data-purpose="research" data-granted="false"' in page
    assert "健康数据" in page
    r = client.submit("/me/privacy/consents", {"purpose": "health_data", "action": "withdraw"})
    assert r.status_code == 303
    assert r.headers["location"] == "/me/privacy?done=withdrawn"
    page = main(client.get("/me/privacy?done=withdrawn").text)
    assert 'data-purpose="health_data" data-granted="false"' in page
    assert "已撤回同意" in page
    r = client.submit("/me/privacy/consents", {"purpose": "research", "action": "grant"})
    assert r.headers["location"] == "/me/privacy?done=granted"
    assert 'data-purpose="research" data-granted="true"' in client.get("/me/privacy").text
    # withdrawing what is not granted: the service's 404 on the page
    refused(client.submit("/me/privacy/consents", {"purpose": "health_data", "action": "withdraw"}), 404,
            "consent.not_found")
    refused(client.submit("/me/privacy/consents", {"purpose": "marketing", "action": "grant"}), 422,
            "request.invalid")
    refused(client.submit("/me/privacy/consents", {"purpose": "research", "action": "withdraw"}, csrf=False), 403,
            "pages.csrf_failed")


def test_data_download_and_who_looked(db: Db) -> None:
    now = utc_now()
    pid = enrol(now)
    with write_tx() as s:
        audit.record(s, STAFF, "patients:patient:read", now, subject_id=pid, patient_id=pid)
    client = patient_client(pid)
    r = client.get("/me/privacy/export")
    assert r.status_code == 200
    assert r.headers["content-disposition"] == f'attachment; filename="carepoints-{pid}.json"'
    doc = json.loads(r.content)
    assert doc["patient_id"] == pid
    assert doc["profile"]["name"] == "测试患者"  # unmasked for the patient
    page = main(client.get("/me/privacy").text)
    assert "谁查看了我的数据" in page
    assert 'data-actor-kind="staff"' in page
    assert "服务窗口" in page


# --- family: acting for ---------------------------------------------------------------------

def test_family_and_switching(db: Db) -> None:
    now = utc_now()
    me = enrol(now)
    mother = enrol(now)
    stranger = enrol(now)
    penalise(mother)
    with write_tx() as s:
        proxies.authorise(s, mother, proxies.Proxy(me), ["view", "book"], now)
        h = households.create(s, STAFF, "王家", me, now)
        households.add_member(s, STAFF, h["id"], stranger, can_redeem=False, now=now)
    client = patient_client(me)
    page = main(client.get("/me/family").text)
    assert f'data-proxied="{mother}"' in page
    assert f'name="patient_id" value="{mother}"' in page
    assert f'data-household="{h["id"]}"' in page
    assert f'data-member="{stranger}"' in page
    assert f'value="{stranger}"' not in page  # a member who did not authorise me: no switch
    refused(client.submit("/me/family/switch", {"patient_id": mother}, csrf=False), 403, "pages.csrf_failed")
    refused(client.submit("/me/family/switch", {"patient_id": stranger}), 404, "patients.not_found")
    refused(client.submit("/me/family/switch", {"patient_id": UNKNOWN}), 404, "patients.not_found")
    r = client.submit("/me/family/switch", {"patient_id": mother})
    assert r.status_code == 303
    assert r.headers["location"] == "/"
    home = client.get("/").text
    assert 'class="cp-acting"' in home
    assert "正在代办" in home
    assert "data-balance>80<" in home  # the mother's points
    assert "测***" in home  # her masked name in the acting bar
    # the proxy's scopes hold: appeals are the patient's own business
    assert client.get("/me/appeals").status_code == 403
    assert client.get("/me/points").status_code == 200
    # one's own settings stay one's own while acting (the proxy's scopes do not lock them)
    assert client.get("/me/settings").status_code == 200
    assert client.submit("/me/settings", {"elderly": "1"}).status_code == 303
    with read_tx() as s:
        assert patients_service.preferences(s, me)[0] is True
        assert patients_service.preferences(s, mother)[0] is False
    assert "data-balance>80<" in client.get("/").text  # still acting for her
    # switch back
    r = client.submit("/me/family/switch", {"patient_id": ""})
    assert r.status_code == 303
    home = client.get("/").text
    assert 'class="cp-acting"' not in home
    assert "data-balance>100<" in home
    assert balance(mother, now) == 80


# --- who may ----------------------------------------------------------------------------------

ROUTES = ("/", "/me", "/me/earn", "/me/points", "/me/appeals", "/me/appeals/new?entry=x", "/me/messages",
          "/me/privacy", "/me/privacy/export", "/me/family", f"/me/appeals/{UNKNOWN}")


def test_signed_out_visitors_go_to_the_login(db: Db) -> None:
    client = TestClient(create_app())
    for url in ROUTES:
        r = client.get(url, follow_redirects=False)
        assert r.status_code == 303, url
        assert r.headers["location"].startswith("/login?next="), url
    r = client.post("/me/family/switch", data={"patient_id": ""}, follow_redirects=False)
    assert r.status_code == 403  # no session: the CSRF check refuses first


def test_posts_without_csrf_are_refused(db: Db) -> None:
    pid = enrol(utc_now())
    client = patient_client(pid)
    for url, data in (("/me/family/switch", {"patient_id": ""}),
                      ("/me/privacy/consents", {"purpose": "research", "action": "grant"}),
                      ("/me/appeals/new", {"entry": UNKNOWN, "reason": "other"}),
                      (f"/me/messages/{UNKNOWN}/read", {})):
        refused(client.submit(url, data, csrf=False), 403, "pages.csrf_failed")


# --- WeChat login -------------------------------------------------------------------------------

def test_wechat_button_hidden_when_not_configured(db: Db) -> None:
    client = TestClient(create_app())
    assert "微信登录" not in client.get("/login").text
    refused(client.get("/login/wechat", follow_redirects=False), 404, "wechat.not_configured")


@pytest.fixture
def wechat_on(stub_server: Stub, monkeypatch: pytest.MonkeyPatch) -> Any:
    stub_server.used.clear()
    monkeypatch.setenv("CAREPOINTS_WECHAT_APP_ID", APP_ID)
    monkeypatch.setenv("CAREPOINTS_WECHAT_APP_SECRET", APP_SECRET)
    monkeypatch.setenv("CAREPOINTS_WECHAT_API_BASE", stub_server.base)
    monkeypatch.setenv("CAREPOINTS_WECHAT_REDIRECT_ALLOW",
                       "http://testserver/login/wechat/callback, https://h5.hospital.example/bind")
    reset_settings()
    yield stub_server
    monkeypatch.undo()
    reset_settings()


def _bind(pid: str, openid: str) -> None:
    api = TestClient(create_app())
    token = otp.patient_token(pid, utc_now(), get_settings())[0]
    headers = {"Authorization": f"Bearer {token}"}
    r = api.get("/api/v1/auth/wechat/authorize", params={"purpose": "bind",
                                                         "redirect_uri": "https://h5.hospital.example/bind"},
                headers=headers)
    assert r.status_code == 200, r.text
    r = api.post("/api/v1/auth/wechat/bind", json={"code": f"ok-{openid}~b", "state": r.json()["state"]},
                 headers=headers)
    assert r.status_code == 200, r.text


def test_wechat_login(db: Db, wechat_on: Stub) -> None:
    pid = enrol(utc_now())
    _bind(pid, "openid-page-1")
    client = PageClient(create_app())
    login = client.get("/login").text
    assert 'href="/login/wechat"' in login
    assert "微信登录" in login
    r = client.get("/login/wechat", follow_redirects=False)
    assert r.status_code == 303
    target = r.headers["location"]
    assert target.startswith("https://open.weixin.qq.com/connect/oauth2/authorize?")
    assert "redirect_uri=http%3A%2F%2Ftestserver%2Flogin%2Fwechat%2Fcallback" in target
    state = re.search(r"state=([0-9a-f]{64})", target)
    assert state
    # a code of a WeChat bound to nobody: the login page with the service's refusal
    refused(client.get(f"/login/wechat/callback?code=ok-nobody~1&state={state.group(1)}", follow_redirects=False),
            404, "wechat.not_bound")
    # a spent state cannot be used again
    refused(client.get(f"/login/wechat/callback?code=ok-openid-page-1~2&state={state.group(1)}"), 400,
            "wechat.state_invalid")
    r = client.get("/login/wechat", follow_redirects=False)
    state = re.search(r"state=([0-9a-f]{64})", r.headers["location"])
    assert state
    r = client.get(f"/login/wechat/callback?code=ok-openid-page-1~3&state={state.group(1)}", follow_redirects=False)
    assert r.status_code == 303, r.text[:800]
    assert r.headers["location"] == "/"
    home = client.get("/")
    assert home.status_code == 200
    assert "data-balance>100<" in home.text
