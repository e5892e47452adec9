"""`GET /api/v1/analytics/cost_benefit` on the world of `visits_kit.visits_world`: the
programme's cost (the budget used by P4's checkup coupon: 500 points, cost 60.00 CNY) beside
the no-shows avoided (no-show rate W1 3/5 = 0.6, W2 2/7, over W2's 7 slots: (0.6 − 2/7) × 7 =
2.2) at 50.00 CNY and the follow-ups completed (P2's step due Wednesday) at 30.00 CNY."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from tests.analytics import visits_kit as kit
from tests.analytics.visits_kit import W1, W2, at, window
from tests.helpers import error

if TYPE_CHECKING:
    from tests.api_client import Api

pytest_plugins = ["tests.api_client"]

WEEK2 = window(W2, W2 + timedelta(days=6))
COLUMNS = ("quantity", "unit_cny", "value_cny", "previous_quantity", "previous_value_cny")


def panel(api: Api, **params: Any) -> tuple[dict[str, Any], dict[str, tuple[Any, ...]]]:
    r = api.get("/analytics/cost_benefit", params={**WEEK2, **params})
    assert r.status_code == 200, r.text
    doc = r.json()
    return doc, {row["key"]: kit.pick(row, *COLUMNS) for row in doc["rows"]}


def test_cost_beside_the_value_of_no_shows_avoided_and_follow_ups(api: Api) -> None:
    h, _p = kit.visits_world(at(kit.T0 - timedelta(days=1), "09:00"))
    kit.rollup()
    doc, rows = panel(api)
    assert doc["period"] == WEEK2
    assert doc["previous_period"] == window(W1, W1 + timedelta(days=6))
    # W1's own baseline (the week before it) has no visits: nothing avoided, nothing else happened
    assert rows == {
        "cost": (500, None, "60.00", 0, "0.00"),
        "redeemed_value": (500, None, "50.00", 0, "0.00"),  # 100 points = 10 CNY
        "no_shows_avoided": ("2.20", "50.00", "110.00", "0.00", "0.00"),
        "followups_completed": (1, "30.00", "30.00", 0, "0.00"),
        "benefit": (None, None, "140.00", None, "0.00"),
        "net": (None, None, "80.00", None, "0.00"),
    }
    assert doc["no_show_rate"] == {"period": 0.2857, "baseline": 0.6, "previous": 0.6, "previous_baseline": None,
                                   "baseline_source": "previous_period"}
    assert doc["charts"][0]["series"] == ["value_cny", "previous_value_cny"]

    # against a fixed baseline of 0.5: (0.5 − 2/7) × 7 = 1.5 avoided in W2; W1 (0.6) was worse than it
    doc, rows = panel(api, baseline="0.5")
    assert rows["no_shows_avoided"] == ("1.50", "50.00", "75.00", "0.00", "0.00")
    assert rows["net"] == (None, None, "45.00", None, "0.00")
    assert doc["no_show_rate"]["baseline_source"] == "parameter"

    # h2 alone: P4's Thursday visit, no no-show (rate 0, no W1 baseline), no cost (P4 belongs to both
    # institutions and redeemed at neither), no follow-up (P2 belongs to h1); only the institution filter applies
    doc, rows = panel(api, institution_id=h.institutions["h2"], department_id=h.departments["C"], baseline="0.5")
    assert doc["ignored_filters"] == ["department_id"]
    assert rows["cost"] == (0, None, "0.00", 0, "0.00")
    assert rows["no_shows_avoided"] == ("0.50", "50.00", "25.00", "0.00", "0.00")
    assert rows["followups_completed"] == (0, "30.00", "0.00", 0, "0.00")
    assert rows["net"] == (None, None, "25.00", None, "0.00")


def test_a_bad_baseline_is_a_422(api: Api) -> None:
    for raw in ("abc", "1.5", "-0.1", "NaN", "Infinity"):
        error(api.get("/analytics/cost_benefit", params={"baseline": raw}), 422, "analytics.bad_parameter")
    error(api.get("/analytics/cost_benefit", params={"by": "department"}), 422, "analytics.bad_breakdown")
