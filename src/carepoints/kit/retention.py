"""Retention periods per kind of record (PIPL: keep personal data no longer than needed).

A domain registers each kind of record it keeps at import (as ingest observers join
`events.service.observe`): a default period in days, an optional minimum the settings may
not go below (the audit log keeps at least 183 days), and `purge(session, cutoff)` that
deletes or redacts at most `BATCH` records older than `cutoff` and answers how many. The
`apply-retention` job runs every kind in transactions of one batch each until a kind has
nothing left, so it is bounded, re-runnable, and a crash loses at most one batch's work.

Periods are set with `CAREPOINTS_RETENTION_DAYS` ("kind=days,kind=days"); a kind without
an entry keeps its default."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from carepoints.kit.db import write_tx

BATCH = 500  # records per purge call (one transaction)
MAX_BATCHES = 10_000  # per kind and run: a runaway purge cannot hold the job forever

Purge = Callable[[Session, datetime], int]
_SPEC = re.compile(r"^\s*([a-z][a-z0-9_.]*)\s*=\s*(\d{1,6})\s*$")


@dataclass(frozen=True, slots=True)
class Kind:
    name: str
    default_days: int
    purge: Purge
    min_days: int = 0
    description: str = ""


_kinds: dict[str, Kind] = {}


def register(kind: str, default_days: int, purge: Purge, *, min_days: int = 0, description: str = "") -> None:
    """Declare a kind of record with its default retention period (registering again replaces it)."""
    if default_days < min_days or min_days < 0:
        raise ValueError(f"retention of {kind}: default {default_days} days is below the minimum {min_days}")
    _kinds[kind] = Kind(kind, default_days, purge, min_days, description)


def kinds() -> list[Kind]:
    return [_kinds[k] for k in sorted(_kinds)]


def parse_days(spec: str) -> dict[str, int]:
    """`kind=days,kind=days` → {kind: days}; raises ValueError naming the bad part."""
    out: dict[str, int] = {}
    for part in spec.split(","):
        if not part.strip():
            continue
        m = _SPEC.match(part)
        if m is None:
            raise ValueError(f"retention_days: {part.strip()!r} is not kind=days")
        out[m.group(1)] = int(m.group(2))
    return out


def periods(spec: str) -> dict[str, int]:
    """Days per registered kind: the setting, else the default, never below the minimum."""
    wanted = parse_days(spec)
    return {k.name: max(k.min_days, wanted.get(k.name, k.default_days)) for k in kinds()}


def apply(now: datetime, spec: str = "") -> dict[str, Any]:
    """Run every registered kind's purge up to `now`; answers per kind the period, the
    cutoff and how many records went, plus setting entries that name no registered kind."""
    days = periods(spec)
    report: dict[str, Any] = {}
    for kind in kinds():
        cutoff = now - timedelta(days=days[kind.name])
        total = 0
        for _ in range(MAX_BATCHES):
            with write_tx() as session:
                n = kind.purge(session, cutoff)
            total += n
            if n == 0:
                break
        report[kind.name] = {"days": days[kind.name], "cutoff": cutoff.isoformat(), "purged": total}
    unknown = sorted(set(parse_days(spec)) - set(days))
    return {"kinds": report, "unknown": unknown} if unknown else {"kinds": report}
