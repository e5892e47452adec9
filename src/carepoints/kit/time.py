"""Clock and the hospital's local calendar.

Timestamps are stored in UTC and are always timezone-aware; days, months and
years are the hospital's local calendar (CAREPOINTS_TIMEZONE)."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo


def utc_now() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Normalise an aware datetime to UTC; naive values from the database are UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def local_date(value: datetime, tz: ZoneInfo) -> date:
    return as_utc(value).astimezone(tz).date()


def add_months(value: datetime, months: int) -> datetime:
    """Calendar months, clamping the day (31 Jan + 1 month = 28/29 Feb)."""
    month0 = value.month - 1 + months
    year = value.year + month0 // 12
    month = month0 % 12 + 1
    day = min(value.day, calendar.monthrange(year, month)[1])
    return value.replace(year=year, month=month, day=day)


@lru_cache(maxsize=4096)
def iso_z(value: datetime) -> str:
    """Canonical UTC timestamp: YYYY-MM-DDTHH:MM:SS.ffffffZ."""
    u = as_utc(value)
    return (f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}"
            f".{u.microsecond:06d}Z")


def parse_now(raw: str | None) -> datetime:
    """Parse a --now option (ISO 8601; naive means the hospital's local time is not assumed: UTC)."""
    if not raw:
        return utc_now()
    parsed = datetime.fromisoformat(raw)
    return as_utc(parsed)


def day_start_utc(day: date, tz: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)


ONE_DAY = timedelta(days=1)
