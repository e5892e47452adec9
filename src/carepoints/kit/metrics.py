"""Prometheus metrics (`GET /metrics`): one registry of our own, the metric
objects the code increments, and the gauges computed at scrape time.

Counters and histograms live in the process that serves the request or runs
the job. With `serve --workers N` each worker process has its own, and a
scrape reaches one of them through the shared port: either scrape each
worker, or set `PROMETHEUS_MULTIPROC_DIR` (an empty directory, the same for
every worker, cleared before start) so that prometheus_client keeps the
values in files there and every scrape answers the sum over all workers
(its multiprocess mode; the variable must be set before the process starts).

Gauges of the database (outbox lag, dead letters) are read when scraped,
with one cheap indexed query each; a query that fails leaves its metric out
of that scrape (logged by type only), never an error answer.

The hot path pays a couple of attribute calls per request: `route()` hands
out per-(method, route) objects bound once, with their per-status children
cached, and the ingest counters are incremented once per batch."""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import func, select, text

from carepoints import __version__
from carepoints.config import get_settings
from carepoints.kit.db import get_engine, table
from carepoints.kit.errors import PermissionDeniedError
from carepoints.kit.outbox import OutboxMessage
from carepoints.kit.time import utc_now

log = logging.getLogger("carepoints.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# No `*_created` series: they double the output and no dashboard reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]
REGISTRY = CollectorRegistry()

# Request latency buckets (seconds): ingest answers in about a millisecond, pages and reports in tens.
_HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_JOB_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)

HTTP_REQUESTS = Counter("carepoints_http_requests", "HTTP requests answered, by route template and status",
                        ["method", "route", "status"], registry=REGISTRY)
HTTP_DURATION = Histogram("carepoints_http_request_duration_seconds",
                          "Time from the request's arrival to the end of its answer",
                          ["method", "route"], buckets=_HTTP_BUCKETS, registry=REGISTRY)
EVENTS = Counter("carepoints_events_ingested", "Behaviour events ingested, by outcome "
                 "(accepted, duplicate = a replay of an accepted event, rejected = an error answer)",
                 ["outcome"], registry=REGISTRY)
AWARDS = Counter("carepoints_awards", "Awards (earnings) posted by accepted events", registry=REGISTRY)
POINTS = Counter("carepoints_points_awarded", "Points earned through awards of accepted events",
                 registry=REGISTRY)
PENALTIES = Counter("carepoints_penalties", "Penalties (negative awards) posted by accepted events",
                    registry=REGISTRY)
POINTS_DEDUCTED = Counter("carepoints_points_deducted", "Points deducted by penalties of accepted events",
                          registry=REGISTRY)
JOB_RUNS = Counter("carepoints_job_runs", "Periodic job runs, by status (done, failed, "
                   "skipped = another process had this instance)", ["job", "status"], registry=REGISTRY)
JOB_DURATION = Histogram("carepoints_job_duration_seconds", "Duration of periodic job runs", ["job"],
                         buckets=_JOB_BUCKETS, registry=REGISTRY)

_ACCEPTED = EVENTS.labels("accepted")
_DUPLICATE = EVENTS.labels("duplicate")
_REJECTED = EVENTS.labels("rejected")

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER = "other"  # the route label of requests no route matched (never the raw path)


class RouteMetrics:
    """The metric children of one (method, route): bound once, so recording a request
    is a dict lookup, an increment and an observation."""

    __slots__ = ("_counts", "duration", "method", "route")

    def __init__(self, method: str, route: str) -> None:
        self.method, self.route = method, route
        self.duration = HTTP_DURATION.labels(method, route)
        self._counts: dict[int, Any] = {}

    def record(self, status: int, seconds: float) -> None:
        child = self._counts.get(status)
        if child is None:
            child = self._counts[status] = HTTP_REQUESTS.labels(self.method, self.route, str(status))
        child.inc()
        self.duration.observe(seconds)


_routes: dict[tuple[str, str], RouteMetrics] = {}


def route(method: str, template: str) -> RouteMetrics:
    """The bound metrics of a route template (unknown methods share the label "other")."""
    key = (method, template)
    probe = _routes.get(key)
    if probe is None:
        probe = _routes[key] = RouteMetrics(method if method in _METHODS else OTHER, template)
    return probe


def count_events(results: Iterable[object]) -> None:
    """Count one ingested batch: each result is an outcome dict or the item's error."""
    accepted = duplicate = rejected = awards = points = penalties = deducted = 0
    for result in results:
        if not isinstance(result, dict):
            rejected += 1
        elif result.get("duplicate"):
            duplicate += 1
        else:
            accepted += 1
            for award in result.get("awards") or ():
                value = award.get("points", 0)
                if value > 0:
                    awards, points = awards + 1, points + value
                elif value < 0:
                    penalties, deducted = penalties + 1, deducted - value
    for counter, amount in ((_ACCEPTED, accepted), (_DUPLICATE, duplicate), (_REJECTED, rejected),
                            (AWARDS, awards), (POINTS, points), (PENALTIES, penalties),
                            (POINTS_DEDUCTED, deducted)):
        if amount:
            counter.inc(amount)


def job_finished(job: str, status: str, seconds: float | None) -> None:
    JOB_RUNS.labels(job, status).inc()
    if seconds is not None:
        JOB_DURATION.labels(job).observe(seconds)


# --- scrape-time gauges ---------------------------------------------------------------

class DatabaseCollector:
    """Outbox lag and dead letters, read from the database at scrape time, and
    `carepoints_info`. Each query stands alone: one that fails drops its metrics only."""

    def describe(self) -> list[Metric]:
        return []  # nothing to check at registration (and no query before the first scrape)

    def collect(self) -> Iterator[Metric]:
        yield self._info()
        for probe in (self._outbox, self._dead_letters):
            try:
                yield from probe()
            except Exception as exc:  # a metric left out is better than a failed scrape
                log.warning("metrics: %s unavailable (%s)", probe.__name__.lstrip("_"), type(exc).__name__)

    @staticmethod
    def _info() -> Metric:
        info = GaugeMetricFamily("carepoints_info", "carepoints build and database kind",
                                 labels=["version", "database"])
        info.add_metric([__version__, "sqlite" if get_settings().is_sqlite else "postgresql"], 1)
        return info

    @staticmethod
    def _outbox() -> Iterator[Metric]:
        outbox = table(OutboxMessage)
        with get_engine().connect() as conn:
            _short_statements(conn)
            count, oldest = conn.execute(select(func.count(), func.min(outbox.c.created_at))
                                         .where(outbox.c.status == "pending")).one()
        pending = GaugeMetricFamily("carepoints_outbox_pending", "Outbox messages not yet dispatched")
        pending.add_metric([], float(count or 0))
        lag = GaugeMetricFamily("carepoints_outbox_oldest_pending_seconds",
                                "Age of the oldest outbox message not yet dispatched (0 when none)")
        lag.add_metric([], _age(oldest))
        yield pending
        yield lag

    @staticmethod
    def _dead_letters() -> Iterator[Metric]:
        with get_engine().connect() as conn:
            _short_statements(conn)
            rows = conn.execute(text("SELECT status, count(*) FROM notification_deliveries "
                                     "WHERE status IN ('pending', 'dead') GROUP BY status")).all()
        counts = {str(r[0]): int(r[1]) for r in rows}
        dead = GaugeMetricFamily("carepoints_notification_dead_letters",
                                 "External deliveries (SMS, WeChat, webhooks) given up on: status dead")
        dead.add_metric([], float(counts.get("dead", 0)))
        waiting = GaugeMetricFamily("carepoints_notification_deliveries_pending",
                                    "External deliveries waiting for their (next) attempt")
        waiting.add_metric([], float(counts.get("pending", 0)))
        yield dead
        yield waiting


def _short_statements(conn: Any) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SET LOCAL statement_timeout = 2000"))


def _age(oldest: datetime | None) -> float:
    if oldest is None:
        return 0.0
    return max(0.0, (utc_now() - oldest).total_seconds())


_DB = DatabaseCollector()
REGISTRY.register(_DB)


def exposition() -> bytes:
    """The text exposition of every metric (all worker processes' sum in multiprocess mode)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        registry.register(_DB)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


# --- the address allow-list -----------------------------------------------------------

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_allow(spec: str) -> tuple[Network, ...]:
    """Comma-separated CIDRs (or single addresses); empty = everyone. Raises ValueError."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in spec.split(",") if part.strip())


def allowed(client: str | None, networks: Sequence[Network]) -> bool:
    if not networks:
        return True
    try:
        address = ipaddress.ip_address(client or "")
    except ValueError:
        return False  # not an address (a unix socket, a test client): not on any list
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in net for net in networks)


class MetricsForbiddenError(PermissionDeniedError):
    code = "metrics.forbidden"
    message = "不允许从此地址读取指标 / Metrics are not available from this address"
