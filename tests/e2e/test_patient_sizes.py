"""Elderly mode on every patient page, in Chromium on a 390 × 844 phone under the pages' real CSP:
a demo-like patient (an older patient with readings, a booked visit, an attended one, a follow-up
due, a coupon and a penalty) signs in, switches elderly mode on and opens every patient GET page
without path parameters (found from the app's routes, so a new page joins by itself); each must
have body text >= 18 px and touch targets >= 44 × 44 px (tests.e2e.helpers.elderly_misses lists
what misses), no serious or critical axe-core violation and nothing in the console (a CSP refusal
is a console error); then the admin dashboard under the same CSP. Every request stays on this
machine (tests.e2e.conftest.browser_context). One screenshot per page for review."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from carepoints.kit.time import utc_now
from tests.e2e.conftest import Server, browser_context
from tests.e2e.helpers import axe_check, elderly_misses, login_patient, login_staff, miss_line, set_elderly
from tests.e2e.test_admin_analytics import CHARTS_SETTLED
from tests.helpers import enrol, event, ingest_one
from tests.pages.test_patient_booking import Hospital, book
from tests.pages.test_patient_health import attended_visit, due_step, medicine_plan
from tests.rewards.kit import add_reward, redeem
from tests.security.test_matrix import _page_rule, _routes

PHONE = "13812349901"


def patient_pages() -> list[str]:
    """Every signed-in patient page a GET opens without a path parameter or a required query
    parameter (found from the app's routes, as the security sweep finds them), and the home page."""
    from carepoints.app import create_app

    found = {"/"}
    for route in _routes(list(create_app().routes)):
        dependant = getattr(route, "dependant", None)
        if (dependant is None or "GET" not in (getattr(route, "methods", None) or ())
                or not route.path.startswith("/me") or "{" in route.path):
            continue
        rule = _page_rule(dependant)
        if rule is None or not rule.signed_in:
            continue
        if any(q.field_info.is_required() for q in _query_params(dependant)):
            continue  # e.g. /me/appeals/new?entry=: opened from a points entry
        found.add(route.path)
    return sorted(found)


def _query_params(dependant: Any) -> list[Any]:
    out = list(dependant.query_params)
    for dep in dependant.dependencies:
        out.extend(_query_params(dep))
    return out


def _demo_like_patient() -> str:
    now = utc_now()
    pid = enrol(now - timedelta(days=20), phone=PHONE, name="王秀英", birth_date="1948-04-01", sex="female")
    for day in range(3):
        at = now - timedelta(days=day, hours=1)
        ingest_one(now, event(pid, "health.measurement", at, {"kind": "blood_pressure", "systolic": 132 + day,
                                                              "diastolic": 84, "provenance": "self_reported"}))
    ingest_one(now, event(pid, "conduct.violation", now - timedelta(hours=2), {"reason": "插队", "staff_id": "N7"}))
    medicine_plan(pid)
    due_step(pid)
    attended_visit(pid)
    book(pid, Hospital().ahead(3)["id"])
    add_reward(now, code="size-ct", names={"zh": "CT检查优惠券", "en": "CT exam coupon"}, points=20, stock=5)
    redeem(pid, "size-ct", now)
    return pid


def _watch(page: Any) -> list[str]:
    """Console errors (a CSP refusal is one) and uncaught page errors of `page`, as they come."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    return errors


def test_every_patient_page_in_elderly_mode_under_the_real_csp(server: Server, browser: Any) -> None:
    """Without bypass_csp (axe-core is evaluated over the DevTools protocol, which the CSP does not
    govern): a page whose script, style or font the CSP refuses, or that fails in the console, fails."""
    pages = patient_pages()
    assert {"/", "/me", "/me/earn", "/me/mall", "/me/health", "/me/settings", "/me/survey"} <= set(pages), pages
    pid = _demo_like_patient()
    failures: list[str] = []
    checked = 0
    with browser_context(browser, viewport={"width": 390, "height": 844}, device_scale_factor=2,
                         locale="zh-CN") as context:
        phone = context.new_page()
        errors = _watch(phone)
        login_patient(phone, server, PHONE, pid, next_path="/me")
        set_elderly(phone, server, True)
        for path in pages:
            probe = phone.request.get(f"{server.url}{path}", max_redirects=0)  # the browser's cookies
            if probe.status < 400 and not probe.headers.get("content-type", "").startswith("text/html"):
                continue  # a download (e.g. /me/privacy/export), not a page
            if probe.status < 400 and "<body" not in probe.text():
                continue  # an HTMX fragment loaded into a page (e.g. /me/queue/card on the home page)
            seen = len(errors)
            r = phone.goto(f"{server.url}{path}")
            assert r is not None
            if r.status >= 400:
                failures.append(f"{path}: HTTP {r.status}")
                continue
            phone.wait_for_load_state("networkidle")  # the HTMX cards, charts and fonts are in
            assert phone.locator("body.elderly").count() == 1, path
            checked += 1
            misses = elderly_misses(phone)
            if misses:
                failures.append(f"{path}:\n" + "\n".join(miss_line(m) for m in misses))
            try:
                axe_check(phone)
            except AssertionError as err:
                failures.append(f"{path}: axe\n{err}")
            if len(errors) > seen:
                failures.append(f"{path}: console\n  " + "\n  ".join(errors[seen:]))
    assert checked >= 20, checked
    assert not failures, f"{len(failures)} of {checked} patient pages miss elderly mode's floor " \
        "(>= 18 px text, >= 44 px targets), axe or fail in the console:\n" + "\n".join(failures)

    # the programme admin's dashboard (ECharts, vendored) under the same real CSP
    with browser_context(browser, viewport={"width": 1280, "height": 800}, locale="zh-CN") as context:
        desktop = context.new_page()
        errors = _watch(desktop)
        login_staff(desktop, server, "admin")
        for path in ("/admin", "/admin/analytics"):
            desktop.goto(f"{server.url}{path}")
            desktop.wait_for_function(CHARTS_SETTLED)
            desktop.wait_for_load_state("networkidle")
        assert desktop.locator("[data-chart][data-chart-ready]").count() >= 2
        assert errors == [], errors
