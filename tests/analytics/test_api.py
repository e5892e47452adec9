"""`GET /api/v1/analytics/{name}` over HTTP on SQLite and PostgreSQL (the real clock): the points,
trend and equity views as JSON, CSV and Excel holding the same numbers, the defaults (the last 30
days up to today, live), and every bad request answered with its code.

Data (worked out by hand): P1 (born 1950, 70-79) and P2 (born 1990, 30-39) enrol today (welcome
100 each); P1 took a device reading yesterday (first check-in 50 + reading 10 = 60, online), P2
attends a lecture today (30, on-site). The job rolls yesterday up; today is live. Over the default
range: issued 290, 2 active patients (P1 yesterday, P2 today; enrolment is no behaviour)."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from openpyxl import load_workbook

from carepoints.analytics.rollup import rollup_analytics
from carepoints.config import get_settings
from carepoints.kit.time import local_date, utc_now
from tests.helpers import bp, error, event, staff_token

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]


def _today() -> date:
    return local_date(utc_now(), get_settings().tz)


@pytest.fixture
def data(api: Api) -> dict[str, str]:
    p1 = api.enrol(birth_date="1950-01-01")
    p2 = api.enrol(birth_date="1990-01-01")
    api.send(event(p1, "health.measurement", utc_now() - timedelta(days=1), bp()))
    api.send(event(p2, "lecture.attended", utc_now(), {"lecture_id": uuid.uuid4().hex}))
    rollup_analytics(utc_now())
    return {"p1": p1, "p2": p2}


def _get(api: Api, name: str, **params: Any) -> Any:
    r = api.get(f"/analytics/{name}", params=params)
    assert r.status_code == 200, r.text
    return r


def test_the_default_period_is_the_last_30_days_with_today_live(api: Api, data: dict[str, str]) -> None:
    doc = _get(api, "points").json()
    today = _today()
    assert doc["period"] == {"start": (today - timedelta(days=29)).isoformat(), "end": today.isoformat()}
    assert doc["previous_period"] == {"start": (today - timedelta(days=59)).isoformat(),
                                      "end": (today - timedelta(days=30)).isoformat()}
    (row,) = doc["rows"]
    assert (row["value_issued"], row["value_active"], row["previous_issued"]) == (290, 2, 0)
    assert row["value_liability_cny"] == "29.00"  # 290 points at 100 = 10 CNY
    assert doc["rolled_through"] == (today - timedelta(days=1)).isoformat()
    assert {c["key"]: c["kind"] for c in doc["columns"]}["value_redemption_rate"] == "pct"
    listing = api.get("/analytics").json()["views"]
    by_name = {v["name"]: v for v in listing}
    assert {"points", "trend", "equity"} <= by_name.keys()
    assert "age_band" in by_name["points"]["breakdowns"]
    assert by_name["trend"]["breakdowns"] == []


def test_csv_and_excel_hold_the_jsons_numbers(api: Api, data: dict[str, str]) -> None:
    doc = _get(api, "points", by="age_band").json()
    rows = {r["key"]: r for r in doc["rows"]}
    assert (rows["70-79"]["value_issued"], rows["30-39"]["value_issued"], rows[None]["value_issued"]) == (160, 130, 290)
    r = _get(api, "points", by="age_band", format="csv")
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    table = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    headers = [c["zh"] for c in doc["columns"]]
    assert table[0] == headers
    assert len(table) == len(doc["rows"]) + 1
    at = headers.index("发放积分(本期)")
    assert [int(line[at]) for line in table[1:]] == [row["value_issued"] for row in doc["rows"]]
    english = list(csv.reader(io.StringIO(_get(api, "points", format="csv", lang="en").content.decode("utf-8-sig"))))
    assert english[0][1] == "Active patients (period)"
    r = _get(api, "points", by="age_band", format="xlsx")
    sheet = load_workbook(io.BytesIO(r.content)).active
    assert sheet is not None
    values = list(sheet.iter_rows(values_only=True))
    assert str(values[0][0]).startswith("积分概览")
    assert list(values[1]) == headers
    assert [line[at] for line in values[2:]] == [row["value_issued"] for row in doc["rows"]]
    liability = headers.index("未兑换积分负债(元)(本期)")
    assert values[2][liability] == pytest.approx(29.0)
    # the trend and equity tables export the same way
    trend = _get(api, "trend").json()
    assert [r["issued"] for r in trend["rows"][-2:]] == [60, 230]  # yesterday; today: welcomes 200 + lecture 30
    sheet = load_workbook(io.BytesIO(_get(api, "trend", format="xlsx").content)).active
    assert sheet is not None
    assert [line[1] for line in list(sheet.iter_rows(values_only=True))[-2:]] == [60, 230]
    equity = _get(api, "equity").json()
    elderly = next(r for r in equity["rows"] if r["key"] == "70-79")
    assert (elderly["enrolled"], elderly["participants"], elderly["participants_online"], elderly["points"]) == (
        1, 1, 1, 160)
    table = list(csv.reader(io.StringIO(_get(api, "equity", format="csv").content.decode("utf-8-sig"))))
    assert table[1 + [r["key"] for r in equity["rows"]].index("70-79")][1:3] == ["1", "1"]


def test_filters_narrow_the_figures(api: Api, data: dict[str, str]) -> None:
    (row,) = _get(api, "points", age_band="30-39").json()["rows"]
    assert (row["value_issued"], row["value_active"]) == (130, 1)
    (row,) = _get(api, "points", channel="onsite").json()["rows"]
    assert (row["value_issued"], row["value_active"]) == (30, 1)


@pytest.mark.parametrize(("params", "status", "code"), [
    ({"start": "2026-06-02", "end": "2026-06-01"}, 422, "analytics.bad_range"),
    ({"start": "2020-01-01", "end": "2026-01-01"}, 422, "analytics.bad_range"),
    ({"by": "weather"}, 422, "analytics.bad_breakdown"),
    ({"colour": "blue"}, 422, "analytics.unknown_parameter"),
    ({"format": "pdf"}, 422, "analytics.bad_format"),
    ({"age_band": "99"}, 422, "analytics.bad_filter"),
    ({"age_band": "70-79", "channel": "online", "condition": "none"}, 422, "analytics.too_many_filters"),
])
def test_bad_requests_are_refused_with_a_code(api: Api, params: dict[str, str], status: int, code: str) -> None:
    body = error(api.get("/analytics/points", params=params), status, code)
    assert " / " in body["detail"]  # Chinese first, then English


def test_an_unknown_view_is_404_and_a_malformed_date_422(api: Api) -> None:
    error(api.get("/analytics/nonsense"), 404, "analytics.unknown_view")
    r = api.get("/analytics/points", params={"start": "2026-13-01"})
    assert r.status_code == 422, r.text
    error(api.get("/analytics/trend", params={"by": "age_band"}), 422, "analytics.bad_breakdown")


def test_the_front_desk_may_not_read_analytics(api: Api) -> None:
    token = staff_token(api, "desk-analytics", "frontdesk")
    for name in ("points", "trend", "equity"):
        error(api.get(f"/analytics/{name}", key=token), 403, "auth.forbidden")
    auditor = staff_token(api, "auditor-analytics", "auditor")
    assert api.get("/analytics/points", key=auditor).status_code == 200
