"""The breakdowns every roll-up and view shares: age bands (configurable), channels and
the names of the dimensions a view may be broken down by."""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from itertools import pairwise
from typing import Literal

from carepoints.config import get_settings

# what a figure can be broken down by (`by=`); each view says which it supports
Breakdown = Literal["institution", "department", "clinician", "rule", "reward", "age_band", "condition", "channel"]
BREAKDOWNS: tuple[str, ...] = ("institution", "department", "clinician", "rule", "reward", "age_band",
                               "condition", "channel")

# how a behaviour reached carepoints: the patient's own app / web (online), at the hospital
# (on-site: front desk, kiosk, HIS at the visit) or typed in by staff from paper (offline)
Channel = Literal["online", "onsite", "offline"]
CHANNELS: tuple[str, ...] = ("online", "onsite", "offline")
CHANNEL_NAMES = {"online": ("线上", "Online"), "onsite": ("现场", "On-site"), "offline": ("线下录入", "Offline entry")}
UNKNOWN = "unknown"


@lru_cache(maxsize=8)
def _bounds(raw: str) -> tuple[int, ...]:
    bounds = tuple(sorted({int(x) for x in raw.split(",") if x.strip()}))
    return bounds or (18,)


def age_bounds() -> tuple[int, ...]:
    return _bounds(get_settings().analytics_age_bands)


def age_bands() -> list[str]:
    """Every band's label in order, e.g. `<18`, `18-29`, ..., `80+` (and `unknown` last)."""
    b = age_bounds()
    labels = [f"<{b[0]}"] + [f"{lo}-{hi - 1}" for lo, hi in pairwise(b)] + [f"{b[-1]}+"]
    return [*labels, UNKNOWN]


def age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def age_band(birth: date | None, day: date) -> str:
    """The band of a patient born on `birth` on `day`; `unknown` without a birth date."""
    if birth is None:
        return UNKNOWN
    age, b = age_on(birth, day), age_bounds()
    if age < b[0]:
        return f"<{b[0]}"
    for lo, hi in pairwise(b):
        if lo <= age < hi:
            return f"{lo}-{hi - 1}"
    return f"{b[-1]}+"


def band_names(band: str) -> tuple[str, str]:
    """(zh, en) label of a band."""
    if band == UNKNOWN:
        return "年龄未知", "Age unknown"
    if band.startswith("<"):
        return f"{band[1:]}岁以下", f"Under {band[1:]}"
    if band.endswith("+"):
        return f"{band[:-1]}岁及以上", f"{band[:-1]} and over"
    return f"{band}岁", band
