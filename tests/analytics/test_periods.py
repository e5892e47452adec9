"""Date ranges and age bands: the defaults, the previous period, whole weeks / months."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carepoints.analytics import dims, periods
from carepoints.analytics.errors import BadRangeError
from carepoints.analytics.periods import Period

TODAY = date(2026, 6, 15)


def test_every_bound_defaults_to_the_last_30_days() -> None:
    assert periods.resolve(None, None, TODAY, 1100) == Period(date(2026, 5, 17), TODAY)
    assert periods.resolve(date(2026, 6, 1), None, TODAY, 1100) == Period(date(2026, 6, 1), TODAY)
    assert periods.resolve(date(2026, 1, 1), None, TODAY, 1100) == Period(date(2026, 1, 1), date(2026, 1, 30))
    assert periods.resolve(None, date(2026, 3, 31), TODAY, 1100) == Period(date(2026, 3, 2), date(2026, 3, 31))


def test_a_reversed_or_too_long_range_is_refused() -> None:
    with pytest.raises(BadRangeError) as reversed_:
        periods.resolve(date(2026, 6, 2), date(2026, 6, 1), TODAY, 1100)
    assert reversed_.value.status_code == 422
    assert "2026-06-02" in reversed_.value.detail
    with pytest.raises(BadRangeError, match="1100"):
        periods.resolve(date(2020, 1, 1), date(2026, 1, 1), TODAY, 1100)


def test_the_previous_period_is_as_long_and_just_before() -> None:
    assert Period(date(2026, 6, 1), date(2026, 6, 10)).previous() == Period(date(2026, 5, 22), date(2026, 5, 31))
    # whole months map onto the months before: March's previous period is February
    assert Period(date(2026, 3, 1), date(2026, 3, 31)).previous() == Period(date(2026, 2, 1), date(2026, 2, 28))
    assert Period(date(2026, 1, 1), date(2026, 3, 31)).previous() == Period(date(2025, 10, 1), date(2025, 12, 31))


def test_whole_weeks_and_months() -> None:
    weeks = Period(date(2026, 6, 1), date(2026, 6, 14))  # Monday to Sunday, twice
    assert weeks.whole_weeks() == [date(2026, 6, 1), date(2026, 6, 8)]
    assert weeks.whole_months() is None
    assert Period(date(2026, 6, 2), date(2026, 6, 14)).whole_weeks() is None
    months = Period(date(2025, 12, 1), date(2026, 2, 28))
    assert months.whole_months() == [date(2025, 12, 1), date(2026, 1, 1), date(2026, 2, 1)]
    assert Period(date(2026, 2, 1), date(2026, 2, 27)).whole_months() is None


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 1, 1)), st.integers(0, 800))
def test_a_previous_period_never_overlaps_and_touches(start: date, length: int) -> None:
    p = Period(start, date.fromordinal(start.toordinal() + length))
    prev = p.previous()
    assert prev.end.toordinal() + 1 == p.start.toordinal()
    assert prev.start <= prev.end
    if p.whole_months() is None:
        assert prev.days == p.days


def test_age_bands_follow_the_birthday() -> None:
    assert dims.age_bands() == ["<18", "18-29", "30-39", "40-49", "50-59", "60-69", "70-79", "80+", "unknown"]
    born = date(1956, 6, 16)
    assert dims.age_band(born, date(2026, 6, 15)) == "60-69"  # 69 the day before the 70th birthday
    assert dims.age_band(born, date(2026, 6, 16)) == "70-79"
    assert dims.age_band(date(2010, 1, 1), date(2026, 6, 15)) == "<18"
    assert dims.age_band(date(1930, 2, 1), date(2026, 6, 15)) == "80+"
    assert dims.age_band(None, date(2026, 6, 15)) == "unknown"
    assert dims.band_names("80+") == ("80岁及以上", "80 and over")
    # a 29 February birthday turns a year older on 1 March in common years
    assert dims.age_on(date(2008, 2, 29), date(2026, 2, 28)) == 17
    assert dims.age_on(date(2008, 2, 29), date(2026, 3, 1)) == 18
