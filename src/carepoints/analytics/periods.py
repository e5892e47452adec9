"""Date ranges of the hospital's local calendar: parsing with defaults, the previous period,
and whether a range is made of whole ISO weeks or calendar months (distinct-patient
figures are rolled up for those)."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

from carepoints.analytics.errors import BadRangeError

DEFAULT_DAYS = 30


@dataclass(frozen=True, slots=True)
class Period:
    """`start` to `end`, both included (local dates)."""

    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        """The period of the same length just before this one (whole months map to the
        months before, so March's previous period is February)."""
        months = self.whole_months()
        if months:
            first = _add_months(self.start, -len(months))
            return Period(first, self.start - timedelta(days=1))
        return Period(self.start - timedelta(days=self.days), self.start - timedelta(days=1))

    def whole_weeks(self) -> list[date] | None:
        """The Mondays of the ISO weeks the range is made of, or None when it is not whole weeks."""
        if self.start.weekday() != 0 or self.end.weekday() != 6:
            return None
        return [self.start + timedelta(days=7 * i) for i in range(self.days // 7)]

    def whole_months(self) -> list[date] | None:
        """The first days of the calendar months the range is made of, or None."""
        if self.start.day != 1 or self.end.day != calendar.monthrange(self.end.year, self.end.month)[1]:
            return None
        firsts, d = [], self.start
        while d <= self.end:
            firsts.append(d)
            d = _add_months(d, 1)
        return firsts

    def dates(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(self.days)]

    def as_dict(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}


def _add_months(d: date, months: int) -> date:
    m0 = d.month - 1 + months
    return date(d.year + m0 // 12, m0 % 12 + 1, 1)


def resolve(start: date | None, end: date | None, today: date, max_days: int) -> Period:
    """The range asked for; each bound defaults so that the range is the last 30 days up to
    today (a missing start is 29 days before the end, a missing end is today or start + 29)."""
    if end is None:
        end = min(today, start + timedelta(days=DEFAULT_DAYS - 1)) if start else today
    if start is None:
        start = end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise BadRangeError(start=start.isoformat(), end=end.isoformat())
    period = Period(start, end)
    if period.days > max_days:
        raise BadRangeError(f"范围最多{max_days}天 / A range spans at most {max_days} days")
    return period


def week_start(d: date) -> date:
    return d - timedelta(days=d.weekday())


def month_start(d: date) -> date:
    return d.replace(day=1)
