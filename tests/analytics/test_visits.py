"""`GET /api/v1/analytics/visits` on the world of `visits_kit.visits_world` (built through the
scheduling services: bookings, check-in, attendance, cancellation, the no-show sweep job), rolled
up by the `rollup-analytics` job. Every number below is worked out by hand from that world:
no-show rate = no-shows / (attended + no-shows); appointment rate = attended booked before the
visit day / attended; off-peak share = attended in 10-11 / 14-15 on weekdays / attended;
return-visit rate = patients with ≥ 2 attended visits / patients with ≥ 1."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from carepoints.analytics import cubes, views
from carepoints.analytics import visits as visits_
from carepoints.analytics.periods import Period
from carepoints.analytics.points import Scope
from carepoints.analytics.rollup import rollup_days
from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.time import utc_now
from carepoints.security import service as security
from tests.analytics import visits_kit as kit
from tests.analytics.visits_kit import W1, W2, at, window
from tests.helpers import enrol, error

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]

KPIS = ("value_attended", "value_no_shows", "value_no_show_rate", "value_appointment_rate", "value_off_peak_share",
        "value_patients", "value_return_visit_rate")
PREVIOUS = tuple(k.replace("value_", "previous_") for k in KPIS)
WEEK2 = window(W2, W2 + timedelta(days=6))


def visits(api: Api, **params: Any) -> dict[str, Any]:
    r = api.get("/analytics/visits", params=params)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_visit_kpis_with_the_previous_week_and_every_breakdown(api: Api) -> None:
    h, _p = kit.visits_world(at(kit.T0 - timedelta(days=1), "09:00"))
    kit.rollup()
    doc = visits(api, **WEEK2)
    assert doc["period"] == WEEK2
    assert doc["previous_period"] == window(W1, W1 + timedelta(days=6))
    total = doc["rows"][0]
    assert total["name"] == "全部 / All"
    # W2: attended P1 ×2, P3, P5, P4 = 5; no-shows P2, P3 = 2 (P4's cancellation takes no part): 2/7;
    # booked ahead: all but P3's on-site morning booking = 4/5; off-peak: P1 Tuesday, P4 Thursday = 2/5;
    # patients P1, P3, P4, P5 = 4, of whom P1 came twice: 1/4
    assert kit.pick(total, *KPIS) == (5, 2, 0.2857, 0.8, 0.4, 4, 0.25)
    # W1: attended P1 (ahead), P4 (same morning); no-shows P2, P3, P5: 3/5; 1/2 ahead; none off-peak
    assert kit.pick(total, *PREVIOUS) == (2, 3, 0.6, 0.5, 0.0, 2, 0.0)
    assert doc["charts"][0] == {"type": "gauge", "title": {"zh": "爽约率", "en": "No-show rate"}, "x": "name",
                                "series": ["value_no_show_rate"]}
    assert doc["rolled_through"] == (kit.today() - timedelta(days=1)).isoformat()

    d, c = h.departments, h.clinicians
    expected: dict[str, dict[Any, tuple[Any, ...]]] = {
        # h1: P1 ×2, P3, P5 attended, P2, P3 missed; h2: P4 on Thursday
        "institution": {h.institutions["h1"]: (4, 2, 0.3333, 0.75, 0.25, 3, 0.3333),
                        h.institutions["h2"]: (1, 0, 0.0, 1.0, 1.0, 1, 0.0)},
        # A: Monday (P1, P3 attended, P2 missed) and Tuesday (P1); B: Wednesday (P5, P3 missed)
        "department": {d["A"]: (3, 1, 0.25, 0.6667, 0.3333, 2, 0.5), d["B"]: (1, 1, 0.5, 1.0, 0.0, 1, 0.0),
                       d["C"]: (1, 0, 0.0, 1.0, 1.0, 1, 0.0)},
        "clinician": {c["a1"]: (2, 1, 0.3333, 0.5, 0.0, 2, 0.0), c["a2"]: (1, 0, 0.0, 1.0, 1.0, 1, 0.0),
                      c["b1"]: (1, 1, 0.5, 1.0, 0.0, 1, 0.0), c["c1"]: (1, 0, 0.0, 1.0, 1.0, 1, 0.0)},
        # 70-79: P1 ×2, P2 missed; 40-49: P3 (on-site, then missed), P5; 18-29: P4 (one cancelled)
        "age_band": {"70-79": (2, 1, 0.3333, 1.0, 0.5, 1, 1.0), "40-49": (2, 1, 0.3333, 0.5, 0.0, 2, 0.0),
                     "18-29": (1, 0, 0.0, 1.0, 1.0, 1, 0.0)},
        # P1 counts under both of their conditions
        "condition": {"hypertension": (2, 1, 0.3333, 1.0, 0.5, 1, 1.0), "diabetes": (3, 0, 0.0, 1.0, 0.3333, 2, 0.5),
                      "none": (2, 1, 0.3333, 0.5, 0.5, 2, 0.0)},
        # on-site: P3's Monday booking; everything else was booked online
        "channel": {"online": (4, 2, 0.3333, 1.0, 0.5, 3, 0.3333), "onsite": (1, 0, 0.0, 0.0, 0.0, 1, 0.0)},
    }
    for by, groups in expected.items():
        rows = kit.rows_by_key(visits(api, by=by, **WEEK2))
        assert rows[None]["name"] == "合计 / Total"
        assert kit.pick(rows[None], *KPIS) == (5, 2, 0.2857, 0.8, 0.4, 4, 0.25), by
        got = {k: kit.pick(r, *KPIS) for k, r in rows.items() if k is not None and r["value_attended"] is not None
               and (r["value_attended"] or r["value_no_shows"])}
        assert got == groups, by
    rows = kit.rows_by_key(visits(api, by="department", **WEEK2))
    assert rows[d["A"]]["name"] == "科室A / Dept A"
    assert kit.pick(rows[d["A"]], *PREVIOUS) == (2, 3, 0.6, 0.5, 0.0, 2, 0.0)  # W1 was all at A
    assert kit.pick(rows[d["B"]], *PREVIOUS) == (0, 0, None, None, None, 0, None)
    assert rows[None]["previous_no_show_rate"] == 0.6
    bands = [r["key"] for r in visits(api, by="age_band", **WEEK2)["rows"][1:]]
    assert bands == sorted(bands, key=["18-29", "40-49", "70-79"].index)  # the bands' natural order
    assert {"type": "bar", "title": {"zh": "就诊指标", "en": "Visit KPIs"}, "x": "name",
            "series": ["value_no_show_rate", "value_appointment_rate", "value_off_peak_share",
                       "value_return_visit_rate"]} in visits(api, by="channel", **WEEK2)["charts"]

    # the dashboard's cards: P2's follow-up step due on W2's Wednesday was answered (none due in W1); the
    # chronic patients P1, P2, P5 never measured themselves
    q = views.query(views.get("visits"), utc_now(), start=W2, end=W2 + timedelta(days=6))
    with read_tx() as s:
        cards = visits_.headline(s, q, utc_now())
    assert [(c["key"], c["kind"], c["value"], c["previous"]) for c in cards] == [
        ("no_show_rate", "pct", 0.2857, 0.6), ("appointment_rate", "pct", 0.8, 0.5),
        ("off_peak_share", "pct", 0.4, 0.0), ("return_visit_rate", "pct", 0.25, 0.0),
        ("followup_completion", "pct", 1.0, None), ("checkin_completeness", "pct", 0.0, 0.0)]
    assert cards[1]["zh"] == "预约诊疗率"

    # both weeks (a stored two-week window), and Monday of W1 to Saturday of W2 (13 days, counted live
    # from the patient-days): P1 3 visits, P4 2, P3 and P5 1
    both = visits(api, start=W1.isoformat(), end=(W2 + timedelta(days=6)).isoformat())
    live = visits(api, start=W1.isoformat(), end=(W2 + timedelta(days=5)).isoformat())
    for doc in (both, live):
        assert kit.pick(doc["rows"][0], *KPIS) == (7, 5, 0.4167, 0.7143, 0.2857, 4, 0.5)
        assert "distinct_unanswered" not in doc
    # over more than 92 days that are not whole weeks or months, distinct patients are not counted
    long = visits(api, start=(W1 - timedelta(days=90)).isoformat(), end=(W2 + timedelta(days=5)).isoformat())
    assert kit.pick(long["rows"][0], *KPIS) == (7, 5, 0.4167, 0.7143, 0.2857, None, None)
    assert long["distinct_unanswered"]["en"].startswith("Over more than 92 days")


def test_filters_the_callers_institutions_export_and_bad_input(api: Api) -> None:
    h, _p = kit.visits_world(at(kit.T0 - timedelta(days=1), "09:00"))
    kit.rollup()
    a, b = h.departments["A"], h.departments["B"]
    assert kit.pick(visits(api, department_id=a, **WEEK2)["rows"][0], *KPIS) == (3, 1, 0.25, 0.6667, 0.3333, 2, 0.5)
    # two filters without a breakdown: department A and on-site = P3's Monday visit
    assert kit.pick(visits(api, department_id=a, channel="onsite", **WEEK2)["rows"][0], *KPIS) == (
        1, 0, 0.0, 0.0, 0.0, 1, 0.0)
    # a filter and a breakdown: the 40-49 band by department (P3 at A; P5 and P3's no-show at B)
    rows = kit.rows_by_key(visits(api, age_band="40-49", by="department", **WEEK2))
    assert kit.pick(rows[None], *KPIS) == (2, 1, 0.3333, 0.5, 0.0, 2, 0.0)
    assert kit.pick(rows[a], *KPIS) == (1, 0, 0.0, 0.0, 0.0, 1, 0.0)
    assert kit.pick(rows[b], *KPIS) == (1, 1, 0.5, 1.0, 0.0, 1, 0.0)
    # the institution filter and a caller bound to h2 see h2 only
    h2 = h.institutions["h2"]
    assert kit.pick(visits(api, institution_id=h2, **WEEK2)["rows"][0], *KPIS) == (1, 0, 0.0, 1.0, 1.0, 1, 0.0)
    with write_tx() as s:
        _kid, bound = security.create_api_key(s, "h2 analytics", "admin", utc_now(), institutions=[h2])
    r = api.get("/analytics/visits", params={"by": "institution", **WEEK2}, key=bound)
    assert r.status_code == 200, r.text
    assert [(row["key"], row["value_attended"]) for row in r.json()["rows"]] == [(None, 1), (h2, 1)]

    body = api.get("/analytics/visits", params={"format": "csv", "lang": "en", **WEEK2})
    assert body.status_code == 200
    lines = list(csv.reader(io.StringIO(body.content.decode("utf-8-sig"))))
    assert lines[0][:5] == ["Group", "Visits attended (period)", "Visits attended (previous)", "No-shows (period)",
                            "No-shows (previous)"]
    assert lines[1][:7] == ["全部 / All", "5", "2", "2", "3", "0.2857", "0.6"]

    error(api.get("/analytics/visits", params={"by": "rule"}), 422, "analytics.bad_breakdown")
    error(api.get("/analytics/visits", params={"department_id": a, "channel": "online", "age_band": "40-49"}),
          422, "analytics.too_many_filters")
    error(api.get("/analytics/visits", params={"age_band": "41-42"}), 422, "analytics.bad_filter")
    error(api.get("/analytics/visits", params={"start": "2026-05-02", "end": "2026-05-01"}), 422,
          "analytics.bad_range")
    error(api.get("/analytics/visits", params={"baseline": "0.3"}), 422, "analytics.unknown_parameter")


def test_a_rerun_changes_nothing_and_stored_weeks_match_the_live_count(api: Api) -> None:
    kit.visits_world(at(kit.T0 - timedelta(days=1), "09:00"))
    first = kit.rollup()
    assert first["days"] >= 7
    before = kit.stored()
    assert all(before[t] for t in ("analytics_visits_daily", "analytics_visit_patients", "analytics_visit_periods"))
    kit.rollup()
    days = [W1 + timedelta(days=i) for i in range(14)]
    rollup_days(days, kit.today(), kit.tz())
    assert kit.stored() == before
    # the stored windows' distinct patients are what the exact count over the facts gives, by every dimension
    today, whole = kit.today(), Scope(None, {})
    sunday = W2 + timedelta(days=6)
    for period, expected in ((Period(W2, sunday), [4, 1]), (Period(W1, sunday), [4, 2])):
        assert cubes.stored_window(period, today) == ("week", W2, period.days // 7)
        with read_tx() as s:
            for group in ((), ("institution",), *((d,) for d in cubes.FACTS["visits"].dims)):
                live = cubes.distinct(s, cubes.FACTS["visits"], period, today, whole, group)
                assert cubes.counts(s, "visits", period, today, whole, group) == live, group
                assert live
            assert cubes.counts(s, "visits", period, today, whole) == {None: expected}


def test_today_is_computed_live_and_joins_the_rolled_up_days(api: Api) -> None:
    today = kit.today()
    yesterday = today - timedelta(days=1)
    h = kit.Hospital(at(yesterday - timedelta(days=3), "09:00"))
    h.institution("h1")
    h.department("A", "h1")
    h.clinician("a1", "A")
    h.clinician("a2", "A")
    x, y = enrol(at(yesterday - timedelta(days=2), "09:00")), enrol(at(yesterday - timedelta(days=2), "09:00"))
    kit.attend(kit.book(x, h.session("a1", yesterday, "08:00", "09:00"), at(yesterday - timedelta(days=1), "09:00")))
    kit.rollup()
    s_today = h.session("a2", today, "00:30", "00:50")
    kit.attend(kit.book(x, s_today, at(today, "00:05")))  # booked the same day: not ahead
    kit.book(y, s_today, at(today, "00:06"))
    assert kit.sweep(at(today, "01:30")) == 1
    doc = visits(api)  # the default: the last 30 days, today live
    assert doc["period"] == window(today - timedelta(days=29), today)
    # x attended yesterday (rolled up) and today (live): 2 visits; y missed today
    assert kit.pick(doc["rows"][0], *KPIS) == (2, 1, 0.3333, 0.5, 0.0, 1, 1.0)
    only_today = visits(api, start=today.isoformat(), end=today.isoformat(), by="clinician")
    rows = kit.rows_by_key(only_today)
    assert kit.pick(rows[None], *KPIS) == (1, 1, 0.5, 0.0, 0.0, 1, 0.0)
    assert kit.pick(rows[h.clinicians["a2"]], *KPIS) == (1, 1, 0.5, 0.0, 0.0, 1, 0.0)
    assert kit.pick(rows[None], *PREVIOUS) == (1, 0, 0.0, 1.0, 0.0, 1, 0.0)  # yesterday, from the roll-up


@pytest.mark.parametrize("name", ["visits", "care", "cost_benefit"])
def test_every_view_answers_with_all_defaults_on_an_empty_database(api: Api, name: str) -> None:
    r = api.get(f"/analytics/{name}")
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["view"] == name
    assert doc["rows"]
    assert "charts" in doc


def test_stored_windows_are_whole_weeks_or_months_ending_with_a_closed_one() -> None:
    today = date(2026, 3, 18)  # a Wednesday
    assert cubes.stored_window(Period(date(2026, 3, 9), date(2026, 3, 15)), today) == ("week", date(2026, 3, 9), 1)
    assert cubes.stored_window(Period(date(2025, 12, 15), date(2026, 3, 15)), today) == (
        "week", date(2026, 3, 9), 13)
    assert cubes.stored_window(Period(date(2025, 12, 8), date(2026, 3, 15)), today) is None  # 14 weeks
    assert cubes.stored_window(Period(date(2026, 3, 9), date(2026, 3, 22)), today) is None  # not closed
    assert cubes.stored_window(Period(date(2025, 3, 1), date(2026, 2, 28)), today) == ("month", date(2026, 2, 1), 12)
    assert cubes.stored_window(Period(date(2025, 11, 1), date(2026, 2, 28)), today) == ("month", date(2026, 2, 1), 4)
    assert cubes.stored_window(Period(date(2026, 3, 2), date(2026, 3, 13)), today) is None  # not whole
    # the month roll-up of February 2026 stores windows starting 1 to 12 months back
    assert [cubes._back("month", date(2026, 2, 1), n) for n in (0, 1, 2, 11)] == [
        date(2026, 2, 1), date(2026, 1, 1), date(2025, 12, 1), date(2025, 3, 1)]
    assert cubes._back("week", date(2026, 3, 9), 12) == date(2025, 12, 15)
    whole, filtered = Scope(None, {}), Scope(None, {"department": "d"})
    ninety = Period(date(2025, 12, 1), date(2026, 2, 28))
    assert cubes.answerable(ninety, today, filtered)  # 90 days: live
    assert cubes.answerable(Period(date(2025, 3, 1), date(2026, 2, 28)), today, whole, ("department",))
    assert not cubes.answerable(Period(date(2025, 3, 1), date(2026, 2, 28)), today, filtered)
    assert not cubes.answerable(Period(date(2025, 3, 2), date(2026, 2, 28)), today, whole)
