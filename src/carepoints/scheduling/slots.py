"""Slot arithmetic: pure functions, no I/O, `now` passed in.

A session from `start` to `end` with slots of `minutes` holds `capacity`
slots (at most what fits), numbered 1..capacity in time order. Pools: a share
of the slots is reserved for primary-care referrals, spread evenly over the
session; the others follow the interleaving pattern (e.g. online, online,
onsite, …) so that both registration channels get slots all through the
session. Online and on-site draw from their own pools until the session's
day; on the day the two merge (what is left is for whoever comes). Referral
slots are open to everyone from the session's referral release time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

POOLS = ("online", "onsite", "referral")
CHANNELS = POOLS
DEFAULT_PATTERN = ("online", "onsite")


@dataclass(frozen=True)
class SlotSpec:
    seq: int
    starts_at: datetime
    ends_at: datetime
    pool: str


def fits(start: datetime, end: datetime, minutes: int) -> int:
    """How many whole slots of `minutes` fit between start and end."""
    return int((end - start) // timedelta(minutes=minutes))


def pools(capacity: int, pattern: tuple[str, ...] | list[str], referral_share: Decimal) -> list[str]:
    """The pool of each seq (index 0 = seq 1). round(capacity × share) referral slots sit at
    evenly spaced seqs; the rest cycle through `pattern`."""
    reserved = min(capacity, int((Decimal(capacity) * referral_share).to_integral_value()))
    out: list[str | None] = [None] * capacity
    for i in range(reserved):
        out[int((Decimal(i) + Decimal("0.5")) * capacity / reserved)] = "referral"
    cycle = list(pattern) or list(DEFAULT_PATTERN)
    k = 0
    for i in range(capacity):
        if out[i] is None:
            out[i] = cycle[k % len(cycle)]
            k += 1
    return [p or "online" for p in out]


def cut(start: datetime, minutes: int, capacity: int, pool_of: list[str]) -> list[SlotSpec]:
    step = timedelta(minutes=minutes)
    return [SlotSpec(i + 1, start + i * step, start + (i + 1) * step, pool_of[i]) for i in range(capacity)]


def release_time(day: date, tz: ZoneInfo, days_ahead: int, at: time) -> datetime:
    """When a session on `day` opens for booking: `days_ahead` days before, at local `at`."""
    d = day - timedelta(days=days_ahead)
    return datetime.combine(d, at, tzinfo=tz)


def usable_pools(channel: str, session_day: date, today: date, referral_released: bool) -> tuple[str, ...]:
    """The pools a booking through `channel` may take a slot from, in order of preference."""
    if channel == "referral":
        general: tuple[str, ...] = ("online", "onsite") if today >= session_day else ("online",)
        return ("referral", *general)
    own = ("online", "onsite") if today >= session_day else (channel,)
    if channel == "onsite" and today >= session_day:
        own = ("onsite", "online")
    return (*own, "referral") if referral_released else own
