"""The programme admin's management pages over real HTTP (SQLite and PostgreSQL): rewards and stock,
tiers and budget drafts, session templates and the generate job, staff users and roles, API keys.
Each form's success through the services, its refusals re-rendered in place with their codes, and
who may open the pages (a front desk 403, signed out → the login, a post without CSRF 403)."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from typing import Any

import pytest

from carepoints.audit.service import Actor
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.time import utc_now
from carepoints.rewards import service as rewards
from carepoints.rules import governance
from carepoints.scheduling import service as scheduling
from carepoints.scheduling.schemas import ClinicianCreate, DepartmentCreate, InstitutionCreate
from carepoints.security import service as security
from tests.conftest import Db
from tests.pages.helpers import PageClient, staff_client

UNKNOWN = "0190a5f0-0000-7000-8000-000000000000"
PAGES = ("/admin/rewards", "/admin/tiers", "/admin/budget", "/admin/templates", "/admin/staff", "/admin/keys")


def refused(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, r.text[:800]
    assert f'data-error="{code}"' in r.text, r.text[:800]


def done(r: Any, url: str) -> None:
    assert r.status_code == 303, r.text[:800]
    assert r.headers["location"].startswith(url), r.headers["location"]


def admin() -> PageClient:
    client, _ = staff_client("admin")
    return client


def _reward(code: str) -> dict[str, Any]:
    with read_tx() as session:
        items = rewards.catalogue(session, None, utc_now(), include_inactive=True)["items"]
    return next(i for i in items if i["code"] == code)


NEW = {"code": "tea_cup", "kind": "coupon", "name_zh": "茶杯", "name_en": "Tea cup", "points": "300", "stock": "5",
       "cost_cny": "12.50", "limit_count": "1", "limit_period": "month"}


def test_pages_render_for_an_admin_and_refuse_others(db: Db) -> None:
    client = admin()
    for url in PAGES:
        r = client.get(url)
        assert r.status_code == 200, (url, r.text[:500])
        assert 'aria-current="page"' in r.text
    desk, _ = staff_client("frontdesk")
    for url in PAGES:
        r = desk.get(url)
        assert r.status_code == 403, url
    for url in ("/admin/rewards", "/admin/keys", "/admin/staff"):
        assert desk.submit(url, {"name": "x"}).status_code == 403
    anon = PageClient(client.app)
    r = anon.get("/admin/keys", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/staff/login")


def test_reward_create_edit_stock_and_toggle(db: Db) -> None:
    client = admin()
    done(client.submit("/admin/rewards", NEW), "/admin/rewards?done=reward_created")
    page = client.get("/admin/rewards?done=reward_created")
    assert "奖品已添加" in page.text
    assert 'data-reward="tea_cup"' in page.text
    assert "茶杯" in page.text
    assert _reward("tea_cup")["stock"] == 5
    # errors re-render the form with the message and the entered values
    r = client.submit("/admin/rewards", NEW)
    refused(r, 409, "rewards.reward_exists")
    assert 'value="Tea cup"' in r.text
    r = client.submit("/admin/rewards", {**NEW, "code": "Bad Code", "points": "0"})
    refused(r, 422, "request.invalid")
    assert 'aria-invalid="true" aria-describedby="e-code"' in r.text
    assert 'id="e-points"' in r.text
    refused(client.submit("/admin/rewards", {**NEW, "code": "x2", "points": "many"}), 422, "request.invalid")
    refused(client.submit("/admin/rewards", NEW, csrf=False), 403, "pages.csrf_failed")
    # stock is added to (through update_reward), never set
    done(client.submit("/admin/rewards/tea_cup/stock", {"add": "7"}), "/admin/rewards?done=stock_added")
    assert _reward("tea_cup")["stock"] == 12
    refused(client.submit("/admin/rewards/tea_cup/stock", {"add": "0"}), 422, "request.invalid")
    refused(client.submit("/admin/rewards/nope/stock", {"add": "3"}), 404, "rewards.reward_not_found")
    # edit
    page = client.get("/admin/rewards/tea_cup")
    assert page.status_code == 200
    assert 'value="茶杯"' in page.text
    done(client.submit("/admin/rewards/tea_cup", {"name_zh": "大茶杯", "name_en": "Big tea cup", "points": "350",
                                                  "cost_cny": "13", "limit_count": "", "code_valid_days": "60"}),
         "/admin/rewards?done=reward_saved")
    doc = _reward("tea_cup")
    assert (doc["names"]["zh"], doc["base_points"], doc["limit"], doc["code_valid_days"]) == ("大茶杯", 350, None, 60)
    r = client.submit("/admin/rewards/tea_cup", {"name_zh": "x", "name_en": "x", "points": "5",
                                                 "valid_from": "2030-02-01", "valid_to": "2030-01-01"})
    assert r.status_code in (409, 422)
    assert 'data-error="' in r.text
    assert "data-reward-edit" in r.text
    assert client.get("/admin/rewards/nope").status_code == 404
    # disable / enable
    done(client.submit("/admin/rewards/tea_cup/active", {"active": "0"}), "/admin/rewards?done=disabled")
    assert _reward("tea_cup")["active"] is False
    assert 'data-reward="tea_cup" data-active="0"' in client.get("/admin/rewards").text
    done(client.submit("/admin/rewards/tea_cup/active", {"active": "1"}), "/admin/rewards?done=enabled")
    assert _reward("tea_cup")["active"] is True


def _drafts() -> list[dict[str, Any]]:
    with read_tx() as session:
        return governance.drafts(session, "draft")


def _local(delta: timedelta) -> str:
    from carepoints.config import get_settings
    return (utc_now() + delta).astimezone(get_settings().tz).strftime("%Y-%m-%dT%H:%M")


def test_tiers_view_and_draft(db: Db) -> None:
    client = admin()
    page = client.get("/admin/tiers")
    assert 'data-tier="gold"' in page.text
    assert "金卡" in page.text
    assert "2000" in page.text
    form = {"threshold_silver": "1500", "threshold_gold": "6000", "fee_share_standard": "1", "fee_share_silver": "0.9",
            "advisor_gold": "1", "fee_share_gold": "0.8", "summary_zh": "调整等级门槛", "summary_en": "New thresholds",
            "activate_at": _local(timedelta(hours=2))}
    done(client.submit("/admin/tiers", form), "/admin/tiers?done=drafted")
    drafts = _drafts()
    assert len(drafts) == 1
    with read_tx() as session:
        doc = governance.draft(session, drafts[0]["id"])
    assert doc["document"]["settings"]["tiers"] == {"silver": 1500, "gold": 6000}
    refused(client.submit("/admin/tiers", {**form, "threshold_gold": "1000"}), 422, "programme.invalid")
    refused(client.submit("/admin/tiers", {**form, "threshold_gold": ""}), 422, "request.invalid")
    r = client.submit("/admin/tiers", {**form, "activate_at": _local(-timedelta(hours=2))})
    refused(r, 400, "programme.activate_at_past")
    assert 'value="6000"' in r.text  # the entered values stay
    refused(client.submit("/admin/tiers", {**form, "summary_en": ""}), 422, "request.invalid")
    refused(client.submit("/admin/tiers", form, csrf=False), 403, "pages.csrf_failed")
    assert len(_drafts()) == 1


def test_budget_view_and_draft(db: Db) -> None:
    client = admin()
    page = client.get("/admin/budget")
    assert page.status_code == 200
    assert "data-budget" in page.text
    assert "echarts.min.js" in page.text
    form = {"cny": "50000", "alerts": "50, 80,100", "hard_stop": "1", "summary_zh": "设定预算",
            "summary_en": "Set the budget", "activate_at": _local(timedelta(hours=1))}
    done(client.submit("/admin/budget", form), "/admin/budget?done=drafted")
    with read_tx() as session:
        doc = governance.draft(session, _drafts()[0]["id"])
    plan = doc["document"]["settings"]["budget"]
    assert (plan["alerts"], plan["hard_stop"]) == ([50, 80, 100], True)
    refused(client.submit("/admin/budget", {**form, "alerts": "120"}), 422, "request.invalid")
    refused(client.submit("/admin/budget", {**form, "cny": "lots"}), 422, "request.invalid")
    refused(client.submit("/admin/budget", {**form, "activate_at": "soon"}), 422, "request.invalid")
    # the gauge once a budget is in force (a draft approved by a second admin, effective at once)
    with write_tx() as session:
        draft = governance.propose(session, security_actor("b"), summary={"zh": "预算", "en": "Budget"},
                                   activate_at=utc_now() + timedelta(milliseconds=300), now=utc_now(),
                                   changes={"settings": {"budget": {"cny": "1000", "alerts": [80, 100]}}})
        governance.approve(session, draft["id"], security_actor("c"), utc_now())
    time.sleep(0.5)
    page = client.get("/admin/budget")
    assert "data-chart=" in page.text
    assert "gauge" in page.text
    assert "¥1000.00" in page.text


def security_actor(n: str) -> Actor:
    return Actor("staff", f"0190a5f0-0000-7000-8000-0000000000{n}{n}", "admin")


def _clinician() -> str:
    now = utc_now()
    with write_tx() as session:
        inst = scheduling.create_institution(session, InstitutionCreate(code="h1", name_zh="医院"), now)
        dept = scheduling.create_department(session, DepartmentCreate(institution_id=inst["id"], code="card",
                                                                      name_zh="心内科"), now)
        doc = scheduling.create_clinician(session, ClinicianCreate(department_id=dept["id"], code="dr1",
                                                                    name="王医生"), now)
    return str(doc["id"])


def test_templates_create_and_generate(db: Db) -> None:
    client = admin()
    clinician = _clinician()
    form = {"owner": "clinician", "owner_id": clinician, "weekday": "1", "start": "08:00", "end": "12:00",
            "slot_minutes": "15", "capacity": "", "level": "general", "fee_cny": "10"}
    done(client.submit("/admin/templates", form), "/admin/templates?done=template_created")
    page = client.get("/admin/templates")
    assert "08:00–12:00" in page.text
    assert 'data-weekday="1"' in page.text
    refused(client.submit("/admin/templates", {**form, "capacity": "99"}), 422, "request.invalid")
    refused(client.submit("/admin/templates", {**form, "end": "07:00"}), 422, "request.invalid")
    refused(client.submit("/admin/templates", {**form, "owner_id": "nobody"}), 422, "request.invalid")
    refused(client.submit("/admin/templates", {**form, "owner_id": UNKNOWN}), 404, "scheduling.clinician_not_found")
    r = client.submit("/admin/templates/generate", {})
    assert r.status_code == 303
    count = int(r.headers["location"].split("generated=")[1])
    assert count in (2, 3)  # every Monday of the coming two weeks (today's too when it is one)
    page = client.get(r.headers["location"])
    assert f'data-generated="{count}"' in page.text
    again = client.submit("/admin/templates/generate", {})
    assert again.headers["location"].endswith("generated=0")
    refused(client.submit("/admin/templates/generate", {}, csrf=False), 403, "pages.csrf_failed")
    # stopping a template: no more sessions from it, and a second stop is 404
    tid = re.search(r'action="/admin/templates/([0-9a-f-]{36})/deactivate"', page.text)
    assert tid
    done(client.submit(f"/admin/templates/{tid.group(1)}/deactivate", {}), "/admin/templates?done=template_stopped")
    assert "08:00–12:00" not in client.get("/admin/templates").text
    refused(client.submit(f"/admin/templates/{tid.group(1)}/deactivate", {}), 404, "scheduling.template_not_found")
    refused(client.submit(f"/admin/templates/{UNKNOWN}/deactivate", {}), 404, "scheduling.template_not_found")


def _staff_row(html: str, username: str) -> str:
    m = re.search(rf'<tr data-staff="{re.escape(username)}".*?</tr>', html, re.S)
    assert m, html[:1500]
    return m.group(0)


def test_staff_create_role_disable(db: Db) -> None:
    client, me = staff_client("admin")
    done(client.submit("/admin/staff", {"username": "desk_li", "password": "temporary-pass-1", "role": "frontdesk"}),
         "/admin/staff?done=staff_created")
    page = client.get("/admin/staff")
    assert "desk_li" in page.text
    assert "argon2" not in page.text
    assert "password_hash" not in page.text
    refused(client.submit("/admin/staff", {"username": "desk_li", "password": "temporary-pass-1",
                                           "role": "frontdesk"}), 409, "auth.username_taken")
    refused(client.submit("/admin/staff", {"username": "desk_wu", "password": "short", "role": "frontdesk"}),
            422, "request.invalid")
    refused(client.submit("/admin/staff", {"username": "desk_wu", "password": "temporary-pass-1", "role": "king"}),
            422, "auth.unknown_role")
    sid = re.search(r'action="/admin/staff/([0-9a-f-]{36})/role"', _staff_row(page.text, "desk_li"))
    assert sid
    staff_id = sid.group(1)
    done(client.submit(f"/admin/staff/{staff_id}/role", {"role": "nurse"}), "/admin/staff?done=role_changed")
    with read_tx() as session:
        assert security.active_staff(session, staff_id) == (staff_id, "desk_li", "nurse")
    refused(client.submit(f"/admin/staff/{staff_id}/role", {"role": "king"}), 422, "request.invalid")
    refused(client.submit(f"/admin/staff/{me['id']}/role", {"role": "nurse"}), 409, "pages.admin_self_change")
    refused(client.submit(f"/admin/staff/{UNKNOWN}/disable", {}), 404, "staff.not_found")
    done(client.submit(f"/admin/staff/{staff_id}/disable", {}), "/admin/staff?done=staff_disabled")
    with read_tx() as session:
        assert security.active_staff(session, staff_id) is None
    assert 'data-active="0"' in _staff_row(client.get("/admin/staff").text, "desk_li")
    refused(client.submit(f"/admin/staff/{staff_id}/disable", {}, csrf=False), 403, "pages.csrf_failed")


def test_keys_create_once_and_revoke(db: Db) -> None:
    client = admin()
    r = client.submit("/admin/keys", {"name": "HIS", "role": "integration", "expires_days": "365"})
    assert r.status_code == 201, r.text[:800]
    secret = re.search(r'data-secret size="56"', r.text) and re.search(r'value="(cpk_[^"]+)" data-secret', r.text)
    assert secret
    key = secret.group(1)
    with read_tx() as session:
        principal = security.authenticate_key(session, key)
    assert principal is not None
    assert principal.role == "integration"
    listing = client.get("/admin/keys").text
    assert key not in listing
    assert key[:10] in listing
    kid = principal.id
    assert f'data-key="{kid}" data-live="1"' in listing
    refused(client.submit("/admin/keys", {"name": " ", "role": "integration"}), 422, "request.invalid")
    refused(client.submit("/admin/keys", {"name": "x", "role": "frontdesk"}), 422, "auth.unknown_role")
    refused(client.submit("/admin/keys", {"name": "x", "expires_days": "0"}), 422, "request.invalid")
    refused(client.submit(f"/admin/keys/{kid}/revoke", {}, csrf=False), 403, "pages.csrf_failed")
    done(client.submit(f"/admin/keys/{kid}/revoke", {}), "/admin/keys?done=key_revoked")
    with read_tx() as session:
        assert security.authenticate_key(session, key) is None
    assert f'data-key="{kid}" data-live="0"' in client.get("/admin/keys").text
    refused(client.submit(f"/admin/keys/{UNKNOWN}/revoke", {}), 404, "auth.key_not_found")


@pytest.mark.parametrize("url", PAGES)
def test_patient_cannot_open(db: Db, url: str) -> None:
    from tests.pages.test_staff_queues import patient_in_staff_cookie
    assert patient_in_staff_cookie().get(url).status_code == 403
