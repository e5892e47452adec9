"""The programme admin's rules and drafts over real HTTP (SQLite and PostgreSQL): the rules
table and forms show the newest version, a saved form is a draft (the whole document = the
newest version + the edit) with its field-by-field diff and a 30-day simulation, validation
errors come back next to their fields with their codes, the author cannot approve (409), a
second admin's approval installs the next version that the engine then uses, discard
withdraws or rejects; admins only (frontdesk 403, signed out → the login), CSRF enforced."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from carepoints.app import create_app
from carepoints.config import get_settings
from carepoints.kit.db import read_tx, table
from carepoints.kit.time import utc_now
from carepoints.pages.web import STAFF
from carepoints.rules import governance, service
from carepoints.rules.engine import EventView, PatientState, evaluate
from carepoints.rules.models import ProgrammeDraft
from tests.conftest import Db
from tests.helpers import enrol, event, ingest_one
from tests.locks import oks, race
from tests.pages.helpers import PageClient, staff_client

UNKNOWN = "0190a5f0-0000-7000-8000-000000000000"


def refused(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, r.text[:800]
    assert f'data-error="{code}"' in r.text, r.text[:800]


def _activation(days: int = 1) -> str:
    local = (utc_now() + timedelta(days=days)).astimezone(get_settings().tz)
    return local.strftime("%Y-%m-%dT%H:%M")


def _rule_form(client: PageClient, code: str) -> dict[str, str]:
    """The rule form's fields as rendered (inputs and selected options)."""
    html = client.get(f"/admin/rules/{code}").text
    form: dict[str, str] = {}
    for name, value in re.findall(r'<input id="f-[^"]+" name="([^"]+)" type="(?:text|date|datetime-local)" '
                                  r'value="([^"]*)"', html):
        form[name] = value.replace("&#39;", "'").replace("&amp;", "&")
    for name, body in re.findall(r'<select id="f-[^"]+" name="([^"]+)">(.*?)</select>', html, re.S):
        m = re.search(r'<option value="([^"]*)" selected', body)
        if m:
            form[name] = m.group(1)
    return form


def _draft_id(r: Any) -> str:
    assert r.status_code == 303, r.text[:800]
    m = re.match(r"/admin/drafts/([0-9a-f-]{36})\?done=created$", r.headers["location"])
    assert m, r.headers["location"]
    return m.group(1)


def _propose_points(client: PageClient, code: str, points: int, **extra: str) -> str:
    form = {**_rule_form(client, code), "points": str(points), "summary_zh": "提高积分", "summary_en": "More points",
            "activate_at": _activation(), **extra}
    return _draft_id(client.submit(f"/admin/rules/{code}", form))


def test_rules_table_and_forms_show_the_newest_version(db: Db) -> None:
    admin, _ = staff_client("admin")
    page = admin.get("/admin/rules")
    assert page.status_code == 200, page.text[:500]
    assert 'data-version="1"' in page.text
    row = re.search(r'<tr data-rule="self_service">(.*?)</tr>', page.text, re.S)
    assert row, page.text[:2000]
    assert "自助服务" in row.group(1)
    assert '<td class="cp-num" data-points>10</td>' in row.group(1)
    assert "每日积分上限 30" in row.group(1)
    assert 'data-setting="annual_cap">10000<' in page.text
    assert "Self-service" in admin.get("/admin/rules?lang=en").text
    # one rule as fields (never YAML): limits, streak, conditions
    form = _rule_form(admin, "education")
    assert form["points"] == "20"
    assert form["daily_points"] == "40"
    assert form["once_per"] == "content_id"
    assert form["status"] == "active"
    assert form["cond-0-attr"] == "score"
    assert form["cond-0-op"] == "gte"
    assert form["cond-0-other"] == "pass_mark"
    streak = _rule_form(admin, "checkin_streak_7")
    assert streak["streak_days"] == "7"
    assert streak["streak_group"]
    html = admin.get("/admin/rules/education").text
    assert "yaml" not in html.lower()
    assert 'for="f-points"' in html
    refused(admin.get("/admin/rules/nope"), 404, "programme.rule_not_found")
    settings = admin.get("/admin/settings")
    assert settings.status_code == 200
    assert 'name="annual_cap" type="text" value="10000"' in settings.text
    assert 'name="point_value_cny" type="text" value="10.00"' in settings.text


def test_rule_form_makes_a_draft_with_diff_and_simulation(db: Db) -> None:
    now = utc_now()
    pid = enrol(now - timedelta(days=40))
    d = (now - timedelta(days=3)).date()
    for m in range(2):
        ingest_one(now, event(pid, "selfservice.used", datetime(d.year, d.month, d.day, 2, m, tzinfo=UTC),
                              {"action": "pay"}))
    admin, _ = staff_client("admin")
    did = _propose_points(admin, "self_service", 20, daily_points="50")
    page = admin.get(f"/admin/drafts/{did}?done=created")
    assert page.status_code == 200, page.text[:800]
    assert "草稿已保存" in page.text
    assert 'data-draft-status="draft"' in page.text
    change = re.search(r'<tr data-change="self_service.points">(.*?)</tr>', page.text, re.S)
    assert change, page.text[:3000]
    assert "<del class=\"cp-diff\">10</del>" in change.group(1)
    assert "<ins class=\"cp-diff\">20</ins>" in change.group(1)
    assert 'data-change="self_service.limits.daily_points"' in page.text
    assert 'data-change="lecture.points"' not in page.text  # only what changed
    # the simulation: 2 uses, 10 + 10 now, 20 + 20 with the draft
    row = re.search(r'<tr data-sim-rule="self_service">(.*?)</tr>', page.text, re.S)
    assert row, page.text[-3000:]
    cells = re.findall(r'<td class="cp-num"[^>]*>(.*?)</td>', row.group(1))
    plain = [re.sub(r"<[^>]+>", "", c) for c in cells]
    assert plain == ["20", "2", "1", "40", "2", "1", "+20", "0", "0"]
    # the draft is the whole newest document with only that rule changed
    with read_tx() as session:
        doc = governance.draft(session, did)
    assert doc["change_kinds"] == ["rules"]
    assert doc["diff"]["rules"] == [{"code": "self_service", "change": "changed", "fields": [
        {"field": "limits.daily_points", "old": 30, "new": 50}, {"field": "points", "old": 10, "new": 20}]}]
    listing = admin.get("/admin/drafts")
    assert f'data-draft="{did}"' in listing.text
    assert "提高积分" in listing.text


def test_rule_form_errors_are_shown_next_to_their_fields(db: Db) -> None:
    admin, _ = staff_client("admin")
    base = {**_rule_form(admin, "self_service"), "summary_zh": "改", "summary_en": "Change",
            "activate_at": _activation()}
    bad = admin.submit("/admin/rules/self_service", {**base, "points": "abc"})
    refused(bad, 422, "request.invalid")
    assert 'id="e-points"' in bad.text
    assert 'value="abc"' in bad.text  # the form keeps what was typed
    bad = admin.submit("/admin/rules/self_service", {**base, "multiplier": "1", "points": "0"})
    refused(bad, 422, "programme.invalid")
    assert 'id="e-multiplier"' in bad.text
    bad = admin.submit("/admin/rules/self_service", {**base, "points": "0"})
    refused(bad, 422, "programme.invalid")
    assert "data-form-error" in bad.text  # "a rule needs points or a multiplier": no one field's
    bad = admin.submit("/admin/rules/self_service", {**base, "summary_en": "", "points": "15"})
    refused(bad, 422, "request.invalid")
    assert 'id="e-summary_en"' in bad.text
    bad = admin.submit("/admin/rules/self_service", {**base, "points": "15", "activate_at": "2001-01-01T00:00"})
    refused(bad, 400, "programme.activate_at_past")
    refused(admin.submit("/admin/rules/self_service", base), 400, "programme.no_changes")
    refused(admin.submit("/admin/rules/nope", base), 404, "programme.rule_not_found")
    refused(admin.submit("/admin/rules/self_service", {**base, "points": "15"}, csrf=False), 403, "pages.csrf_failed")
    with read_tx() as session:
        assert governance.drafts(session) == []
    # settings: a bad value is shown at its field
    form = {"annual_cap": "0", "expiry_months": "24", "expiring_notice_days": "30", "max_event_age_days": "1095",
            "point_value_points": "100", "point_value_cny": "10.00", "suspension_threshold": "3",
            "suspension_window_days": "90", "suspension_duration_hours": "720", "summary_zh": "上限",
            "summary_en": "Cap", "activate_at": _activation()}
    bad = admin.submit("/admin/settings", form)
    refused(bad, 422, "programme.invalid")
    assert 'id="e-annual_cap"' in bad.text
    bad = admin.submit("/admin/settings", {**form, "annual_cap": "8000", "point_value_cny": "ten"})
    refused(bad, 422, "request.invalid")
    assert 'id="e-point_value_cny"' in bad.text
    did = _draft_id(admin.submit("/admin/settings", {**form, "annual_cap": "8000"}))
    page = admin.get(f"/admin/drafts/{did}")
    assert 'data-change="settings.annual_cap"' in page.text
    assert "年度积分上限" in page.text


def test_conditions_edit_remove_and_add(db: Db) -> None:
    admin, _ = staff_client("admin")
    form = {**_rule_form(admin, "education"), "summary_zh": "条件", "summary_en": "Conditions",
            "activate_at": _activation(), "cond-0-remove": "1", "new_attr": "score", "new_op": "gte",
            "new_value": "60"}
    did = _draft_id(admin.submit("/admin/rules/education", form))
    with read_tx() as session:
        doc = governance.draft(session, did)
    rule = next(r for r in doc["document"]["rules"] if r["code"] == "education")
    assert rule["conditions"] == [{"type": "attr", "attr": "score", "op": "gte", "value": 60, "default": None}]
    assert rule["limits"]["once_per"] == ["content_id"]


def test_approval_by_a_second_admin_installs_and_the_engine_uses_it(db: Db) -> None:
    author, _ = staff_client("admin")
    checker, _ = staff_client("admin")
    did = _propose_points(author, "lecture", 45)
    # the author may not approve: 409 with the code, shown on the draft; nothing installed
    own = author.submit(f"/admin/drafts/{did}/approve", {})
    refused(own, 409, "programme.approver_is_author")
    assert "另一位管理员" in own.text
    assert 'data-simulation' in own.text
    refused(checker.submit(f"/admin/drafts/{did}/approve", {}, csrf=False), 403, "pages.csrf_failed")
    with read_tx() as session:
        assert service.programmes(session).latest.version == 1
    r = checker.submit(f"/admin/drafts/{did}/approve", {"note": "核对无误"})
    assert r.status_code == 303, r.text[:800]
    assert r.headers["location"] == f"/admin/drafts/{did}?done=approved"
    page = checker.get(r.headers["location"])
    assert 'data-draft-status="approved"' in page.text
    assert "已安装为第 2 版" in page.text
    with read_tx() as session:
        doc = governance.draft(session, did)
        pset = service.programmes(session)
    assert doc["installed_version"] == 2
    assert pset.latest.version == 2
    # from its activation time the engine pays the new value, before it the old one
    after = doc["activate_at"] + timedelta(minutes=1)
    ev = EventView("e1", "lecture.attended", after, {"lecture_id": "L9"})
    decision = evaluate(pset, ev, PatientState("p1"), after)
    assert decision.version == 2
    assert [(a.rule, a.points) for a in decision.awards] == [("lecture", 45)]
    early = EventView("e2", "lecture.attended", utc_now(), {"lecture_id": "L9"})
    assert [a.points for a in evaluate(pset, early, PatientState("p1"), utc_now()).awards] == [30]
    # decided once: a second approval or a discard is refused with its code
    refused(checker.submit(f"/admin/drafts/{did}/approve", {}), 409, "programme.draft_not_open")
    refused(author.submit(f"/admin/drafts/{did}/discard", {}), 409, "programme.draft_not_open")
    # the rules page now shows version 2 (scheduled) and its value
    rules = checker.get("/admin/rules")
    assert 'data-version="2"' in rules.text
    assert re.search(r'<tr data-rule="lecture">.*?data-points>45<', rules.text, re.S)


def test_discard_withdraws_or_rejects(db: Db) -> None:
    author, _ = staff_client("admin")
    other, _ = staff_client("admin")
    mine = _propose_points(author, "lecture", 35)
    r = author.submit(f"/admin/drafts/{mine}/discard", {})
    assert r.headers["location"] == f"/admin/drafts/{mine}?done=withdrawn"
    theirs = _propose_points(author, "lecture", 36)
    r = other.submit(f"/admin/drafts/{theirs}/discard", {"note": "不需要"})
    assert r.headers["location"] == f"/admin/drafts/{theirs}?done=rejected"
    with read_tx() as session:
        assert governance.draft(session, mine)["status"] == "withdrawn"
        rejected = governance.draft(session, theirs)
    assert rejected["status"] == "rejected"
    assert rejected["decision_note"] == "不需要"
    assert f'data-draft="{theirs}"' in other.get("/admin/drafts?status=rejected").text
    assert f'data-draft="{mine}"' not in other.get("/admin/drafts").text
    refused(other.get(f"/admin/drafts/{UNKNOWN}"), 404, "programme.draft_not_found")
    refused(other.submit(f"/admin/drafts/{UNKNOWN}/approve", {}), 404, "programme.draft_not_found")
    refused(other.submit(f"/admin/drafts/{UNKNOWN}/discard", {}), 404, "programme.draft_not_found")


def test_admins_only(db: Db) -> None:
    admin, _ = staff_client("admin")
    did = _propose_points(admin, "lecture", 40)
    desk, _ = staff_client("frontdesk")
    for url in ("/admin/rules", "/admin/rules/lecture", "/admin/settings", "/admin/drafts", f"/admin/drafts/{did}"):
        refused(desk.get(url), 403, "auth.forbidden")
    refused(desk.submit("/admin/rules/lecture", {"points": "50"}), 403, "auth.forbidden")
    refused(desk.submit(f"/admin/drafts/{did}/approve", {}), 403, "auth.forbidden")
    refused(desk.submit(f"/admin/drafts/{did}/discard", {}), 403, "auth.forbidden")
    anon = PageClient(create_app())
    r = anon.get("/admin/rules", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith(STAFF.login)
    with read_tx() as session:
        assert governance.draft(session, did)["status"] == "draft"


def test_two_admins_approving_at_once_install_once(racing: Db) -> None:
    """Two approvals of one draft, each on its own connection: the guarded UPDATE lets one
    install (303), the other is told the draft is decided (409); one new version."""
    author, _ = staff_client("admin")
    first, _ = staff_client("admin")
    second, _ = staff_client("admin")
    did = _propose_points(author, "lecture", 50)

    def approve(client: PageClient) -> Any:
        return lambda: client.submit(f"/admin/drafts/{did}/approve", {})

    results = race(racing, [approve(first), approve(second)], lock=(table(ProgrammeDraft), [did]))
    answers = sorted(r.status_code for r in oks(results))
    assert answers == [303, 409], [r.text[:300] for r in oks(results)]
    refused(next(r for r in oks(results) if r.status_code == 409), 409, "programme.draft_not_open")
    with read_tx() as session:
        assert service.programmes(session).latest.version == 2
        assert governance.draft(session, did)["installed_version"] == 2
