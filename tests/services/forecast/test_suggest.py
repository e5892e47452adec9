"""Capacity arithmetic and off-peak windows without a database."""

from __future__ import annotations

import pytest

from carepoints.services.forecast import suggest


def test_a_session_takes_its_share_of_each_hour_by_time() -> None:
    forecast = {8: 10.0, 9: 12.0, 10: 6.0}
    # this session spans 08:00-10:00; another one runs 09:00-11:00 beside it
    own = {8: 60.0, 9: 60.0}
    total = {8: 60.0, 9: 120.0, 10: 60.0}
    assert suggest.session_demand(forecast, own, total) == pytest.approx(10 + 6)
    assert suggest.session_demand(forecast, {9: 30.0}, total) == pytest.approx(3)
    assert suggest.session_demand({}, own, total) == 0
    assert suggest.session_demand(forecast, {7: 60.0}, total) == 0  # an hour nobody else offers: no forecast


@pytest.mark.parametrize(("demand", "headroom", "taken", "fit", "expected"), [
    (10.0, 1.1, 0, 40, (11, False)),   # 10 × 1.1 is 11.000000000000002 in floating point: still 11
    (10.01, 1.1, 0, 40, (12, False)),  # rounded up to a whole slot
    (0.0, 1.1, 0, 40, (1, False)),     # never below 1
    (3.0, 1.2, 7, 40, (7, False)),     # never below the slots taken
    (50.0, 1.1, 0, 40, (40, True)),    # at most what fits: capped (an extra session is the answer)
    (36.3, 1.1, 0, 40, (40, False)),   # 39.93 → 40: just fits
    (36.4, 1.1, 0, 40, (40, True)),    # 40.04 → 41 does not
])
def test_capacity(demand: float, headroom: float, taken: int, fit: int, expected: tuple[int, bool]) -> None:
    assert suggest.capacity(demand, headroom, taken, fit) == expected


def test_off_peak_windows_join_consecutive_quiet_hours() -> None:
    slots = {8: 10.0, 9: 10.0, 10: 10.0, 11: 10.0, 14: 10.0, 15: 10.0, 16: 0.0}
    demand = {8: 12.0, 9: 4.0, 10: 5.0, 11: 9.0, 14: 2.0, 15: 5.9, 16: 0.0}
    windows = suggest.off_peak(demand, slots, 0.6)
    assert [(w.start, w.end, w.demand, w.slots) for w in windows] == [(9, 11, 9.0, 20.0), (14, 16, 7.9, 20.0)]
    assert windows[0].utilisation == pytest.approx(0.45)
    assert suggest.off_peak({}, {}, 0.6) == []
    assert [(w.start, w.end) for w in suggest.off_peak({}, {9: 4.0, 11: 4.0}, 0.5)] == [(9, 10), (11, 12)]
