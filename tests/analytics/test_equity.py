"""The equity view (数字鸿沟) on the hand-computed hospital of `points_world`, on SQLite and
PostgreSQL: enrolled and participating patients, participation rates and points per patient by
age band and channel, with today live, the filters and the caller's institutions."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from carepoints.analytics import views
from carepoints.analytics.errors import TooManyFiltersError
from carepoints.analytics.rollup import rollup_analytics
from carepoints.kit.db import read_tx
from tests.analytics.points_world import NOW, TODAY, P, W, World, build, run
from tests.conftest import Db

pytestmark = pytest.mark.usefixtures("db")
SHOWN = ("enrolled", "participants", "participation_rate", "participants_online", "participants_onsite",
         "participants_offline", "points", "points_per_enrolled", "points_per_participant",
         "points_per_participant_online", "points_per_participant_onsite", "points_per_participant_offline")


@pytest.fixture
def world(db: Db) -> World:
    w = build()
    rollup_analytics(NOW)
    return w


def table(**kwargs: Any) -> dict[str, dict[str, Any]]:
    start, end = kwargs.pop("period", W)
    return {r["key"]: {k: r[k] for k in SHOWN if k in r} | {"rates": (r.get("rate_online"), r.get("rate_onsite"),
                                                                     r.get("rate_offline"))}
            for r in run("equity", start, end, **kwargs).rows}


def test_participation_and_points_by_age_band_and_channel(world: World) -> None:
    rows = table()
    # C (18-29): education online, misconduct on-site; her kiosk points were revoked (10 − 10)
    assert rows["18-29"] == {
        "enrolled": 1, "participants": 1, "participation_rate": 1.0, "participants_online": 1,
        "participants_onsite": 1, "participants_offline": 0, "points": 20, "points_per_enrolled": 20.0,
        "points_per_participant": 20.0, "points_per_participant_online": 20.0, "points_per_participant_onsite": 0.0,
        "points_per_participant_offline": None, "rates": (1.0, 1.0, 0.0)}
    # B (40-49): the visit on-site
    assert rows["40-49"]["participants_onsite"] == 1
    assert (rows["40-49"]["points"], rows["40-49"]["points_per_participant_onsite"]) == (40, 40.0)
    assert rows["40-49"]["rates"] == (0.0, 1.0, 0.0)
    # A (70-79): her reading online and her paper sheet offline: offline entry reaches her
    assert rows["70-79"] == {
        "enrolled": 1, "participants": 1, "participation_rate": 1.0, "participants_online": 1,
        "participants_onsite": 0, "participants_offline": 1, "points": 40, "points_per_enrolled": 40.0,
        "points_per_participant": 40.0, "points_per_participant_online": 10.0, "points_per_participant_onsite": None,
        "points_per_participant_offline": 30.0, "rates": (1.0, 0.0, 1.0)}
    # nobody enrolled under 18, in their 30s, 50s, 60s or over 80; no patient without a birth date yet
    assert (rows["<18"]["enrolled"], rows["<18"]["participation_rate"]) == (0, None)
    assert "unknown" not in rows
    # the total: 3 enrolled, 3 took part; online A and C, on-site B and C, offline A
    assert rows["total"] == {
        "enrolled": 3, "participants": 3, "participation_rate": 1.0, "participants_online": 2,
        "participants_onsite": 2, "participants_offline": 1, "points": 100, "points_per_enrolled": 33.33,
        "points_per_participant": 33.33, "points_per_participant_online": 15.0, "points_per_participant_onsite": 20.0,
        "points_per_participant_offline": 30.0, "rates": (0.6667, 0.6667, 0.3333)}
    assert list(rows)[-1] == "total"


def test_the_week_before_and_today(world: World) -> None:
    rows = table(period=P)  # A's first reading (60, online) and B's booking (no points, online)
    assert (rows["70-79"]["participants_online"], rows["70-79"]["points"]) == (1, 60)
    assert (rows["40-49"]["participants_online"], rows["40-49"]["points"]) == (1, 0)
    assert rows["total"]["participation_rate"] == round(2 / 3, 4)
    # today: D enrolled without a birth date (welcome 100 online) and attended a lecture (30 on-site)
    rows = table(period=(TODAY, TODAY))
    assert rows["unknown"] == {
        "enrolled": 1, "participants": 1, "participation_rate": 1.0, "participants_online": 0,
        "participants_onsite": 1, "participants_offline": 0, "points": 130, "points_per_enrolled": 130.0,
        "points_per_participant": 130.0, "points_per_participant_online": None, "points_per_participant_onsite": 30.0,
        "points_per_participant_offline": None, "rates": (0.0, 1.0, 0.0)}
    assert (rows["18-29"]["participants_online"], rows["18-29"]["points"]) == (1, 60)  # C's reading
    assert (rows["total"]["enrolled"], rows["total"]["participants"]) == (4, 2)


def test_two_whole_weeks_average_their_participants(world: World) -> None:
    report = run("equity", P[0], W[1])
    assert report.extra["active_basis"] == "week"
    rows = {r["key"]: r for r in report.rows}
    assert rows["18-29"]["participants"] == 0.5  # C in W only
    assert rows["total"]["participants"] == 2.5
    assert rows["total"]["participation_rate"] == round(2.5 / 3, 4)
    assert next(c for c in report.columns if c.key == "participants").zh == "参与患者(周均)"


def test_filters_and_institutions_narrow_it(world: World) -> None:
    rows = table(filters={"channel": "offline"})
    assert "unknown" not in rows
    assert (rows["70-79"]["participants"], rows["70-79"]["points"]) == (1, 30)
    assert (rows["18-29"]["participants"], rows["18-29"]["points"]) == (0, 0)
    assert (rows["total"]["participants"], rows["total"]["participants_online"]) == (1, 0)
    rows = table(filters={"age_band": "70-79"})
    assert list(rows) == ["70-79", "total"]
    assert (rows["total"]["participants"], rows["total"]["enrolled"]) == (1, 1)
    rows = table(filters={"condition": "hypertension"})  # A and B
    assert rows["total"]["enrolled"] == 2
    assert rows["total"]["participants"] == 2
    assert rows["total"]["points"] == 80
    assert rows["18-29"]["enrolled"] == 0
    rows = table(filters={"condition": "none"})  # C
    assert (rows["total"]["enrolled"], rows["total"]["participants"], rows["total"]["points"]) == (1, 1, 20)
    with pytest.raises(TooManyFiltersError):
        table(filters={"condition": "hypertension", "department_id": world.card})
    with read_tx() as session:  # a caller bound to H1: B only (linked by the booking)
        v = views.get("equity")
        report = v.fn(session, views.query(v, NOW, start=W[0], end=W[1], institutions=frozenset({world.h1})), NOW)
    rows = {r["key"]: r for r in report.rows}
    assert (rows["total"]["enrolled"], rows["total"]["participants"], rows["total"]["points"]) == (1, 1, 40)
    assert rows["40-49"]["participants_onsite"] == 1


def test_chart_hints(world: World) -> None:
    report = run("equity", *W)
    assert report.extra["charts"] == [
        {"type": "bar", "title": {"zh": "各年龄段参与率(按渠道)", "en": "Participation by age band and channel"},
         "x": "age_band", "series": ["rate_online", "rate_onsite", "rate_offline"]},
        {"type": "bar", "title": {"zh": "各年龄段人均积分", "en": "Points per patient by age band"},
         "x": "age_band", "series": ["points_per_enrolled", "points_per_participant"]}]
    keys = {c.key for c in report.columns}
    assert {k for chart in report.extra["charts"] for k in chart["series"]} <= keys
    assert report.rows[0]["age_band"] == "18岁以下 / Under 18"
    assert date.fromisoformat(report.to_json()["period"]["end"]) == W[1]
