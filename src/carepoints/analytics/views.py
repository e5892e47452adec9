"""The registry of analytics views. A view is a read-only function of a `Query` answering a
`Report`; `GET /api/v1/analytics/{name}` serves each as JSON, CSV or Excel, the dashboard
pages render them, and `bench/analytics.py` times every one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy.orm import Session

from carepoints.analytics import live, periods
from carepoints.analytics.dims import BREAKDOWNS
from carepoints.analytics.errors import BadBreakdownError, UnknownParameterError, UnknownViewError
from carepoints.analytics.periods import Period
from carepoints.analytics.report import Report
from carepoints.config import get_settings
from carepoints.kit.time import local_date


@dataclass(frozen=True, slots=True)
class Query:
    """What a view is asked: the period (resolved, with defaults), an optional breakdown,
    filters on the shared dimensions and the view's own parameters (strings, validated by
    the view)."""

    period: Period
    today: date
    by: str | None = None
    filters: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    # the institutions the caller reaches (a key or staff user bound to some); None = the whole
    # alliance. Views restrict every figure to these.
    institutions: frozenset[str] | None = None


# the filters every view accepts (each view applies those its data has)
FILTERS: tuple[str, ...] = ("institution_id", "department_id", "clinician_id", "age_band", "condition", "channel")

ViewFn = Callable[[Session, Query, datetime], Report]


@dataclass(frozen=True, slots=True)
class View:
    name: str
    fn: ViewFn
    title_zh: str
    title_en: str
    breakdowns: tuple[str, ...] = ()  # the `by=` values it accepts (none: no breakdown)
    params: tuple[str, ...] = ()  # its own query parameters (besides period, breakdown and filters)
    permission: str = "analytics:read"


VIEWS: dict[str, View] = {}


def view(name: str, title_zh: str, title_en: str, *, breakdowns: tuple[str, ...] = (),
         params: tuple[str, ...] = (), permission: str = "analytics:read") -> Callable[[ViewFn], ViewFn]:
    """Register a view under `name` (decorator)."""
    def register(fn: ViewFn) -> ViewFn:
        if name in VIEWS or not set(breakdowns) <= set(BREAKDOWNS):
            raise ValueError(f"view {name}: registered twice or an unknown breakdown")
        VIEWS[name] = View(name, fn, title_zh, title_en, breakdowns, params, permission)
        return fn
    return register


def get(name: str) -> View:
    _load()
    found = VIEWS.get(name)
    if found is None:
        raise UnknownViewError(name=name)
    return found


def all_views() -> list[View]:
    _load()
    return list(VIEWS.values())


def query(v: View, now: datetime, *, start: date | None = None, end: date | None = None, by: str | None = None,
          filters: dict[str, str] | None = None, params: dict[str, str] | None = None,
          institutions: frozenset[str] | None = None) -> Query:
    """A checked query for view `v` (defaults: the last 30 days up to today, no breakdown)."""
    settings = get_settings()
    today = local_date(now, settings.tz)
    if by is not None and by not in v.breakdowns:
        raise BadBreakdownError(by=by)
    unknown = sorted(set(filters or {}) - set(FILTERS)) + sorted(set(params or {}) - set(v.params))
    if unknown:
        raise UnknownParameterError(name=unknown[0])
    return Query(periods.resolve(start, end, today, settings.analytics_max_range_days), today, by,
                 dict(filters or {}), dict(params or {}), institutions)


def run(session: Session, name: str, now: datetime, **kwargs: object) -> Report:
    """View `name` for the query of `kwargs`; a report that used today's live figures says
    when they were computed (`live_at`: at most `analytics_live_seconds` before `now`)."""
    v = get(name)
    report = v.fn(session, query(v, now, **kwargs), now)  # type: ignore[arg-type]
    at = live.computed_at(session)
    if at is not None:
        report.extra["live_at"] = at.isoformat()
    return report


def _load() -> None:
    """Import the modules that register views (once)."""
    from carepoints.analytics import catalogue  # noqa: F401
