"""The `send-notifications` job: dispatch due outbox rows, then deliver due
deliveries, each step in bounded transactions, at most `notify_max_per_run`
items per step and run. Claims are committed before any HTTP call; each result is
committed on its own, so a crash loses at most one lease's worth of work
(re-claimed when the lease expires) and never sends a message twice while a
lease holds."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

import httpx

from carepoints.config import get_settings
from carepoints.kit.db import write_tx
from carepoints.kit.time import utc_now
from carepoints.notifications import channels, dispatch, sending


def dispatch_outbox(now: datetime, budget: int) -> Counter[str]:
    settings = get_settings()
    counts: Counter[str] = Counter()
    while budget > 0:
        with write_tx() as session:
            done = dispatch.dispatch(session.connection(), settings, now, min(settings.notify_batch_size, budget))
        n = sum(done.values())
        counts.update(done)
        budget -= n
        if n == 0:
            break
    return counts


def _claim_size() -> int:
    # every claimed delivery must be sent before the lease runs out, even at the timeout each
    settings = get_settings()
    per_lease = int(settings.notify_lease_seconds / (2 * settings.notify_http_timeout_seconds))
    return max(1, min(settings.notify_batch_size, per_lease))


def deliver(now: datetime, budget: int, client: httpx.Client | None = None) -> Counter[str]:
    """Send due deliveries until none is due or `budget` is spent; counts by new status."""
    settings = get_settings()
    counts: Counter[str] = Counter()
    own = client is None
    http = client or httpx.Client(timeout=settings.notify_http_timeout_seconds, follow_redirects=False)
    try:
        by_channel = channels.build(settings, http, utc_now)
        while budget > 0:
            with write_tx() as session:
                ready, unsendable = sending.claim(session.connection(), now, min(_claim_size(), budget),
                                                  settings.notify_lease_seconds)
            if not ready and not unsendable:
                break
            budget -= len(ready) + len(unsendable)
            for claimed in ready:
                channel = by_channel.get(claimed.outgoing.channel)
                result = (channel.send(claimed.outgoing) if channel is not None
                          else channels.Result("dead", "channel_unavailable"))
                with write_tx() as session:
                    counts[sending.finish(session.connection(), settings, claimed, result, now)] += 1
            for claimed, result in unsendable:
                with write_tx() as session:
                    counts[sending.finish(session.connection(), settings, claimed, result, now)] += 1
    finally:
        if own:
            http.close()
    return counts


def send_notifications(now: datetime) -> dict[str, Any]:
    """Dispatch then deliver; answers the figures of both steps."""
    budget = get_settings().notify_max_per_run
    dispatched = dispatch_outbox(now, budget)
    delivered = deliver(now, budget)
    return {"outbox": dict(dispatched), "deliveries": dict(delivered)}
