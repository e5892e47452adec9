"""In-process rate limits: a token bucket per string key.

A bucket holds up to `limit` tokens and refills at `limit` per minute, so a
caller may burst `limit` requests and then goes on at the steady rate; the
request that finds the bucket empty is refused with 429 `rate.limited` and a
`Retry-After` of the seconds until a token is back.

The state lives in the process (one dict lookup and a little arithmetic per
check, under a lock because sync endpoints run in a thread pool): with
`serve --workers N` each worker counts on its own, so a client can reach up
to N × the limit. Memory is bounded: at most `max_keys` buckets are kept, the
least recently used going first (a forgotten bucket starts full again, the
lenient direction). Limits that must hold across processes (one-time codes per
phone) are counted in the database by their own domain instead."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict

from carepoints.kit.errors import AppError


class RateLimitedError(AppError):
    code = "rate.limited"
    status_code = 429
    message = "请求过于频繁,请 {retry_after} 秒后重试 / Too many requests; retry in {retry_after} s"

    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after=retry_after)
        self.retry_after = retry_after

    @property
    def response_headers(self) -> dict[str, str]:
        """Extra headers of the error response (kit.web.error_response adds them)."""
        return {"Retry-After": str(self.retry_after)}


class RateLimiter:
    """Token buckets by key; `check` refuses, `hit` answers. Thread-safe."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key → (tokens, at)
        self._lock = threading.Lock()

    def hit(self, key: str, per_minute: int, now: float | None = None) -> int | None:
        """Take one token from `key`'s bucket (capacity and refill `per_minute`): None when
        allowed, else the whole seconds to wait (≥ 1). `per_minute` < 1 means no limit."""
        if per_minute < 1:
            return None
        at = time.monotonic() if now is None else now
        rate = per_minute / 60.0
        with self._lock:
            state = self._buckets.get(key)
            if state is None:
                tokens = float(per_minute)
                if len(self._buckets) >= self.max_keys:
                    self._buckets.popitem(last=False)
            else:
                tokens = min(float(per_minute), state[0] + max(0.0, at - state[1]) * rate)
                self._buckets.move_to_end(key)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, at)
                return None
            self._buckets[key] = (tokens, at)
        return max(1, math.ceil((1.0 - tokens) / rate))

    def check(self, key: str, per_minute: int | None, now: float | None = None) -> None:
        """Raise RateLimitedError (429, Retry-After) when `key` is over `per_minute`; None = no limit."""
        if per_minute is None:
            return
        wait = self.hit(key, per_minute, now)
        if wait is not None:
            raise RateLimitedError(wait)

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()

    def __len__(self) -> int:
        return len(self._buckets)


# The process's limiter for keys that are unique by construction (API key ids, patient
# ids): one shared table, namespaced by a prefix ("key:", "book:", …).
limiter = RateLimiter()
