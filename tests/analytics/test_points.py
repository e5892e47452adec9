"""The `points` KPIs and the `trend` on the hand-computed hospital of `points_world` (its docstring
works out every figure), on SQLite and PostgreSQL: totals with the previous period, each
breakdown, filters and the caller's institutions, today live, the headline cards."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from carepoints.analytics import points, views
from carepoints.analytics.errors import BadBreakdownError, BadFilterError, TooManyFiltersError
from carepoints.analytics.rollup import rollup_analytics
from carepoints.kit.db import read_tx
from carepoints.ledger import service as ledger
from tests.analytics.points_world import NOW, TODAY, P, W, World, at, build, groups, run, total, values
from tests.conftest import Db
from tests.helpers import balance
from tests.rewards.kit import offset, patient_with, settle

pytestmark = pytest.mark.usefixtures("db")
UNKNOWN = "unknown"


@pytest.fixture
def world(db: Db) -> World:
    w = build()
    rollup_analytics(NOW)
    return w


def kpis(row: dict[str, Any], prefix: str = "value") -> dict[str, Any]:
    v = values(row, prefix)
    return {k: v[k] for k in ("active", "issued", "penalised", "redeemed", "expired", "redemption_rate",
                              "liability_cny", "budget_used_cny")}


def figures(report_row: dict[str, Any]) -> tuple[Any, ...]:
    v = values(report_row)
    return v["active"], v["issued"], v["penalised"], v["redeemed"], v["expired"], v["budget_used_cny"]


def test_the_week_with_the_week_before(world: World) -> None:
    report = run("points", *W)
    assert report.previous is not None
    assert (report.previous.start, report.previous.end) == P
    row = total(report)
    assert len(report.rows) == 1
    assert kpis(row) == {"active": 3, "issued": 100, "penalised": 20, "redeemed": 50, "expired": 100,
                         "redemption_rate": 0.5, "liability_cny": Decimal("39.00"), "budget_used_cny": Decimal("4.00")}
    assert kpis(row, "previous") == {"active": 2, "issued": 60, "penalised": 0, "redeemed": 0, "expired": 0,
                                     "redemption_rate": 0.0, "liability_cny": Decimal("46.00"),
                                     "budget_used_cny": Decimal("0.00")}
    assert report.extra["rolled_through"] == "2026-06-14"
    # outstanding points at the end of 06-14 are the wallets' balances then (no debts here)
    assert (balance(world.a, NOW), balance(world.b, NOW), balance(world.c, NOW)) == (200, 140, 160)


def test_a_range_not_made_of_whole_weeks_counts_patients_live(world: World) -> None:
    # 06-09 .. 06-14: A (sheet 06-09), B, C; A's 06-08 reading is outside
    row = total(run("points", date(2026, 6, 9), W[1]))
    assert figures(row) == (3, 90, 20, 50, 100, Decimal("4.00"))
    # 06-12 .. 06-14: only C (misconduct); B's redemption and the expiry are no behaviour
    row = total(run("points", date(2026, 6, 12), W[1]))
    assert figures(row) == (1, -10, 20, 50, 100, Decimal("4.00"))
    # one closed day (the stored daily counts): 06-10, B
    assert figures(total(run("points", date(2026, 6, 10), date(2026, 6, 10)))) == (1, 40, 0, 0, 0, Decimal("0.00"))


def test_several_whole_weeks_or_months_average_their_active_patients(world: World) -> None:
    # P and W: 2 and 3 active patients; distinct counts of separate weeks are averaged, not added
    report = run("points", P[0], W[1])
    assert report.extra["active_basis"] == "week"
    assert figures(total(report)) == (2.5, 160, 20, 50, 100, Decimal("4.00"))
    active = next(c for c in report.columns if c.key == "value_active")
    assert (active.zh, active.en, active.kind) == ("活跃患者(周均)(本期)", "Active patients (weekly average) (period)",
                                                   "num")
    # by age band: 70-79 A in both weeks, 40-49 B in both, 18-29 C in W only
    bands = groups(run("points", P[0], W[1], by="age_band"))
    assert {k: values(r)["active"] for k, r in bands.items()} == {"18-29": 0.5, "40-49": 1.0, "70-79": 1.0}
    # May (closed: no behaviour) and June (not closed: A, B, C and D so far, live)
    report = run("points", date(2026, 5, 1), date(2026, 6, 30))
    assert report.extra["active_basis"] == "month"
    assert values(total(report))["active"] == 2.0
    assert run("points", *W).extra["active_basis"] == "range"
    # a range longer than a quarter: the average of the months wholly inside it (April, May, June)
    report = run("points", date(2026, 3, 20), date(2026, 6, 30))
    assert (report.extra["active_basis"], values(total(report))["active"]) == ("month", 1.3)  # (0 + 0 + 4) / 3
    report = run("points", date(2024, 5, 20), date(2024, 8, 31))  # June 2024: A's vaccination
    assert (report.extra["active_basis"], values(total(report))["active"]) == ("month", 0.3)
    assert run("points", date(2026, 3, 15), date(2026, 6, 14)).extra["active_basis"] == "range"  # 92 days


def test_by_age_band_condition_and_channel(world: World) -> None:
    bands = groups(run("points", *W, by="age_band"))
    assert list(bands) == ["18-29", "40-49", "70-79"]
    assert figures(bands["70-79"]) == (1, 40, 0, 0, 100, Decimal("0.00"))
    assert figures(bands["40-49"]) == (1, 40, 0, 50, 0, Decimal("4.00"))
    assert figures(bands["18-29"]) == (1, 20, 20, 0, 0, Decimal("0.00"))
    assert bands["70-79"]["name"] == "70-79岁 / 70-79"
    assert values(bands["70-79"], "previous")["issued"] == 60
    # A counts under both of her conditions, the total once
    report = run("points", *W, by="condition")
    conds = groups(report)
    assert list(conds) == ["hypertension", "diabetes", "none"]
    assert figures(conds["hypertension"]) == (2, 80, 0, 50, 100, Decimal("4.00"))
    assert figures(conds["diabetes"]) == (1, 40, 0, 0, 100, Decimal("0.00"))
    assert figures(conds["none"]) == (1, 20, 20, 0, 0, Decimal("0.00"))
    assert figures(total(report)) == (3, 100, 20, 50, 100, Decimal("4.00"))
    assert total(report)["value_liability_cny"] == Decimal("39.00")
    assert conds["hypertension"]["value_liability_cny"] is None
    channels = groups(run("points", *W, by="channel"))
    assert list(channels) == ["online", "onsite", "offline", UNKNOWN]
    assert figures(channels["online"]) == (2, 30, 0, 0, 0, Decimal("0.00"))
    assert figures(channels["onsite"]) == (2, 40, 20, 50, 0, Decimal("4.00"))
    assert figures(channels["offline"]) == (1, 30, 0, 0, 0, Decimal("0.00"))
    assert figures(channels[UNKNOWN]) == (0, 0, 0, 0, 100, Decimal("0.00"))


def test_by_institution_department_clinician_rule_and_reward(world: World) -> None:
    insts = groups(run("points", *W, by="institution"))
    assert figures(insts[world.h1]) == (1, 40, 0, 50, 0, Decimal("4.00"))
    assert figures(insts[world.h2]) == (1, 0, 20, 0, 0, Decimal("0.00"))
    assert figures(insts[UNKNOWN]) == (2, 60, 0, 0, 100, Decimal("0.00"))
    assert insts[world.h1]["name"] == "第一医院 / First Hospital"
    assert values(insts[world.h1], "previous")["active"] == 1  # B's booking on 06-01
    depts = groups(run("points", *W, by="department"))
    assert set(depts) == {world.card, UNKNOWN}
    assert figures(depts[world.card]) == (1, 40, 0, 0, 0, Decimal("0.00"))
    assert figures(depts[UNKNOWN]) == (2, 60, 20, 50, 100, Decimal("4.00"))
    clinicians = groups(run("points", *W, by="clinician"))
    assert figures(clinicians[world.d1]) == (1, 40, 0, 0, 0, Decimal("0.00"))
    assert clinicians[world.d1]["name"] == "王医生"
    rules = groups(run("points", *W, by="rule"))
    issued = {k: values(r)["issued"] for k, r in rules.items()}
    assert issued == {"health_checkin": 10, "lecture": 30, "book_ahead": 30, "on_time": 10, "education": 20,
                      "self_service": 0, "misconduct": 0, UNKNOWN: 0, "first_checkin": 0}
    assert values(rules["first_checkin"], "previous")["issued"] == 50  # a rule of the week before only
    assert values(rules["misconduct"])["penalised"] == 20
    assert (values(rules[UNKNOWN])["redeemed"], values(rules[UNKNOWN])["expired"]) == (50, 100)
    assert all(values(r)["active"] is None for r in rules.values())  # participation is not split by rule
    rewards = groups(run("points", *W, by="reward"))
    assert figures(rewards[world.coupon])[1:] == (0, 0, 50, 0, Decimal("4.00"))
    assert rewards[world.coupon]["name"] == "测试券 / Test coupon"


def test_filters_and_the_callers_institutions_narrow_every_figure(world: World) -> None:
    # the elderly band, by channel: A's reading online, her paper sheet offline, her expiry
    by_channel = groups(run("points", *W, by="channel", filters={"age_band": "70-79"}))
    assert figures(by_channel["online"]) == (1, 10, 0, 0, 0, Decimal("0.00"))
    assert figures(by_channel["offline"]) == (1, 30, 0, 0, 0, Decimal("0.00"))
    assert figures(by_channel[UNKNOWN]) == (0, 0, 0, 0, 100, Decimal("0.00"))
    assert "onsite" not in by_channel
    row = total(run("points", *W, filters={"condition": "hypertension"}))
    assert figures(row) == (2, 80, 0, 50, 100, Decimal("4.00"))
    assert row["value_liability_cny"] is None  # not apportioned to a slice
    # two filters without a breakdown: B in cardiology
    row = total(run("points", *W, filters={"age_band": "40-49", "department_id": world.card}))
    assert figures(row) == (1, 40, 0, 0, 0, Decimal("0.00"))
    # a filter on the breakdown's own dimension keeps that group
    assert set(groups(run("points", *W, by="age_band", filters={"age_band": "18-29"}))) == {"18-29"}
    # `unknown` keys filter too: the entries without a channel (A's expiry), patients without a birth date (D)
    assert figures(total(run("points", *W, filters={"channel": "unknown"}))) == (0, 0, 0, 0, 100, Decimal("0.00"))
    assert figures(total(run("points", TODAY, TODAY, filters={"age_band": "unknown"}))) == (
        1, 130, 0, 0, 0, Decimal("0.00"))
    # the caller's institutions: H1 only
    with read_tx() as session:
        v = views.get("points")
        q = views.query(v, NOW, start=W[0], end=W[1], institutions=frozenset({world.h1}))
        row = total(v.fn(session, q, NOW))
        q = views.query(v, NOW, start=W[0], end=W[1], filters={"institution_id": world.h2},
                        institutions=frozenset({world.h1}))
        outside = total(v.fn(session, q, NOW))
    assert figures(row) == (1, 40, 0, 50, 0, Decimal("4.00"))
    assert row["value_liability_cny"] is None
    assert figures(outside) == (0, 0, 0, 0, 0, Decimal("0.00"))


def test_bad_filters_and_breakdowns_are_refused(world: World) -> None:
    with pytest.raises(BadFilterError):
        run("points", *W, filters={"age_band": "99-100"})
    with pytest.raises(BadFilterError):
        run("points", *W, filters={"condition": "flu"})
    with pytest.raises(BadFilterError):
        run("points", *W, filters={"department_id": "unknown"})  # not a department to filter by
    with pytest.raises(TooManyFiltersError) as err:
        run("points", *W, by="channel", filters={"age_band": "70-79", "department_id": world.card})
    assert err.value.status_code == 422
    with pytest.raises(TooManyFiltersError):
        run("points", *W, filters={"age_band": "70-79", "department_id": world.card, "channel": "online"})
    with pytest.raises(BadBreakdownError):
        run("trend", *W, by="age_band")


def test_today_is_added_live(world: World) -> None:
    # today: C's reading 60 and D's welcome 100 online, D's lecture 30 on-site, B's refund
    row = total(run("points", TODAY, TODAY))
    assert figures(row) == (2, 190, 0, -50, 0, Decimal("-4.00"))
    # W and today: C active on both (once), D new; outstanding now = A 200 + B 140 + C 160 + D 130
    row = total(run("points", W[0], TODAY))
    assert figures(row) == (4, 290, 20, 0, 100, Decimal("0.00"))
    assert row["value_liability_cny"] == Decimal("63.00")
    with read_tx() as session:
        assert ledger.outstanding_points(session) == 630
    channels = groups(run("points", W[0], TODAY, by="channel"))
    assert figures(channels["online"]) == (2, 190, 0, 0, 0, Decimal("0.00"))  # A, C (C today again)
    assert figures(channels["onsite"]) == (3, 70, 20, 0, 0, Decimal("0.00"))  # B, C, D
    bands = groups(run("points", W[0], TODAY, by="age_band"))
    assert figures(bands[UNKNOWN]) == (1, 130, 0, 0, 0, Decimal("0.00"))  # D: no birth date


def test_a_closed_day_never_rolled_up_reads_as_zero(db: Db) -> None:
    build(first_rollup=False)
    report = run("points", *W)
    assert figures(total(report)) == (0, 0, 0, 0, 0, Decimal("0.00"))
    assert report.extra["rolled_through"] is None
    assert figures(total(run("points", TODAY, TODAY))) == (2, 190, 0, -50, 0, Decimal("-4.00"))  # live


def test_the_daily_trend(world: World) -> None:
    report = run("trend", *W)
    by_day = {r["day"]: (r["issued"], r["penalised"], r["redeemed"], r["expired"], r["active"]) for r in report.rows}
    assert by_day == {"2026-06-08": (10, 0, 0, 0, 1), "2026-06-09": (30, 0, 0, 0, 1), "2026-06-10": (40, 0, 0, 0, 1),
                      "2026-06-11": (30, 0, 0, 0, 1), "2026-06-12": (0, 20, 0, 0, 1),
                      "2026-06-13": (-10, 0, 50, 0, 0), "2026-06-14": (0, 0, 0, 100, 0)}
    assert [c["type"] for c in report.extra["charts"]] == ["line", "line"]
    assert report.extra["charts"][0]["series"] == ["issued", "penalised", "redeemed", "expired"]
    # with today, and narrowed: the elderly band (daily counts), H1 and the online channel (patient-days)
    elderly = run("trend", date(2026, 6, 8), TODAY, filters={"age_band": "70-79"})
    assert [(r["issued"], r["active"]) for r in elderly.rows] == [(10, 1), (30, 1), (0, 0), (0, 0), (0, 0), (0, 0),
                                                                  (0, 0), (0, 0)]
    last = run("trend", date(2026, 6, 13), TODAY).rows
    assert [(r["issued"], r["redeemed"], r["active"]) for r in last] == [(-10, 50, 0), (0, 0, 0), (190, -50, 2)]
    narrowed = run("trend", date(2026, 6, 10), date(2026, 6, 11),
                   filters={"institution_id": world.h2, "channel": "onsite", "age_band": "18-29"})
    assert [(r["issued"], r["active"]) for r in narrowed.rows] == [(0, 0), (10, 0)]  # the kiosk event was revoked


def test_headline_cards(world: World) -> None:
    with read_tx() as session:
        v = views.get("points")
        cards = points.headline(session, views.query(v, NOW, start=W[0], end=W[1]), NOW)
    by_key = {c["key"]: c for c in cards}
    assert (by_key["active"]["value"], by_key["active"]["previous"]) == (3, 2)
    assert (by_key["issued"]["value"], by_key["issued"]["previous"]) == (100, 60)
    assert by_key["redemption_rate"]["kind"] == "pct"
    assert by_key["liability_cny"]["value"] == Decimal("39.00")
    assert by_key["budget_used_cny"]["zh"] == "预算使用(元)"
    assert [c["key"] for c in cards] == ["active", "issued", "penalised", "redeemed", "expired", "redemption_rate",
                                         "liability_cny", "budget_used_cny"]


def test_the_budget_gauge_is_the_years_budget_used(world: World) -> None:
    # the default programme's budget is a share of revenue with no revenue set: no gauge
    report = run("points", *W)
    assert [c for c in report.extra["charts"] if c["type"] == "gauge"] == []
    bars = run("points", *W, by="age_band").extra["charts"]
    assert bars[0] == {"type": "bar", "title": {"zh": "积分发放与兑换", "en": "Points issued and redeemed"},
                       "x": "name", "series": ["value_issued", "value_redeemed", "value_penalised"]}


def test_a_cashier_fee_offset_counts_as_redeemed_and_against_the_budget(db: Db) -> None:
    pid = patient_with(at(date(2026, 6, 10), "09:00"), 400, at=at(date(2026, 6, 10), "09:00"))  # 100 + 2 × 200
    held = offset(pid, "25.00", at(date(2026, 6, 11), "09:00"))  # 50% of 25.00 → 120 points
    settle("commit", held["id"], at(date(2026, 6, 11), "09:01"))
    settle("refund", held["id"], at(date(2026, 6, 12), "09:00"))  # 退号: the points come back
    rollup_analytics(NOW)
    day = groups(run("points", date(2026, 6, 11), date(2026, 6, 11), by="reward"))
    assert figures(day["fee_offset"])[1:] == (0, 0, 120, 0, Decimal("12.00"))
    assert day["fee_offset"]["name"] == "挂号费抵扣 / Registration fee offset"  # the catalogue item
    assert figures(groups(run("points", date(2026, 6, 11), date(2026, 6, 11), by="channel"))["onsite"])[3] == 120
    back = total(run("points", date(2026, 6, 12), date(2026, 6, 12)))
    assert figures(back)[1:] == (0, 0, -120, 0, Decimal("-12.00"))
    both = total(run("points", date(2026, 6, 10), date(2026, 6, 12)))
    assert figures(both)[1:] == (500, 0, 0, 0, Decimal("0.00"))
    assert both["value_liability_cny"] == Decimal("50.00")
