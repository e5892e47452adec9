"""The in-process token bucket (kit.ratelimit), without a database: bursts, refill,
Retry-After, independence of keys, bounded memory, thread safety and the 429 response."""

from __future__ import annotations

import threading

import orjson
import pytest

from carepoints.kit.ratelimit import RateLimitedError, RateLimiter
from carepoints.kit.web import error_response


def test_a_bucket_allows_its_burst_then_refuses_with_the_wait() -> None:
    lim = RateLimiter()
    assert [lim.hit("k", 3, now=100.0) for _ in range(3)] == [None, None, None]
    assert lim.hit("k", 3, now=100.0) == 20  # one token back every 60 / 3 s
    assert lim.hit("k", 3, now=110.0) == 10
    assert lim.hit("k", 3, now=120.0) is None
    assert lim.hit("k", 3, now=120.0) == 20
    # a long pause refills to the burst, never beyond it
    assert [lim.hit("k", 3, now=10_000.0) for _ in range(4)] == [None, None, None, 20]


def test_the_wait_is_a_whole_second_at_least() -> None:
    lim = RateLimiter()
    for _ in range(6000):
        lim.hit("fast", 6000, now=1.0)
    assert lim.hit("fast", 6000, now=1.0) == 1


def test_keys_are_independent_and_zero_means_no_limit() -> None:
    lim = RateLimiter()
    assert lim.hit("a", 1, now=0.0) is None
    assert lim.hit("a", 1, now=0.0) == 60
    assert lim.hit("b", 1, now=0.0) is None
    assert all(lim.hit("c", 0, now=0.0) is None for _ in range(100))
    lim.check("d", None)  # no limit set: nothing counted
    assert len(lim) == 2


def test_check_raises_429_with_retry_after() -> None:
    lim = RateLimiter()
    lim.check("k", 2, now=0.0)
    lim.check("k", 2, now=0.0)
    with pytest.raises(RateLimitedError) as caught:
        lim.check("k", 2, now=0.0)
    err = caught.value
    assert err.retry_after == 30
    response = error_response(err)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "30"
    body = orjson.loads(response.body)
    assert body["error"] == "rate.limited"
    assert "30" in body["detail"]
    assert " / " in body["detail"]  # Chinese / English


def test_memory_is_bounded_and_the_least_recently_used_bucket_goes() -> None:
    lim = RateLimiter(max_keys=3)
    for key in ("a", "b", "c"):
        lim.hit(key, 1, now=0.0)
    lim.hit("a", 1, now=0.0)  # a is used again (refused), b is now the oldest
    lim.hit("d", 1, now=0.0)
    assert len(lim) == 3
    assert lim.hit("a", 1, now=0.0) is not None  # still remembered: still empty
    assert lim.hit("b", 1, now=0.0) is None  # forgotten: starts full again
    for i in range(1000):
        lim.hit(f"k{i}", 5, now=0.0)
    assert len(lim) == 3
    lim.reset()
    assert len(lim) == 0


def test_concurrent_hits_never_exceed_the_bucket() -> None:
    lim = RateLimiter()
    allowed: list[int] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        allowed.append(sum(1 for _ in range(200) if lim.hit("shared", 500, now=5.0) is None))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sum(allowed) == 500
