"""The forecast models without a database, on demand with a known weekly and daily pattern: the
seasonal models beat a flat mean, the held-back days never reach the fit, WAPE and MAE
arithmetic, the choice per department, and short histories."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from carepoints.services.forecast import model

START = date(2026, 1, 5)  # a Monday
HOURS = (8, 9, 10, 11, 14, 15, 16)
PROFILE = {8: 1.2, 9: 1.5, 10: 1.0, 11: 0.6, 14: 0.9, 15: 0.8, 16: 0.4}
WEEK = {1: 60, 2: 45, 3: 42, 4: 40, 5: 50, 6: 15, 7: 0}  # a day's patients by ISO weekday


def seasonal(days: int, *, noise: float = 0.0, trend: float = 0.0, seed: int = 7) -> model.Grid:
    """Daily totals by weekday, growing by `trend` a day, split by the hour profile, with
    Poisson-like noise of the given relative size."""
    rng = np.random.default_rng(seed)
    cells = {}
    scale = sum(PROFILE.values())
    for i in range(days):
        day = START + timedelta(days=i)
        total = WEEK[day.isoweekday()] * (1 + trend * i)
        for h in HOURS:
            mean = total * PROFILE[h] / scale
            cells[(day, h)] = max(0.0, mean + (rng.normal(0, noise * np.sqrt(mean)) if noise and mean else 0.0))
    return model.build_grid(cells, START, START + timedelta(days=days - 1), HOURS)


def test_the_seasonal_models_beat_a_flat_mean_on_weekly_demand() -> None:
    ev = model.evaluate(seasonal(26 * 7, noise=1.0, trend=0.002))
    assert ev.holdout == 28
    flat = ev.scores["flat_mean"].wape
    assert flat is not None
    for name in ("holt_winters", "weekday_hour_mean", "seasonal_naive"):
        score = ev.scores[name].wape
        assert score is not None
        assert score < flat * 0.75, (name, score, flat)
    assert ev.chosen != "flat_mean"
    assert ev.scores[ev.chosen].wape == min(s.wape for s in ev.scores.values() if s.wape is not None)


def test_holt_winters_follows_a_trend_the_means_lag_behind() -> None:
    ev = model.evaluate(seasonal(26 * 7, trend=0.01))  # +1% a day, no noise
    hw, mean = ev.scores["holt_winters"].wape, ev.scores["weekday_hour_mean"].wape
    assert hw is not None
    assert mean is not None
    assert hw < mean / 2, (hw, mean)
    assert ev.chosen == "holt_winters"


def test_the_held_back_days_never_reach_the_fit() -> None:
    grid = seasonal(10 * 7, noise=0.5)
    changed = model.Grid(grid.start, grid.hours, grid.values.copy())
    changed.values[-28:] *= 3  # a different last month: only the scores may change
    a, b = model.evaluate(grid), model.evaluate(changed)
    assert a.predicted is not None
    assert b.predicted is not None
    for name in a.scores:
        train = grid.head(grid.days - 28)
        assert np.allclose(model.predict(train, name, 28), model.predict(changed.head(changed.days - 28), name, 28))
    assert a.chosen == b.chosen or a.scores != b.scores
    assert b.scores["weekday_hour_mean"].wape == pytest.approx(2 / 3, abs=0.02)  # predicts a third of it


def test_wape_and_mae() -> None:
    actual = np.array([[2.0, 0.0], [4.0, 4.0]])
    predicted = np.array([[1.0, 1.0], [4.0, 2.0]])
    assert model.wape(actual, predicted) == pytest.approx(4 / 10)
    assert model.mae(actual, predicted) == pytest.approx(1.0)
    assert model.wape(np.zeros((2, 2)), predicted) is None  # nothing demanded: no ratio


def test_weekday_hour_mean_and_seasonal_naive_repeat_the_week() -> None:
    grid = seasonal(8 * 7)
    week = grid.values[-7:]
    assert np.allclose(model.weekday_hour_mean(grid, 14), np.vstack([week, week]))
    assert np.allclose(model.seasonal_naive(grid, 14), np.vstack([week, week]))
    flat = model.flat_mean(grid, 3)
    assert np.allclose(flat[0], flat[2])
    assert np.allclose(flat[0], week.mean(axis=0))


@pytest.mark.parametrize(("days", "holdout", "chosen"), [(56, 28, None), (30, 7, None), (14, 0, "weekday_hour_mean"),
                                                         (5, 0, "flat_mean")])
def test_short_histories(days: int, holdout: int, chosen: str | None) -> None:
    ev = model.evaluate(seasonal(days))
    assert ev.holdout == holdout
    if chosen is not None:
        assert ev.chosen == chosen
        assert ev.scores == {}
    assert "holt_winters" in ev.scores or days - holdout < model.MIN_HOLT_WINTERS_DAYS
    out = model.forecast(seasonal(days), ev.chosen, 7)
    assert out.shape == (7, len(HOURS))
    assert (out >= 0).all()


def test_no_demand_at_all_forecasts_zero() -> None:
    grid = model.build_grid({}, START, START + timedelta(days=69), HOURS)
    ev = model.evaluate(grid)
    assert all(s.wape is None for s in ev.scores.values())
    assert not model.forecast(grid, ev.chosen, 7).any()


def test_build_grid_sums_cells_and_keeps_the_days_in_range() -> None:
    cells = {(START, 9): 2.0, (START + timedelta(days=1), 10): 1.5, (START - timedelta(days=1), 9): 9.0}
    grid = model.build_grid(cells, START, START + timedelta(days=2))
    assert grid.hours == (9, 10)
    assert grid.days == 3
    assert grid.values.tolist() == [[2.0, 0.0], [0.0, 1.5], [0.0, 0.0]]
    assert grid.end == START + timedelta(days=3)
