"""The analytics dashboard pages over real HTTP (SQLite and PostgreSQL), against the hand-computed
hospital of tests/pages/analytics_world.py: the overview's KPI cards with the previous period,
its charts (ECharts options built from the views' hints, each keeping our aria-label) and links;
the period line's time of today's live figures; any view as a typed table with breakdowns and
drill-down filters and its parameters named (selects where the choices are known); the visits and
care gauges from their rate columns; the Excel and CSV exports holding the numbers on screen; the
period presets; bad parameters as error pages (4xx, never 500); who may open them."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from openpyxl import load_workbook

from carepoints.analytics import views
from carepoints.config import get_settings
from carepoints.engagement.care.schemas import AlertKind, AlertStatus
from carepoints.kit.time import utc_now
from carepoints.pages.admin.analytics import fmt, preset_period
from tests.analytics import visits_kit as kit
from tests.conftest import Db
from tests.pages.analytics_world import ACTIVE, BY_BAND, ISSUED, PREVIOUS_ISSUED, World, build, report_table
from tests.pages.helpers import PageClient, staff_client


@pytest.fixture
def world(db: Db) -> World:
    return build()


def admin() -> PageClient:
    return staff_client("admin")[0]


def refused(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, r.text[:800]
    assert f'data-error="{code}"' in r.text, r.text[:800]


def card(html: str, key: str) -> dict[str, str]:
    m = re.search(rf'<li class="cp-an-card" data-kpi="{key}" data-group="[a-z_]+" data-direction="([a-z]*)">'
                  r'.*?data-kpi-value>([^<]*)<.*?data-kpi-previous>([^<]*)<', html, re.S)
    assert m, f"no card {key}"
    return {"direction": m.group(1), "value": m.group(2), "previous": m.group(3)}


def charts(html: str) -> list[dict[str, Any]]:
    """The ECharts options of the page's charts (the attribute is HTML-escaped JSON)."""
    import html as h

    return [json.loads(h.unescape(raw)) for raw in re.findall(r"data-chart='([^']*)'", html)]


def labelled_charts(html: str) -> list[tuple[str, dict[str, Any]]]:
    """Each chart container's aria-label with its ECharts option."""
    import html as h

    return [(h.unescape(label), json.loads(h.unescape(raw))) for label, raw in
            re.findall(r'aria-label="([^"]*)"\s+data-chart-type="[a-z]+" data-chart=\'([^\']*)\'', html)]


def live_line(html: str, since: datetime, words: str = "今日数据更新于") -> datetime:
    """The period line's time of today's live figures: computed between `since` and now, shown
    as HH:MM in the hospital's local time. Answers the instant."""
    m = re.search(r'<span data-live-at="([^"]+)">([^<]*)<time datetime="([^"]+)">([^<]*)</time>', html)
    assert m, "no live time on the period line"
    at = datetime.fromisoformat(m.group(1))
    assert m.group(3) == m.group(1)
    assert since <= at <= utc_now(), (since, at)
    assert " ".join(m.group(2).split()) == words
    assert m.group(4) == f"{at.astimezone(get_settings().tz):%H:%M}"
    return at


def row_of(rows: list[dict[str, tuple[str, str]]], col: str, text: str) -> dict[str, tuple[str, str]]:
    found = [r for r in rows if r.get(col, ("", ""))[0] == text]
    assert len(found) == 1, (text, rows)
    return found[0]


# --- pure: formatting and presets -------------------------------------------------------

def test_cells_are_formatted_by_kind() -> None:
    assert fmt(0.3867, "pct") == "38.7%"
    assert fmt(Decimal("7062.5"), "cny") == "¥7,062.50"
    assert fmt("354.00", "cny") == "¥354.00"
    assert fmt(Decimal("-30"), "cny") == "-¥30.00"  # the sign before the currency
    assert fmt(17040, "int") == "17,040"
    assert fmt(12.5, "int") == "12.5"  # a weekly average under an int column
    assert fmt(2.345, "num") == "2.35"
    assert fmt(None, "int") == "—"
    assert fmt("内分泌科", "text") == "内分泌科"


def test_presets() -> None:
    today = date(2026, 3, 15)
    assert preset_period("7", today) == (date(2026, 3, 9), today)
    assert preset_period("90", today) == (date(2025, 12, 16), today)
    assert preset_period("this_month", today) == (date(2026, 3, 1), today)
    assert preset_period("last_month", today) == (date(2026, 2, 1), date(2026, 2, 28))
    assert preset_period("last_month", date(2026, 1, 5)) == (date(2025, 12, 1), date(2025, 12, 31))


# --- the overview -----------------------------------------------------------------------

def test_overview_cards_charts_and_links(world: World) -> None:
    client = admin()
    since = utc_now()
    r = client.get("/admin/analytics")
    assert r.status_code == 200, r.text[:800]
    live_line(r.text, since)  # the kiosk use today is live
    assert 'aria-current="page"' in r.text
    assert 'href="/admin/analytics"' in r.text
    start = world.today - timedelta(days=29)
    assert f'data-period="{start.isoformat()}~{world.today.isoformat()}"' in r.text
    issued = card(r.text, "issued")
    assert issued == {"direction": "down", "value": f"{ISSUED}", "previous": f"{PREVIOUS_ISSUED}"}
    assert card(r.text, "active") == {"direction": "up", "value": f"{ACTIVE}", "previous": "0"}
    assert card(r.text, "redemption_rate")["value"] == "0.0%"  # 0 of 40 points
    assert "-80.0%" in r.text  # 40 against 200
    found = charts(r.text)
    assert len(found) >= 3
    trend = next(c for c in found if c["title"]["text"] == "每日积分")
    days = trend["xAxis"]["data"]
    issued_series = next(s for s in trend["series"] if s["name"] == "发放积分")
    shown = dict(zip(days, issued_series["data"], strict=True))
    assert len(days) == 30
    assert {d: v for d, v in shown.items() if v} == {d.isoformat(): v for d, v in world.by_day.items()}
    by_band = next(c for c in found if c["title"]["text"] == "各年龄段参与率(按渠道)")
    assert "70-79岁" in by_band["xAxis"]["data"]
    for name in (v.name for v in views.all_views() if v.permission in ("analytics:read", "experiments:read",
                                                                      "care:read")):
        assert f'data-view-link="{name}"' in r.text, name
    assert 'data-panel="points-note"' in r.text  # no annual budget set: a note instead of the gauge


def test_overview_gauge_when_a_budget_is_set(world: World) -> None:
    from carepoints.audit.service import Actor
    from carepoints.kit.db import write_tx
    from carepoints.kit.time import utc_now
    from carepoints.rules import governance

    a, b = Actor("staff", "admin-1", "admin"), Actor("staff", "admin-2", "admin")
    now = utc_now()
    with write_tx() as session:
        draft = governance.propose(session, a, summary={"zh": "预算", "en": "Budget"}, activate_at=now,
                                   now=now, changes={"settings": {"budget": {"cny": "1000"}}})
    with write_tx() as session:
        governance.approve(session, draft["id"], b, now)
    r = admin().get("/admin/analytics")
    gauge = next(c for c in charts(r.text) if c["series"][0]["type"] == "gauge")
    assert gauge["series"][0]["data"][0]["value"] == 0.0  # nothing redeemed of ¥1,000.00
    assert gauge["series"][0]["data"][0]["name"] == "¥0.00 / ¥1,000.00"


def test_presets_set_the_period(world: World) -> None:
    client = admin()
    r = client.get("/admin/analytics?preset=7")
    assert f'data-period="{(world.today - timedelta(days=6)).isoformat()}~{world.today.isoformat()}"' in r.text
    assert card(r.text, "issued")["value"] == f"{ISSUED}"  # every earning of the last 30 days is in the last 3
    first = world.today.replace(day=1)
    last = first - timedelta(days=1)
    r = client.get("/admin/analytics?preset=last_month")
    assert f'data-period="{last.replace(day=1).isoformat()}~{last.isoformat()}"' in r.text
    assert "data-live-at" not in r.text  # nothing of today: no live time
    r = client.get(f"/admin/analytics?start={world.today.isoformat()}&end={world.today.isoformat()}")
    assert card(r.text, "issued")["value"] == "10"  # today, live
    assert card(r.text, "issued")["previous"] == "0"


# --- one view ----------------------------------------------------------------------------

def test_a_view_as_a_typed_table_with_breakdown_and_drill_down(world: World) -> None:
    client = admin()
    r = client.get("/admin/analytics/points?by=age_band")
    assert r.status_code == 200, r.text[:800]
    rows = report_table(r.text)
    assert row_of(rows, "name", "合计")["value_issued"] == (f"{ISSUED}", f"{ISSUED}")
    for band, points in BY_BAND.items():
        row = row_of(rows, "name", f"{band}岁")
        assert row["value_issued"] == (str(points), str(points))
        assert row["value_active"][0] == "1"
        assert row["value_redemption_rate"] == ("0.0%", "0.0")
        assert row["value_budget_used_cny"] == ("¥0.00", "0.00")
    assert 'data-export-xlsx' in r.text
    assert "/admin/analytics/points/export.xlsx?" in r.text
    assert '<option value="age_band" selected>' in r.text
    drill = re.search(r'<a href="(/admin/analytics/points\?[^"]*age_band=70-79[^"]*)"', r.text)
    assert drill, "the 70-79 group links to the view narrowed to it"
    narrowed = client.get(drill.group(1).replace("&amp;", "&"))
    assert narrowed.status_code == 200, narrowed.text[:800]
    assert row_of(report_table(narrowed.text), "name", "全部")["value_issued"][0] == "20"
    since = utc_now()
    english = client.get("/admin/analytics/points?by=age_band&lang=en")
    assert "Points issued (period)" in english.text
    live_line(english.text, since, "today as of")
    assert row_of(report_table(english.text), "name", "Total")["value_issued"][0] == f"{ISSUED}"


def test_every_registered_view_renders(world: World) -> None:
    client = admin()
    for v in views.all_views():
        r = client.get(f"/admin/analytics/{v.name}")
        assert r.status_code == 200, (v.name, r.text[:800])
        assert f'data-view="{v.name}"' in r.text
        for label, option in labelled_charts(r.text):  # every chart option is well-formed ECharts
            assert option["series"], v.name
            # ECharts' aria keeps our label (the numbers are in the table) instead of its own
            assert label == f"{option['title']['text']},数值见下表"
            assert option["aria"] == {"enabled": True, "label": {"description": label}}
            if option.get("yAxis", {}).get("name"):  # "%" above the plot, below the legend's line
                assert option["grid"]["top"] - option["yAxis"]["nameGap"] - 14 >= option["legend"]["top"] + 14
        for p in v.params:  # every parameter has a name in words
            assert f'<label for="f-{p}">{p}</label>' not in r.text, (v.name, p)


def test_care_list_parameters_are_named_and_offer_their_choices(world: World) -> None:
    client = admin()
    r = client.get("/admin/analytics/care_list?kind=critical_value")
    assert r.status_code == 200, r.text[:800]
    for key, name in (("kind", "提醒类型"), ("status", "提醒状态"), ("limit", "每页条数"), ("offset", "跳过条数")):
        assert f'<label for="f-{key}">{name}</label>' in r.text, key
    kinds = re.search(r'<select id="f-kind" name="kind">(.*?)</select>', r.text, re.S)
    statuses = re.search(r'<select id="f-status" name="status">(.*?)</select>', r.text, re.S)
    assert kinds
    assert statuses
    assert re.findall(r'<option value="([a-z_]+)"', kinds.group(1)) == [k.value for k in AlertKind]
    assert re.findall(r'<option value="([a-z_]+)"', statuses.group(1)) == [s.value for s in AlertStatus]
    assert '<option value="critical_value" selected>危急值</option>' in kinds.group(1)  # the asked one kept
    assert '<option value="open" >待处理</option>' in statuses.group(1)
    assert '<input id="f-limit" name="limit" value="">' in r.text  # no known choices: a text box
    english = client.get("/admin/analytics/care_list?lang=en")
    assert '<label for="f-kind">Alert kind</label>' in english.text
    assert ">Critical value</option>" in english.text


def test_visits_and_care_draw_their_gauges_without_a_breakdown(db: Db) -> None:
    kit.visits_world(kit.at(kit.T0 - timedelta(days=1), "09:00"))
    kit.rollup()
    client = admin()
    week = f"start={kit.W2.isoformat()}&end={(kit.W2 + timedelta(days=6)).isoformat()}"
    r = client.get(f"/admin/analytics/visits?{week}")
    gauges = [c for c in charts(r.text) if c["series"][0]["type"] == "gauge"]
    assert [g["title"]["text"] for g in gauges] == ["爽约率"]
    # W2: 2 no-shows of 7 visits booked (tests/analytics/test_visits.py)
    assert gauges[0]["series"][0]["data"] == [{"value": 28.6, "name": "爽约率(本期)"}]
    assert row_of(report_table(r.text), "name", "全部")["value_no_show_rate"][0] == "28.6%"
    by = client.get(f"/admin/analytics/visits?{week}&by=department")
    assert [c["title"]["text"] for c in charts(by.text)] == ["爽约率", "就诊指标"]
    assert charts(by.text)[0]["series"][0]["data"][0]["value"] == 28.6  # the total row, not a group's
    care = client.get(f"/admin/analytics/care?{week}")
    gauge = next(c for c in charts(care.text) if c["title"]["text"] == "随访完成率")
    shown = row_of(report_table(care.text), "name", "全部")["value_followup_completion"]
    assert shown[1] != ""
    assert gauge["series"][0]["data"][0]["value"] == round(float(shown[1]) * 100, 1)
    assert gauge["series"][0]["data"][0]["name"] == "随访完成率(本期)"
    english = client.get(f"/admin/analytics/visits?{week}&lang=en")
    assert charts(english.text)[0]["series"][0]["data"][0]["name"] == "No-show rate (period)"


def test_exports_hold_the_numbers_on_screen(world: World) -> None:
    client = admin()
    query = "by=age_band"
    page = client.get(f"/admin/analytics/points?{query}")
    shown = report_table(page.text)
    x = client.get(f"/admin/analytics/points/export.xlsx?{query}")
    assert x.status_code == 200, x.text[:500]
    assert x.headers["content-type"].startswith("application/vnd.openxmlformats")
    start = world.today - timedelta(days=29)
    assert f'filename="points_{start.isoformat()}_{world.today.isoformat()}.xlsx"' in x.headers["content-disposition"]
    sheet = load_workbook(io.BytesIO(x.content)).active
    assert sheet is not None
    table = list(sheet.iter_rows(min_row=2, values_only=True))
    header, body = table[0], table[1:]
    assert header[0] == "分组"
    assert "发放积分(本期)" in header
    keys = list(shown[0])
    assert len(body) == len(shown)
    for cells, row in zip(body, shown, strict=True):
        for key, value in zip(keys, cells, strict=True):
            raw = row[key][1]
            if key == "name":
                continue
            assert (value is None) == (raw == ""), (key, value, raw)
            if value is not None:
                assert Decimal(str(value)) == Decimal(raw), (key, value, raw)
    c = client.get(f"/admin/analytics/points/export.csv?{query}&lang=en")
    assert c.status_code == 200
    assert c.content.startswith("\ufeff".encode())
    lines = list(csv.reader(io.StringIO(c.content.decode("utf-8-sig"))))
    assert lines[0][0] == "Group"
    assert "Points issued (period)" in lines[0]
    col = lines[0].index("Points issued (period)")
    assert [line[col] for line in lines[1:]] == [row["value_issued"][1] for row in shown]


def test_bad_parameters_are_error_pages(world: World) -> None:
    client = admin()
    refused(client.get("/admin/analytics/points?by=bogus"), 422, "analytics.bad_breakdown")
    refused(client.get("/admin/analytics/trend?by=department"), 422, "analytics.bad_breakdown")
    refused(client.get("/admin/analytics/points?age_band=bogus"), 422, "analytics.bad_filter")
    refused(client.get("/admin/analytics/nope"), 404, "analytics.unknown_view")
    refused(client.get("/admin/analytics/nope/export.xlsx"), 404, "analytics.unknown_view")
    refused(client.get("/admin/analytics?start=2026-13-01"), 422, "request.invalid")
    refused(client.get("/admin/analytics?preset=week"), 422, "request.invalid")
    refused(client.get("/admin/analytics?start=2026-03-02&end=2026-03-01"), 422, "analytics.bad_range")
    refused(client.get("/admin/analytics/points?start=2020-01-01&end=2026-01-01"), 422, "analytics.bad_range")
    refused(client.get("/admin/analytics/points/export.csv?end=2026-13-01"), 422, "request.invalid")
    refused(client.get("/admin/analytics/experiment_results?outcome=bogus"), 422, "experiments.unknown_outcome")
    r = client.get("/admin/analytics/points?by=bogus", headers={"HX-Request": "true"})
    assert r.status_code == 422
    assert r.headers["hx-retarget"] == "#flash"


def test_who_may_open_the_dashboard(world: World) -> None:
    auditor, _ = staff_client("auditor")
    r = auditor.get("/admin/analytics")
    assert r.status_code == 200
    assert card(r.text, "issued")["value"] == f"{ISSUED}"
    assert 'data-view-link="care_list"' not in r.text  # the care list is the care team's (care:read)
    refused(auditor.get("/admin/analytics/care_list"), 403, "auth.forbidden")
    assert auditor.get("/admin/analytics/points/export.xlsx").status_code == 200
    for role in ("frontdesk", "nurse"):
        other, _ = staff_client(role)
        for url in ("/admin/analytics", "/admin/analytics/points", "/admin/analytics/points/export.csv"):
            refused(other.get(url), 403, "auth.forbidden")
    anon = PageClient(auditor.app)
    r = anon.get("/admin/analytics/points/export.xlsx", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/staff/login?next=")
