"""Forecasting demand per department, local day and hour: pure functions, numbers in, numbers out.

Demand is a grid: one row per local day (consecutive days), one column per clinic hour. Each
model predicts the `days` rows that follow the rows it is given:

- `flat_mean`: each hour's mean over the last 8 weeks, the same every day (no weekly pattern:
  the yardstick every other model must beat);
- `weekday_hour_mean`: the mean of the same weekday and hour over the last 8 weeks (baseline);
- `seasonal_naive`: the last week again;
- `holt_winters`: statsmodels' ExponentialSmoothing (Holt-Winters) on the daily totals — an
  additive damped trend and an additive weekly season — split into hours by each weekday's hour
  shares over the last 8 weeks.

`evaluate` holds back the last days (28 when there are at least 56, else 7 when there are at
least 21), fits every model on the days before them, scores each on the held-back days and
chooses the lowest WAPE (ties: the simpler model, in `CANDIDATES` order). WAPE = Σ|actual −
forecast| / Σ actual over every day × hour cell (robust for small counts, where a percentage
error per cell explodes); MAE is the mean absolute error per cell. `forecast` then refits the
chosen model on every day."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]

WINDOW_DAYS = 56  # the means and the hour shares look at the last 8 weeks
MIN_HOLT_WINTERS_DAYS = 28  # four weekly seasons before Holt-Winters is fitted
HOLDOUT_DAYS = 28


class ModelUnavailableError(Exception):
    """The model cannot be fitted on this history (too short, or the fit failed)."""


@dataclass(frozen=True)
class Grid:
    """Demand of consecutive local days from `start` (rows) and clinic `hours` (columns)."""

    start: date
    hours: tuple[int, ...]
    values: Array

    @property
    def days(self) -> int:
        return int(self.values.shape[0])

    def day(self, i: int) -> date:
        return self.start + timedelta(days=i)

    @property
    def end(self) -> date:
        """The day after the last row."""
        return self.day(self.days)

    def head(self, n: int) -> Grid:
        return Grid(self.start, self.hours, self.values[:n])

    def tail(self, n: int) -> Grid:
        return Grid(self.day(self.days - n), self.hours, self.values[self.days - n:])

    def daily(self) -> Array:
        return np.asarray(self.values.sum(axis=1), dtype=np.float64)


def build_grid(cells: Mapping[tuple[date, int], float], start: date, end: date,
               hours: Iterable[int] | None = None) -> Grid:
    """The grid of days start..end (inclusive) from {(day, hour): demand}; hours default to
    those with any demand."""
    cols = tuple(sorted(set(hours) if hours is not None else {h for _, h in cells}))
    n = max(0, (end - start).days + 1)
    values = np.zeros((n, len(cols)), dtype=np.float64)
    index = {h: j for j, h in enumerate(cols)}
    for (day, hour), v in cells.items():
        i = (day - start).days
        if 0 <= i < n and hour in index:
            values[i, index[hour]] += float(v)
    return Grid(start, cols, values)


def _weekdays(start: date, days: int) -> list[int]:
    return [(start + timedelta(days=i)).isoweekday() for i in range(days)]


def _window(train: Grid) -> Grid:
    return train.tail(min(train.days, WINDOW_DAYS))


def flat_mean(train: Grid, days: int) -> Array:
    recent = _window(train)
    if recent.days == 0:
        raise ModelUnavailableError()
    return np.tile(recent.values.mean(axis=0), (days, 1))


def weekday_hour_mean(train: Grid, days: int) -> Array:
    recent = _window(train)
    if recent.days < 7:
        raise ModelUnavailableError()
    seen = _weekdays(recent.start, recent.days)
    means = {w: recent.values[[i for i, x in enumerate(seen) if x == w]].mean(axis=0) for w in set(seen)}
    return np.array([means[w] for w in _weekdays(train.end, days)], dtype=np.float64).reshape(days, -1)


def seasonal_naive(train: Grid, days: int) -> Array:
    if train.days < 7:
        raise ModelUnavailableError()
    week = train.values[train.days - 7:]
    return np.array([week[i % 7] for i in range(days)], dtype=np.float64).reshape(days, -1)


def _hour_shares(train: Grid) -> dict[int, Array]:
    """Per weekday, the share of the day's demand each hour had over the last 8 weeks (the
    overall shares for a weekday without demand, uniform without any)."""
    recent = _window(train)
    width = len(train.hours)
    overall = recent.values.sum(axis=0)
    fallback = overall / overall.sum() if overall.sum() > 0 else np.full(width, 1.0 / max(width, 1))
    seen = _weekdays(recent.start, recent.days)
    out: dict[int, Array] = {}
    for w in range(1, 8):
        rows = recent.values[[i for i, x in enumerate(seen) if x == w]]
        total = rows.sum(axis=0) if len(rows) else np.zeros(width)
        out[w] = total / total.sum() if total.sum() > 0 else fallback
    return out


def holt_winters(train: Grid, days: int) -> Array:
    if train.days < MIN_HOLT_WINTERS_DAYS:
        raise ModelUnavailableError()
    y = train.daily()
    if not y.any():
        return np.zeros((days, len(train.hours)), dtype=np.float64)
    # imported here: statsmodels (with pandas and scipy) takes about two seconds to import
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence notes of the optimiser: the held-back error judges the fit
        try:
            fit = ExponentialSmoothing(y, trend="add", damped_trend=True, seasonal="add", seasonal_periods=7,
                                       initialization_method="heuristic").fit()
            totals = np.asarray(fit.forecast(days), dtype=np.float64)
        except (ValueError, np.linalg.LinAlgError) as exc:
            raise ModelUnavailableError() from exc
    if not np.isfinite(totals).all():
        raise ModelUnavailableError()
    shares = _hour_shares(train)
    totals = np.clip(totals, 0.0, None)
    return np.array([totals[i] * shares[w] for i, w in enumerate(_weekdays(train.end, days))],
                    dtype=np.float64).reshape(days, -1)


Model = Callable[[Grid, int], Array]
MODELS: dict[str, Model] = {"flat_mean": flat_mean, "weekday_hour_mean": weekday_hour_mean,
                            "seasonal_naive": seasonal_naive, "holt_winters": holt_winters}
CANDIDATES = ("weekday_hour_mean", "seasonal_naive", "holt_winters", "flat_mean")
BASELINE = "weekday_hour_mean"


def wape(actual: Array, predicted: Array) -> float | None:
    """Σ|actual − predicted| / Σ actual; None when nothing was demanded."""
    total = float(np.abs(actual).sum())
    if total <= 0:
        return None
    return float(np.abs(actual - predicted).sum()) / total


def mae(actual: Array, predicted: Array) -> float:
    return float(np.abs(actual - predicted).mean()) if actual.size else 0.0


def holdout_days(days: int, wanted: int = HOLDOUT_DAYS) -> int:
    """How many of the last days are held back: `wanted` with at least twice that much history,
    a week with at least three, else none."""
    if days >= 2 * wanted:
        return wanted
    if days >= 21:
        return 7
    return 0


@dataclass(frozen=True)
class Score:
    wape: float | None
    mae: float


@dataclass(frozen=True)
class Evaluation:
    holdout: int  # days held back (0: too little history to evaluate)
    scores: dict[str, Score]  # the models that could be fitted
    chosen: str
    predicted: Array | None  # the chosen model's forecast of the held-back days


def predict(train: Grid, name: str, days: int) -> Array:
    """`name`'s forecast of the `days` after `train` (never negative)."""
    return np.clip(MODELS[name](train, days), 0.0, None)


def evaluate(grid: Grid, candidates: Iterable[str] = CANDIDATES, wanted: int = HOLDOUT_DAYS) -> Evaluation:
    """Hold back the last days, score every candidate on them and choose the lowest WAPE."""
    names = tuple(candidates)
    hold = holdout_days(grid.days, wanted)
    if hold == 0:
        fallback = BASELINE if grid.days >= 7 else "flat_mean"
        return Evaluation(0, {}, fallback if grid.days else BASELINE, None)
    train, test = grid.head(grid.days - hold), grid.tail(hold)
    scores: dict[str, Score] = {}
    forecasts: dict[str, Array] = {}
    for name in names:
        try:
            forecasts[name] = predict(train, name, hold)
        except ModelUnavailableError:
            continue
        scores[name] = Score(wape(test.values, forecasts[name]), mae(test.values, forecasts[name]))
    if not scores:
        return Evaluation(hold, {}, BASELINE, None)

    def rank(name: str) -> tuple[float, int]:
        s = scores[name]
        return (s.wape if s.wape is not None else s.mae, names.index(name))

    chosen = min(scores, key=rank)
    return Evaluation(hold, scores, chosen, forecasts[chosen])


def forecast(grid: Grid, name: str, days: int) -> Array:
    """Refit `name` on the whole grid and forecast the `days` after it (the baseline, then the
    flat mean, when it cannot be fitted)."""
    for candidate in (name, BASELINE, "flat_mean"):
        try:
            return predict(grid, candidate, days)
        except ModelUnavailableError:
            continue
    return np.zeros((days, len(grid.hours)), dtype=np.float64)
