"""Capacity suggestions and off-peak windows from a forecast: pure arithmetic.

- A session's demand: the department's forecast for each hour of its day, shared among the
  department's sessions of that day by the minutes each spans of that hour (two sessions
  running through 09:00–10:00 get half of its demand each; one that ends at 09:30 gets a third).
  Time, not the slots it has now: a session cut to too few slots still owns its hours' demand.
- Its suggested capacity: demand × headroom rounded up to a whole slot, never below the slots
  already taken (booked or offered to the waitlist) nor below 1, and at most what fits in the
  session (`capped` says the demand wants more: an extra session would be the answer).
- Off-peak windows: runs of consecutive hours whose forecast demand is below `ratio` × the
  slots offered in them (hours without slots are not windows)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

_EPSILON = 1e-9  # 10 × 1.1 is 11.000000000000002 in floating point: not 12 slots


def session_demand(forecast: Mapping[int, float], own: Mapping[int, float], total: Mapping[int, float]) -> float:
    """The session's share of its department's forecast demand: Σ over hours of demand(h) ×
    own minutes(h) / all the department's sessions' minutes(h) that day."""
    share = 0.0
    for hour, n in own.items():
        if n > 0 and total.get(hour, 0) > 0:
            share += float(forecast.get(hour, 0.0)) * n / total[hour]
    return share


def capacity(demand: float, headroom: float, taken: int, fit: int) -> tuple[int, bool]:
    """(suggested capacity, capped): ⌈demand × headroom⌉, at least `taken` and 1, at most `fit`."""
    wanted = math.ceil(max(0.0, demand) * headroom - _EPSILON)
    suggested = max(wanted, taken, 1)
    if suggested > fit:
        return max(fit, taken, 1), wanted > fit
    return suggested, False


@dataclass(frozen=True)
class Window:
    start: int  # local hour the window opens
    end: int  # local hour it closes (exclusive)
    demand: float  # forecast demand in the window
    slots: float  # slots offered in it

    @property
    def utilisation(self) -> float:
        return self.demand / self.slots if self.slots else 0.0


def off_peak(demand: Mapping[int, float], slots: Mapping[int, float], ratio: float) -> list[Window]:
    """The runs of consecutive hours with slots whose demand is below `ratio` × slots."""
    out: list[Window] = []
    run: list[int] = []
    for hour in [*sorted(slots), None]:
        quiet = hour is not None and slots[hour] > 0 and demand.get(hour, 0.0) < ratio * slots[hour]
        if quiet and run and hour == run[-1] + 1:
            run.append(hour)
            continue
        if run:
            out.append(Window(run[0], run[-1] + 1, sum(demand.get(h, 0.0) for h in run),
                              sum(slots[h] for h in run)))
        run = [hour] if quiet and hour is not None else []
    return out
