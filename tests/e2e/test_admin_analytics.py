"""The analytics dashboard in Chromium (desktop 1280 and phone 390) over the hospital of
tests/analytics/visits_kit.visits_world (bookings, visits attended and missed, points earned and
redeemed), a kiosk use today (live) and an annual budget, with every closed day rolled up
(`rollup_days`): the overview and every view with charts draw them (a canvas inside each chart,
data-chart-ready, no console or page errors) and pass the accessibility check; the breakdown and
period controls change the table; the Excel and CSV exports hold the numbers on screen; the
English page has English chart titles and headers; each chart keeps its own aria-label (the
numbers are in the table below); the period line says when today's live figures were computed.
A PostgreSQL smoke run."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

from openpyxl import load_workbook

from carepoints.analytics.points import TREND_COLUMNS
from carepoints.analytics.rollup import rollup_days
from carepoints.audit.service import Actor
from carepoints.kit.db import write_tx
from carepoints.kit.templating import say
from carepoints.kit.time import utc_now
from carepoints.rules import governance
from tests.analytics import visits_kit as kit
from tests.e2e.conftest import Server
from tests.e2e.helpers import axe_check, login_staff, px, shot, submit
from tests.helpers import event, ingest_one

# every chart of the page drawn (or failed): ECharts has put its canvas in the container
CHARTS_SETTLED = """() => [...document.querySelectorAll('[data-chart]')].every(
    e => e.hasAttribute('data-chart-error') || (e.hasAttribute('data-chart-ready') && e.querySelector('canvas')))"""
# per chart: its title, box, and how many canvas pixels are painted (a blank canvas has none)
CHARTS = """() => [...document.querySelectorAll('[data-chart]')].map(e => {
    const c = e.querySelector('canvas'), r = e.getBoundingClientRect();
    let inked = 0;
    if (c && c.width && c.height) {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        for (let i = 3; i < d.length; i += 4) { if (d[i]) inked++; }
    }
    return {title: JSON.parse(e.dataset.chart).title.text, type: e.dataset.chartType,
            label: e.getAttribute('aria-label'),
            error: e.getAttribute('data-chart-error'), left: r.left, right: r.right, width: r.width,
            height: r.height, canvas: c ? [c.clientWidth, c.clientHeight] : null, inked: inked};
})"""
# the report table on screen: header texts, which columns are numbers, each row's cell texts
TABLE = """() => {
    const t = document.querySelector('table[data-report]');
    return {head: [...t.querySelectorAll('thead th')].map(h => h.innerText.trim()),
            num: [...t.querySelectorAll('thead th')].map(h => h.classList.contains('cp-num')),
            rows: [...t.querySelectorAll('tbody tr')].map(
                r => [...r.querySelectorAll('th, td')].map(c => c.innerText.trim()))};
}"""
# a table wider than its box: scrolled to its end, where the group column is (it should stay in view)
SCROLLED = """() => {
    const box = document.querySelector('.cp-an-scroll:has(> table[data-report])');
    if (box.scrollWidth <= box.clientWidth + 1) return null;
    box.scrollLeft = box.scrollWidth;
    const name = box.querySelector('tbody th, thead th').getBoundingClientRect();
    const out = {scrolled: box.scrollLeft, offset: name.left - box.getBoundingClientRect().left};
    box.scrollLeft = 0;
    return out;
}"""
NUMBER = re.compile(r"¥?(-?[0-9][0-9,]*(?:\.[0-9]+)?)(%?)")
CJK = re.compile(r"[\u4e00-\u9fff]")


def _budget() -> None:
    """An annual budget in force (the gauge on the overview and the points view)."""
    now = utc_now()
    with write_tx() as session:
        draft = governance.propose(session, Actor("staff", "admin-1", "admin"), summary={"zh": "预算", "en": "Budget"},
                                   activate_at=now, now=now, changes={"settings": {"budget": {"cny": "20000"}}})
    with write_tx() as session:
        governance.approve(session, draft["id"], Actor("staff", "admin-2", "admin"), now)


def seed() -> dict[str, str]:
    """The visits world (two closed weeks), a kiosk use today (live) and a budget; every closed
    day since the patients enrolled rolled up. Answers the departments (code → id)."""
    h, p = kit.visits_world(kit.at(kit.T0 - timedelta(days=1), "09:00"))
    now = utc_now()
    ingest_one(now, event(p["P1"], "selfservice.used", now - timedelta(seconds=1), {"action": "pay"}))
    _budget()
    first, today = kit.T0 - timedelta(days=1), kit.today()
    result = rollup_days((first + timedelta(days=i) for i in range((today - first).days)), today, kit.tz())
    assert result["rows"] > 0
    return dict(h.departments)


# --- what the browser shows ---------------------------------------------------------------

def watch(page: Any) -> list[str]:
    """Console errors and uncaught page errors of `page`, as they come."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    return errors


def drawn(page: Any, errors: list[str]) -> list[dict[str, Any]]:
    """Wait for every chart of the page; each is a painted canvas inside the viewport's width,
    and nothing went wrong in the console. Answers the charts."""
    page.wait_for_function(CHARTS_SETTLED)
    charts: list[dict[str, Any]] = page.evaluate(CHARTS)
    width = page.viewport_size["width"]
    for c in charts:
        assert c["error"] is None, (page.url, c)
        assert c["canvas"] is not None, (page.url, c)
        assert min(c["canvas"]) > 200, (page.url, c)
        assert c["inked"] > 1000, (page.url, c)  # something is painted
        assert c["left"] >= 0, (page.url, c)  # not cut off at either edge
        assert c["right"] <= width, (page.url, c)
    assert errors == [], (page.url, errors)
    return charts


def fits(page: Any) -> None:
    """The page body never scrolls sideways: a wide table scrolls inside its own box, its group
    column staying in view; the table's type is large enough to read."""
    width = page.viewport_size["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= width, page.url
    if page.locator("table[data-report]").count():
        assert px(page, "table[data-report] tbody tr > *") >= 15, page.url
        scrolled = page.evaluate(SCROLLED)
        if scrolled is not None:
            assert scrolled["scrolled"] > 0, (page.url, scrolled)
            assert abs(scrolled["offset"]) <= 2, (page.url, scrolled)


def live_shown(page: Any, since: datetime, words: str = "今日数据更新于") -> None:
    """The period line says when today's live figures were computed (between `since` and now),
    as HH:MM in the hospital's local time."""
    at = datetime.fromisoformat(page.get_attribute("[data-live-at]", "data-live-at") or "")
    assert since <= at <= utc_now(), (since, at)
    assert page.locator("[data-live-at]").inner_text() == f"{words} {at.astimezone(kit.tz()):%H:%M}"


def table(page: Any) -> dict[str, Any]:
    shown: dict[str, Any] = page.evaluate(TABLE)
    return shown


def period_of(page: Any) -> tuple[date, date]:
    start, end = (page.get_attribute("[data-period]", "data-period") or "").split("~")
    return date.fromisoformat(start), date.fromisoformat(end)


def slug(href: str) -> str:
    """A view link as a screenshot name: `visits`, `points-by-department`."""
    parts = urlsplit(href)
    by = parse_qs(parts.query).get("by")
    return parts.path.rsplit("/", 1)[-1] + (f"-by-{by[0]}" if by else "")


# --- the numbers on screen against a file -------------------------------------------------

def undo(text: str) -> tuple[Decimal, int, bool] | None:
    """An on-screen number (¥1,234.50, 38.7%, 1,234, —) as (value, decimals shown, a percentage);
    None for the dash of an empty cell."""
    if text == "—":
        return None
    m = NUMBER.fullmatch(text)
    assert m, f"not a number on screen: {text!r}"
    digits = m.group(1).replace(",", "")
    return Decimal(digits), len(digits.partition(".")[2]), m.group(2) == "%"


def same(shown: str, value: Any, numeric: bool) -> bool:
    """Whether a file's cell holds what the screen shows: a number rounded as shown (a
    percentage times 100), the page's half of a bilingual label, an empty cell for —."""
    if not numeric:
        return say(str(value), "zh") == shown
    undone = undo(shown)
    if undone is None:
        return value is None or value == ""
    n, places, pct = undone
    raw = Decimal(str(value)) * (100 if pct else 1)
    return raw.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP) == n


def matches(screen: dict[str, Any], header: list[Any], body: list[list[Any]]) -> None:
    assert header == screen["head"]
    assert len(body) == len(screen["rows"]) > 0
    for cells, row in zip(body, screen["rows"], strict=True):
        for value, shown, numeric in zip(cells, row, screen["num"], strict=True):
            assert same(shown, value, numeric), (row, cells, shown, value)


def exports_match(page: Any, view: str) -> None:
    """The Excel and CSV downloads of the page hold the table on screen, row by row."""
    screen = table(page)
    start, end = period_of(page)
    with page.expect_download() as xlsx:
        page.click("[data-export-xlsx]")
    assert xlsx.value.suggested_filename == f"{view}_{start.isoformat()}_{end.isoformat()}.xlsx"
    sheet = load_workbook(io.BytesIO(xlsx.value.path().read_bytes())).active  # a temp file has no .xlsx
    assert sheet is not None
    title, header, *body = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert f"{start.isoformat()} ~ {end.isoformat()}" in str(title[0])
    matches(screen, header, body)
    numbers = [i for i, n in enumerate(screen["num"]) if n]
    assert any(isinstance(r[i], int | float) for r in body for i in numbers)  # typed cells, not text
    with page.expect_download() as raw:
        page.click("[data-export-csv]")
    assert raw.value.suggested_filename == f"{view}_{start.isoformat()}_{end.isoformat()}.csv"
    content = raw.value.path().read_bytes()
    assert content.startswith("\ufeff".encode())
    lines = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    matches(screen, lines[0], lines[1:])


# --- the pages ----------------------------------------------------------------------------

def tour(page: Any, server: Server, device: str, errors: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The overview and every view it links to (and the panels' breakdowns): charts drawn,
    shots, the accessibility check, no sideways scroll. Answers the charts per page."""
    page.goto(f"{server.url}/admin/analytics")
    found = {"index": drawn(page, errors)}
    fits(page)
    axe_check(page)
    shot(page, f"analytics-index-{device}")
    hrefs = [page.get_attribute(f"[data-view-link] >> nth={i}", "href")
             for i in range(page.locator("[data-view-link]").count())]
    panels = [a.get_attribute("href") for a in page.locator(".cp-an-panel > a").all()]  # by department
    todo = list(dict.fromkeys(h for h in hrefs + panels if h and h.startswith("/admin/analytics/")))
    while todo:
        href = todo.pop(0)
        page.goto(f"{server.url}{href}")
        assert page.locator("table[data-report]").count() == 1, href
        found[slug(href)] = drawn(page, errors)
        fits(page)
        if device == "desktop":
            axe_check(page)
        shot(page, f"analytics-{slug(href)}-{device}")
        name = slug(href)
        covered = "-by-" in name or any(slug(h or "").startswith(f"{name}-by-") for h in panels)
        first = page.locator("#f-by option:not([value=''])")
        compares = any(c["type"] != "gauge" for c in found[name])
        if not compares and not covered and first.count():  # its other charts compare groups: pick one
            todo.append(f"{href}&by={first.first.get_attribute('value')}")
    return found


def test_dashboard_draws_its_charts_on_desktop_and_phone(server: Server, desktop: Any, phone: Any) -> None:
    seed()
    for device, page in (("desktop", desktop), ("phone", phone)):
        errors = watch(page)
        login_staff(page, server, "admin")
        since = utc_now()
        found = tour(page, server, device, errors)
        with_charts = {name for name, charts in found.items() if charts}
        assert {"index", "trend", "equity", "cost_benefit", "points-by-department", "visits", "visits-by-department",
                "care", "care-by-institution"} <= with_charts, sorted(found)
        titles = {c["title"] for c in found["index"]}
        assert {"每日积分", "每日活跃患者"} <= titles
        assert any(t.endswith("年预算使用") for t in titles)  # the budget gauge
        # without a breakdown, visits and care draw their gauges (the total row's rate)
        assert [(c["title"], c["type"]) for c in found["visits"]] == [("爽约率", "gauge")]
        assert [(c["title"], c["type"]) for c in found["care"]] == [("随访完成率", "gauge")]
        for charts in found.values():  # our label survives ECharts' aria: the numbers are in the table
            assert all(c["label"] == f"{c['title']},数值见下表" for c in charts), charts
        page.goto(f"{server.url}/admin/analytics")
        live_shown(page, since)
        page.goto(f"{server.url}/admin/analytics/trend")
        live_shown(page, since)


def test_breakdown_period_and_exports(server: Server, desktop: Any) -> None:
    departments = seed()
    errors = watch(desktop)
    login_staff(desktop, server, "admin")
    desktop.goto(f"{server.url}/admin/analytics/visits")
    drawn(desktop, errors)
    before = table(desktop)
    assert [r[0] for r in before["rows"]] == ["全部"]
    attended = before["head"].index("就诊人次(本期)")
    # 30 days hold both weeks: W1 2 visits attended, W2 5
    assert before["rows"][0][attended] == "7"
    # a breakdown: one row per department that had visits, under the total
    desktop.select_option("#f-by", "department")
    submit(desktop, "[data-view-form] button[type=submit]")
    assert "by=department" in desktop.url
    by_department = table(desktop)
    names = [r[0] for r in by_department["rows"]]
    assert names[0] == "合计"
    assert sorted(names[1:]) == sorted(f"科室{code}" for code in departments)
    assert by_department["rows"][0][attended] == "7"
    assert sum(int(r[attended]) for r in by_department["rows"][1:]) == 7
    assert desktop.locator("table[data-report] tbody th a").count() == len(departments)  # drill-downs
    charts = drawn(desktop, errors)
    assert [c["title"] for c in charts] == ["爽约率", "就诊指标"]
    shot(desktop, "analytics-visits-department-desktop")
    exports_match(desktop, "visits")
    # the period: the last closed week only, the breakdown kept
    desktop.fill("#f-start", kit.W2.isoformat())
    desktop.fill("#f-end", (kit.W2 + timedelta(days=6)).isoformat())
    submit(desktop, "[data-period-form] button[type=submit]")
    assert period_of(desktop) == (kit.W2, kit.W2 + timedelta(days=6))
    week = table(desktop)
    assert week["rows"][0][0] == "合计"
    assert week["rows"][0][attended] == "5"
    assert week != by_department
    exports_match(desktop, "visits")
    # a preset: the last 7 days up to today
    submit(desktop, ".cp-an-presets a >> nth=0")
    assert desktop.locator(".cp-an-presets a[aria-current]").inner_text() == "近7天"
    assert period_of(desktop) == (kit.today() - timedelta(days=6), kit.today())
    assert "by=department" in desktop.url
    # the points by department: rolled-up days and today (live) in one table and its files
    desktop.goto(f"{server.url}/admin/analytics/points?by=department")
    drawn(desktop, errors)
    exports_match(desktop, "points")
    desktop.goto(f"{server.url}/admin/analytics/trend")
    drawn(desktop, errors)
    days = {r[0]: r for r in table(desktop)["rows"]}
    issued = table(desktop)["head"].index("发放积分")
    assert days[kit.today().isoformat()][issued] == "10"  # the kiosk use today, live
    assert days[(kit.W2 + timedelta(days=4)).isoformat()][issued] == "400"  # two referral visits, rolled up
    exports_match(desktop, "trend")
    assert errors == []


def test_english_titles_and_headers(server: Server, desktop: Any) -> None:
    seed()
    since = utc_now()
    errors = watch(desktop)
    login_staff(desktop, server, "admin")
    desktop.goto(f"{server.url}/admin/analytics/trend")
    assert desktop.locator("table[data-report] thead th >> nth=0").inner_text() == "日期"
    submit(desktop, "header a.cp-tool[lang=en]")
    assert desktop.get_attribute("html", "lang") == "en"
    charts = drawn(desktop, errors)
    assert [c["title"] for c in charts] == ["Points per day", "Active patients per day"]
    for c in charts:  # our own label, in the page's language, kept through ECharts' aria setting
        assert c["label"] == f"{c['title']} (the numbers are in the table below)"
        assert not CJK.search(c["label"]), c["label"]
    live_shown(desktop, since, "today as of")
    assert table(desktop)["head"] == [c.en for c in TREND_COLUMNS]
    assert desktop.locator("h2[data-view]").inner_text() == "Points trend"
    shot(desktop, "analytics-trend-en-desktop")
    desktop.goto(f"{server.url}/admin/analytics")  # the language is kept for the session
    titles = {c["title"] for c in drawn(desktop, errors)}
    assert {"Points per day", "Active patients per day"} <= titles
    assert not any(CJK.search(t) for t in titles), titles
    shot(desktop, "analytics-index-en-desktop")


def test_dashboard_smoke_on_postgresql(pg_server: Server, desktop: Any) -> None:
    seed()
    errors = watch(desktop)
    login_staff(desktop, pg_server, "admin")
    desktop.goto(f"{pg_server.url}/admin/analytics")
    assert {"每日积分", "每日活跃患者"} <= {c["title"] for c in drawn(desktop, errors)}
    desktop.goto(f"{pg_server.url}/admin/analytics/visits?by=department")
    assert table(desktop)["rows"][0][table(desktop)["head"].index("就诊人次(本期)")] == "7"
    drawn(desktop, errors)
    exports_match(desktop, "visits")
