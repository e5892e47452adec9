"""The points roll-ups on SQLite and PostgreSQL: what `rollup-analytics` stores for the hand-computed
hospital of `points_world`, that re-running it (or re-rolling a past day with
`carepoints analytics rollup`) changes nothing, that a late event on a past day is picked up by
the next run, and that a day's compute answers today's figures live."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from carepoints.analytics import points_rollup, rollup
from carepoints.analytics.points_rollup import PointsDaily
from carepoints.cli.main import app
from carepoints.config import get_settings
from carepoints.kit.db import read_tx, table
from tests.analytics.points_world import NOW, TODAY, P, W, World, at, build, run, snapshot, total, values
from tests.conftest import Db
from tests.helpers import event, ingest_one
from tests.locks import errors, oks, race

pytestmark = pytest.mark.usefixtures("db")


@pytest.fixture
def world(db: Db) -> World:
    return build()


def _rows(model: type[Any], **where: Any) -> list[dict[str, Any]]:
    t = table(model)
    with read_tx() as session:
        stmt = select(t).where(*(t.c[k] == v for k, v in where.items()))
        return [dict(r) for r in session.connection().execute(stmt).mappings()]


def test_the_job_stores_the_days_weeks_and_months(world: World) -> None:
    result = rollup.rollup_analytics(NOW)
    # first run on 05-21 stored 05-20; this one 05-21 .. 06-14 and the late 2024 entry's day
    assert result["days"] == 26
    assert {r.name for r in rollup.registered()} >= {"points_daily", "participation_daily", "active_daily",
                                                     "active_weekly", "active_monthly"}
    totals: dict[date, dict[str, int]] = {}
    for r in _rows(points_rollup.PointsDaily, f_dim="all", b_dim="total"):  # one row per institution
        day = totals.setdefault(r["day"], dict.fromkeys(points_rollup.MEASURES, 0))
        for m in points_rollup.MEASURES:
            day[m] += r[m]
    assert set(totals) == {date(2024, 6, 1), date(2026, 5, 20), date(2026, 6, 3), *(W[0] + timedelta(days=i)
                                                                                  for i in range(7))}
    assert sum(r["issued"] for r in totals.values()) == 300 + 100 + 60 + 100  # welcomes, 2024, P, W
    assert (totals[date(2026, 6, 13)]["issued"], totals[date(2026, 6, 13)]["redeemed"],
            totals[date(2026, 6, 13)]["budget_fen"], totals[date(2026, 6, 13)]["entries"]) == (-10, 50, 400, 2)
    assert TODAY not in totals  # today is never stored: views compute it live
    # the elderly band of W, through each channel (the filter × breakdown pairs)
    elderly = {(r["day"], r["b_key"]): r["issued"] for r in _rows(points_rollup.PointsDaily, f_dim="age_band",
                                                                   f_key="70-79", b_dim="channel")}
    assert elderly[(date(2026, 6, 8), "online")] == 10
    assert elderly[(date(2026, 6, 9), "offline")] == 30
    # patient-days: A on 06-09 took part offline under each of her two conditions
    days = _rows(points_rollup.Participation, day=date(2026, 6, 9))
    assert {(r["patient_id"], r["channel"], r["condition"], r["age_band"]) for r in days} == {
        (world.a, "offline", "hypertension", "70-79"), (world.a, "offline", "diabetes", "70-79")}
    week = {(r["institution_id"], r["dim"], r["key"]): r["patients"]
            for r in _rows(points_rollup.ActivePeriod, grain="week", period_start=W[0])}
    assert week[("*", "total", "")] == 3
    assert week[("*", "channel", "onsite")] == 2
    assert week[(world.h1, "total", "")] == 1
    assert week[("*", "band_channel", "70-79|offline")] == 1
    months = {(r["period_start"], r["dim"], r["key"]): r["patients"]
              for r in _rows(points_rollup.ActivePeriod, grain="month", institution_id="*")}
    assert months[(date(2024, 6, 1), "total", "")] == 1  # A's late 2024 vaccination re-rolled its month
    assert months[(date(2024, 6, 1), "condition", "diabetes")] == 1
    assert not any(m == date(2026, 5, 1) for m, _d, _k in months)  # May: enrolments only, no behaviour
    assert not any(m == date(2026, 6, 1) for m, _d, _k in months)  # June is not closed yet
    daily = {r["day"]: r["patients"] for r in _rows(points_rollup.ActiveDaily, institution_id="*", dim="total")}
    assert daily == {date(2024, 6, 1): 1, date(2026, 6, 1): 1, date(2026, 6, 3): 1, date(2026, 6, 8): 1,
                     date(2026, 6, 9): 1, date(2026, 6, 10): 1, date(2026, 6, 11): 1, date(2026, 6, 12): 1}


def test_a_rerun_and_a_cli_reroll_change_nothing(world: World) -> None:
    rollup.rollup_analytics(NOW)
    before = snapshot()
    assert sum(len(v) for v in before.values()) > 0
    again = rollup.rollup_analytics(NOW)
    assert again["days"] == 7  # only the re-run window: nothing was posted since
    assert snapshot() == before
    runner = CliRunner()
    out = runner.invoke(app, ["analytics", "rollup", "--day", "2026-06-08", "--to", "2026-06-15",
                              "--now", NOW.isoformat()])
    assert out.exit_code == 0, out.output
    assert '"days": 7' in out.output
    assert '"skipped_live_days": 1' in out.output
    assert snapshot() == before
    out = runner.invoke(app, ["analytics", "rollup", "--day", "2024-06-01", "--now", NOW.isoformat()])
    assert out.exit_code == 0, out.output
    assert snapshot() == before


def test_the_cli_refuses_bad_days(world: World) -> None:
    runner = CliRunner()
    for args in (["--day", "2026-13-01"], ["--day", "2026-06-10", "--to", "2026-06-01"],
                 ["--day", "2020-01-01", "--to", "2026-01-01"], ["--day", "2026-06-10", "--now", "soon"]):
        out = runner.invoke(app, ["analytics", "rollup", *args])
        assert out.exit_code == 2, (args, out.output)
        assert "error:" in out.output


def test_a_late_event_on_a_past_day_is_picked_up_by_the_next_run(world: World) -> None:
    rollup.rollup_analytics(NOW)
    before = total(run("points", *W))
    assert values(before, "previous")["issued"] == 60
    # A's medication on 06-02 arrives today: +10 on 06-02, outside the 7 re-run days before today
    ingest_one(at(TODAY, "10:20"), event(world.a, "medication.taken", at(date(2026, 6, 2), "08:00"),
                                         {"plan_id": "p1"}))
    assert values(total(run("points", *W)), "previous")["issued"] == 60  # not rolled up yet
    result = rollup.rollup_analytics(at(TODAY, "10:25"))
    assert result["days"] == 8  # the re-run window and 06-02
    after = total(run("points", *W))
    assert values(after, "previous")["issued"] == 70
    assert values(after, "previous")["active"] == 2  # A was active in P already
    assert values(after)["liability_cny"] == values(before)["liability_cny"] + 1  # 10 points = 1.00 CNY
    assert total(run("points", *P))["value_issued"] == 70


def test_a_days_compute_answers_today_live(world: World) -> None:
    tz = get_settings().tz
    with read_tx() as session:
        rows = points_rollup.compute_points(session, TODAY, tz)
        facts = points_rollup.compute_participation(session, TODAY, tz)
    overall = [r for r in rows if (r["f_dim"], r["b_dim"]) == ("all", "total")]
    assert sum(r["issued"] for r in overall) == 190
    assert sum(r["redeemed"] for r in overall) == -50
    assert sum(r["budget_fen"] for r in overall) == -400
    assert {(f["patient_id"], f["channel"]) for f in facts} == {(world.c, "online"), (world.d, "onsite")}


def test_concurrent_rerolls_of_one_day_take_turns(racing: Db, world: World) -> None:
    """Six re-rolls of the same days at once (the job, the CLI and a retry, say), each committing
    from its own connection: none collides with another's rows and the stored figures are a
    single run's."""
    rollup.rollup_analytics(NOW)
    before = snapshot()
    tz, days = get_settings().tz, [W[0] + timedelta(days=i) for i in range(7)]

    def reroll() -> dict[str, int]:
        return rollup.rollup_days(days, TODAY, tz)

    results = race(racing, [reroll] * 6, lock=(table(PointsDaily), []))
    assert errors(results) == []
    assert [r["days"] for r in oks(results)] == [7] * 6
    assert snapshot() == before
