"""Today's live figures, computed once and shared by a process's requests for a short while.

A dashboard asks for today's cells many times at once (the index page's cards and charts, each
view with the previous period, an export); each ask would compute the day from the base tables.
`shared` keeps each of today's computations for `analytics_live_seconds` (default 60; 0: every
read transaction computes its own), per database and key, and lets one request compute while
the others asking for the same key wait for its answer. The cached figure of today is then at
most that old; closed days always come from the roll-ups. Within one read transaction a key is
computed at most once either way (`session.info`). Values are shared: callers never mutate them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from sqlalchemy.orm import Session

from carepoints.config import get_settings

T = TypeVar("T")

_lock = threading.Lock()
_values: dict[tuple[Hashable, ...], tuple[float, datetime, Any]] = {}  # key -> (monotonic, computed at, value)
_flights: dict[tuple[Hashable, ...], threading.Lock] = {}


def _fresh(key: tuple[Hashable, ...], ttl: float) -> tuple[datetime, Any] | None:
    hit = _values.get(key)
    if hit is None or time.monotonic() - hit[0] >= ttl:
        return None
    return hit[1], hit[2]


def shared(session: Session, key: tuple[Hashable, ...], compute: Callable[[], T]) -> T:
    """The value of `compute()` for `key` (which names today's date): from this read
    transaction, else from this process within `analytics_live_seconds`, else computed now."""
    if key in session.info:
        return cast(T, session.info[key][1])
    ttl = get_settings().analytics_live_seconds
    if ttl <= 0:
        value = compute()
        session.info[key] = (datetime.now(UTC), value)
        return value
    full = (str(session.get_bind().engine.url), *key)
    hit = _shared(full, ttl, compute)
    session.info[key] = hit
    return cast(T, hit[1])


def _shared(full: tuple[Hashable, ...], ttl: float, compute: Callable[[], Any]) -> tuple[datetime, Any]:
    with _lock:
        hit = _fresh(full, ttl)
        flight = _flights.setdefault(full, threading.Lock())
    if hit is not None:
        return hit
    with flight:  # one request computes; the others asking meanwhile take its answer
        with _lock:
            hit = _fresh(full, ttl)
        if hit is None:
            hit = (datetime.now(UTC), compute())
            with _lock:
                now = time.monotonic()
                for k in [k for k, v in _values.items() if now - v[0] >= ttl]:
                    del _values[k]
                    _flights.pop(k, None)
                _values[full] = (now, *hit)
    return hit


def computed_at(session: Session) -> datetime | None:
    """When the oldest of today's figures this read transaction used was computed (None: none)."""
    ats = [v[0] for k, v in session.info.items() if isinstance(k, tuple) and k[:1] == ("analytics.live",)]
    return min(ats) if ats else None


def forget() -> None:
    """Drop every shared figure (tests; a programme change that re-reads history)."""
    with _lock:
        _values.clear()
        _flights.clear()
