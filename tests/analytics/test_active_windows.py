"""Distinct active patients over rolling windows (`analytics_active_windows`) on SQLite and
PostgreSQL: the 6 / 7 / 29 / 30 days ending each closed day of `points_world`, so the dashboard's
default (the last 30 days up to today) reads one stored row per slice and adds today's new
patients live. Every stored answer must equal the exact COUNT DISTINCT over the patient-days."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import delete, select

from carepoints.analytics import points, points_rollup, rollup
from carepoints.analytics.periods import Period
from carepoints.analytics.points import Scope
from carepoints.config import get_settings
from carepoints.kit.db import read_tx, table, write_tx
from tests.analytics.points_world import NOW, TODAY, W, World, build, run, total, values
from tests.conftest import Db

pytestmark = pytest.mark.usefixtures("db")


@pytest.fixture
def world(db: Db) -> World:
    built = build()
    rollup.rollup_days([TODAY - timedelta(days=i) for i in range(1, 31)], TODAY, get_settings().tz)
    return built


def _windows(**where: object) -> dict[tuple[object, ...], int]:
    t = table(points_rollup.ActiveWindow)
    with read_tx() as session:
        rows = session.connection().execute(select(t).where(*(t.c[k] == v for k, v in where.items())))
        return {(r.span, r.institution_id, r.dim, r.key): r.patients for r in rows}


def test_the_windows_ending_a_day_hold_its_distinct_patients(world: World) -> None:
    # the 7 days ending 06-14 are W: A, B, C; the 30 days add only 06-01's B and 06-03's A
    got = _windows(day=W[1])
    assert {k: v for k, v in got.items() if k[1] == "*" and k[2] == "total"} == {
        (6, "*", "total", ""): 3, (7, "*", "total", ""): 3, (29, "*", "total", ""): 3, (30, "*", "total", ""): 3}
    # the 6 days ending 06-09: A's reading (06-08) and paper sheet (06-09): A only
    assert _windows(day=date(2026, 6, 9), span=6, institution_id="*", dim="total") == {(6, "*", "total", ""): 1}
    assert got[(7, "*", "age_band", "70-79")] == 1
    assert got[(7, "*", "channel", "offline")] == 1  # A's paper sheet
    assert got[(7, "*", "band_channel", "40-49|onsite")] == 1  # B at H1
    assert got[(7, world.h1, "department", world.card)] == 1
    assert got[(7, "*", "condition", "hypertension")] == 2  # A and B


def _slices(world: World) -> list[tuple[Scope, tuple[str, ...]]]:
    whole = Scope(None, {})
    return [(whole, ()), *((whole, (g,)) for g in ("institution", "department", "clinician", "age_band",
                                                     "condition", "channel")),
            (whole, ("age_band", "channel")), (Scope(frozenset({world.h1}), {}), ()),
            (Scope(None, {"channel": "online"}), ()), (Scope(frozenset({world.h2}), {}), ("age_band",))]


def test_stored_windows_equal_the_exact_count(world: World) -> None:
    periods = [Period(TODAY - timedelta(days=29), TODAY), Period(TODAY - timedelta(days=6), TODAY),
               Period(W[1] - timedelta(days=29), W[1]), Period(date(2026, 6, 2), date(2026, 6, 8)),
               Period(date(2026, 6, 3), date(2026, 6, 11))]  # the last: 9 days, no window: live
    compared = 0
    with read_tx() as session:
        for period in periods:
            for scope, group in _slices(world):
                stored = points.distinct(session, period, TODAY, scope, group)
                exact = points._active_live(session, period, TODAY, scope, group)
                assert stored == {k: n for k, n in exact.items() if n}, (period, scope, group)
                compared += sum(stored.values()) > 0
    assert compared >= 45  # of 60 slices: the comparisons compare patients, not empty answers
    # the default range: A, B and C over the 29 closed days, D new today; C (today too) once
    assert values(total(run("points", TODAY - timedelta(days=29), TODAY)))["active"] == 4


def test_a_closed_window_reads_the_stored_row(world: World) -> None:
    """With the patient-days of the closed days gone, only the stored window can still answer."""
    with write_tx() as session:
        session.connection().execute(delete(table(points_rollup.Participation)).where(
            table(points_rollup.Participation).c.day < TODAY))
    report = run("points", TODAY - timedelta(days=30), TODAY - timedelta(days=1), by="age_band")
    assert values(total(report))["active"] == 3  # A, B, C
    assert {r["key"]: r["value_active"] for r in report.rows[1:]} == {"18-29": 1, "40-49": 1, "70-79": 1}
    # an arbitrary 9-day range has no window: counted live from the (now missing) patient-days
    assert values(total(run("points", date(2026, 6, 3), date(2026, 6, 11))))["active"] == 0


def test_additive_figures_leave_the_distinct_count_out(world: World) -> None:
    from carepoints.analytics import views

    with read_tx() as session:
        v = views.get("points")
        report = points.additive_report(session, views.query(v, NOW, start=W[0], end=W[1]), NOW)
    row = values(total(report))
    assert (row["active"], row["issued"], row["penalised"]) == (None, 100, 20)
    assert report.extra["active_counted"] is False
