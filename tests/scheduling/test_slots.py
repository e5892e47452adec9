"""Slot arithmetic, DB-free: cutting sessions, pools, release times, who may take what."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carepoints.scheduling.slots import cut, fits, pools, release_time, usable_pools

TZ = ZoneInfo("Asia/Shanghai")


def test_fits_counts_whole_slots_only() -> None:
    start = datetime(2026, 6, 15, 8, 0, tzinfo=TZ)
    assert fits(start, start + timedelta(hours=4), 15) == 16
    assert fits(start, start + timedelta(minutes=59), 15) == 3
    assert fits(start, start + timedelta(minutes=59), 60) == 0
    assert fits(start, start + timedelta(minutes=1), 1) == 1


def test_cut_numbers_slots_in_time_order() -> None:
    start = datetime(2026, 6, 15, 8, 0, tzinfo=TZ)
    specs = cut(start, 10, 4, ["online", "onsite", "online", "referral"])
    assert [s.seq for s in specs] == [1, 2, 3, 4]
    assert [s.starts_at.strftime("%H:%M") for s in specs] == ["08:00", "08:10", "08:20", "08:30"]
    assert specs[-1].ends_at == start + timedelta(minutes=40)
    assert [s.pool for s in specs] == ["online", "onsite", "online", "referral"]


def test_pools_interleave_the_pattern_and_spread_referrals() -> None:
    assert pools(6, ["online", "onsite"], Decimal(0)) == ["online", "onsite"] * 3
    assert pools(6, ["online", "online", "onsite"], Decimal(0)) == ["online", "online", "onsite"] * 2
    got = pools(10, ["online", "onsite"], Decimal("0.2"))
    assert Counter(got)["referral"] == 2
    assert [i for i, p in enumerate(got) if p == "referral"] == [2, 7]  # one in each half
    rest = [p for p in got if p != "referral"]
    assert rest == ["online", "onsite"] * 4  # the pattern runs on around the reserved seqs


def test_pools_edges() -> None:
    assert pools(1, ["online"], Decimal("0.2")) == ["online"]  # 0.2 of one slot rounds to none
    assert pools(3, ["online"], Decimal(1)) == ["referral"] * 3
    assert pools(4, [], Decimal(0)) == ["online", "onsite", "online", "onsite"]  # default pattern


@given(capacity=st.integers(1, 300), share=st.decimals(0, 1, places=2),
       pattern=st.lists(st.sampled_from(["online", "onsite"]), min_size=1, max_size=5))
def test_pools_property(capacity: int, share: Decimal, pattern: list[str]) -> None:
    got = pools(capacity, pattern, share)
    assert len(got) == capacity
    expected = min(capacity, int((Decimal(capacity) * share).to_integral_value()))
    assert Counter(got)["referral"] == expected
    general = [p for p in got if p != "referral"]
    assert general == [pattern[i % len(pattern)] for i in range(len(general))]


def test_release_time_is_local() -> None:
    at = release_time(date(2026, 6, 22), TZ, 7, time(8, 0))
    assert at == datetime(2026, 6, 15, 8, 0, tzinfo=TZ)
    assert at.utcoffset() == timedelta(hours=8)


@pytest.mark.parametrize(("channel", "today", "released", "expected"), [
    ("online", date(2026, 6, 20), False, ("online",)),
    ("onsite", date(2026, 6, 20), False, ("onsite",)),
    ("online", date(2026, 6, 20), True, ("online", "referral")),
    ("online", date(2026, 6, 22), False, ("online", "onsite")),  # on the day the pools merge
    ("onsite", date(2026, 6, 22), True, ("onsite", "online", "referral")),
    ("referral", date(2026, 6, 20), False, ("referral", "online")),
    ("referral", date(2026, 6, 22), True, ("referral", "online", "onsite")),
])
def test_usable_pools(channel: str, today: date, released: bool, expected: tuple[str, ...]) -> None:
    assert usable_pools(channel, date(2026, 6, 22), today, released) == expected
