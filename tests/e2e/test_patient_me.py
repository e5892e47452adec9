"""The patient's home and "me" pages in Chromium at 390 px: home with today's tasks, the menu,
how to earn, the points history with an appeal of a penalty, messages (marked read with
HTMX), privacy (consent, download, who looked), family (acting for someone and back); each
page captured in normal and elderly mode with the accessibility check; a PostgreSQL smoke run."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from carepoints.audit import service as audit
from carepoints.audit.service import Actor
from carepoints.kit.db import write_tx
from carepoints.kit.time import utc_now
from carepoints.notifications.tasks import dispatch_outbox
from carepoints.patients import proxies
from tests.e2e.conftest import Server
from tests.e2e.helpers import axe_check, capture, login_patient, shot, submit
from tests.helpers import enrol, event, ingest_one

STAFF = Actor("staff", "0190a5f0-0000-7000-8000-0000000000d9", "frontdesk")


def _penalise(pid: str) -> str:
    now = utc_now()
    attrs = {"reason": "插队", "staff_id": "N7"}
    out = ingest_one(now, event(pid, "conduct.violation", now - timedelta(hours=1), attrs))
    return str(out["event_id"])


def _fits(page: Any) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, page.url


def test_me_pages(server: Server, phone: Any) -> None:
    now = utc_now()
    me = enrol(now, phone="13812340701", name="王秀英", birth_date="1950-03-02")
    mother = enrol(now, phone="13812340702", name="李桂兰", birth_date="1935-01-09")
    _penalise(me)
    with write_tx() as s:
        proxies.authorise(s, mother, proxies.Proxy(me), ["view", "book"], now)
        audit.record(s, STAFF, "patients:patient:read", now, subject_id=me, patient_id=me)
    dispatch_outbox(utc_now() + timedelta(seconds=1), 100)
    login_patient(phone, server, "13812340701")
    assert phone.locator("[data-balance]").inner_text() == "80"
    assert phone.locator("[data-task]").count() >= 1
    assert phone.locator("[data-messages] li").count() == 2
    _fits(phone)
    capture(phone, server, "me-home")

    phone.goto(f"{server.url}/me")
    _fits(phone)
    capture(phone, server, "me-menu")

    phone.goto(f"{server.url}/me/earn")
    assert phone.locator("li.cp-rule").count() == 5
    phone.click("details.cp-more summary")
    _fits(phone)
    capture(phone, server, "me-earn")

    # points history → appeal the penalty
    phone.goto(f"{server.url}/me/points")
    assert "违规行为" in phone.locator("main").inner_text()
    _fits(phone)
    capture(phone, server, "me-points")
    submit(phone, "a[data-appeal]")
    assert "/me/appeals/new?entry=" in phone.url
    submit(phone, "form[action^='/me/appeals/new'] button[type=submit]")  # no reason: the message
    assert phone.locator("[data-error='request.invalid']").count() == 1
    capture(phone, server, "me-appeal-form")
    phone.check("input[name=reason][value=hospitalised]")
    phone.fill("#f-note", "那天在住院")
    submit(phone, "form[action^='/me/appeals/new'] button[type=submit]")
    assert "done=filed" in phone.url
    assert phone.locator("[data-status=open]").count() == 1
    capture(phone, server, "me-appeal")
    phone.goto(f"{server.url}/me/appeals")
    assert phone.locator("li[data-appeal]").count() == 1
    capture(phone, server, "me-appeals")

    # messages: mark one read in place (HTMX)
    phone.goto(f"{server.url}/me/messages")
    first = phone.locator("li[data-message]").first
    mid = first.get_attribute("data-message")
    first.locator("button[type=submit]").click()
    phone.wait_for_selector(f"li[data-message='{mid}'][data-read='true']")
    assert "/me/messages" in phone.url
    _fits(phone)
    capture(phone, server, "me-messages")

    # privacy: agree to research, then withdraw it
    phone.goto(f"{server.url}/me/privacy")
    submit(phone, "li[data-purpose=research] button[value=grant]")
    assert phone.locator("li[data-purpose=research][data-granted=true]").count() == 1
    assert phone.locator("[data-access-report] li").count() >= 1
    _fits(phone)
    capture(phone, server, "me-privacy")
    submit(phone, "li[data-purpose=research] button[value=withdraw]")
    assert phone.locator("li[data-purpose=research][data-granted=false]").count() == 1
    with phone.expect_download() as download:
        phone.click("a[data-export]")
    assert download.value.suggested_filename == f"carepoints-{me}.json"

    # family: act for the mother, then back
    phone.goto(f"{server.url}/me/family")
    _fits(phone)
    capture(phone, server, "me-family")
    submit(phone, f"button[name=patient_id][value='{mother}']")
    assert phone.locator(".cp-acting").count() == 1
    assert phone.locator("[data-balance]").inner_text() == "100"
    shot(phone, "me-home-acting")  # /me/settings (elderly switch) is the signed-in patient's own: not while acting
    axe_check(phone)
    phone.goto(f"{server.url}/me/family")
    submit(phone, "[data-switch-back]")
    assert phone.locator(".cp-acting").count() == 0
    assert phone.locator("[data-balance]").inner_text() == "80"


def test_me_pages_on_postgresql(pg_server: Server, phone: Any) -> None:
    pid = enrol(utc_now(), phone="13812340709", name="赵六")
    _penalise(pid)
    login_patient(phone, pg_server, "13812340709")
    assert phone.locator("[data-balance]").inner_text() == "80"
    phone.goto(f"{pg_server.url}/me/points")
    assert phone.locator("li.cp-entry").count() == 2
    submit(phone, "a[data-appeal]")
    phone.check("input[name=reason][value=wrong_patient]")
    submit(phone, "form[action^='/me/appeals/new'] button[type=submit]")
    assert "done=filed" in phone.url
    phone.goto(f"{pg_server.url}/me/privacy")
    assert phone.locator("li[data-purpose=health_data][data-granted=true]").count() == 1
