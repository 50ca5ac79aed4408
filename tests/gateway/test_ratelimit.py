"""Token buckets: burst, refill, per-key isolation and the Retry-After figure."""

from __future__ import annotations

import pytest

from gateway_quart import TokenBucketLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refill() -> None:
    clock = Clock()
    limiter = TokenBucketLimiter(rate=2.0, burst=3, clock=clock)
    assert [limiter.acquire("a") for _ in range(3)] == [0, 0, 0]
    assert limiter.acquire("a") == 1  # half a second to the next token rounds up to 1 s
    assert limiter.acquire("b") == 0  # another key has its own bucket
    clock.now = 0.5
    assert limiter.acquire("a") == 0
    assert limiter.acquire("a") == 1


def test_retry_after_reflects_the_rate() -> None:
    clock = Clock()
    limiter = TokenBucketLimiter(rate=0.1, burst=1, clock=clock)
    assert limiter.acquire("k") == 0
    assert limiter.acquire("k") == 10
    clock.now = 9.0
    assert limiter.acquire("k") == 1
    clock.now = 10.0
    assert limiter.acquire("k") == 0


def test_bucket_count_is_bounded() -> None:
    limiter = TokenBucketLimiter(rate=1.0, burst=1, max_keys=10, clock=Clock())
    for key in range(100):
        limiter.acquire(key)
    assert limiter.statistics() == {"buckets": 10}


def test_invalid_parameters() -> None:
    with pytest.raises(ValueError, match="rate"):
        TokenBucketLimiter(rate=0, burst=1)


def test_the_least_recently_used_bucket_is_forgotten_first() -> None:
    limiter = TokenBucketLimiter(rate=0.001, burst=1, max_keys=2, clock=Clock())
    assert [limiter.acquire(key) for key in ("a", "b")] == [0, 0]
    assert limiter.acquire("a") > 0  # "a" is empty and now the most recently used
    assert limiter.acquire("c") == 0  # evicts "b", not "a"
    assert limiter.acquire("a") > 0
    assert limiter.acquire("b") == 0  # forgotten: restarts full


def test_zero_keys_keeps_no_bucket() -> None:
    limiter = TokenBucketLimiter(rate=0.001, burst=1, max_keys=0, clock=Clock())
    assert [limiter.acquire("a") for _ in range(3)] == [0, 0, 0]
    assert limiter.statistics() == {"buckets": 0}
