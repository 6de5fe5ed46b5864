"""Token bucket, exact sliding window, and the per-sidecar share of rate budgets."""

from __future__ import annotations

import pytest

from echelon_sidecar.config import RateLimiting
from echelon_sidecar.engine import SlidingWindow, TokenBucket
from echelon_sidecar.engine.limiters import rpm_window, shared_rate


def test_token_bucket_allows_a_burst_then_refills_at_its_rate() -> None:
    bucket = TokenBucket(3, 2.0)
    assert [bucket.try_acquire(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.retry_after(0.0) == pytest.approx(0.5)
    assert not bucket.try_acquire(0.4)
    assert bucket.try_acquire(0.5)
    assert not bucket.try_acquire(0.5)
    # never more than bucket_size after a long idle time
    assert [bucket.try_acquire(100.0) for _ in range(4)] == [True, True, True, False]


def test_token_bucket_refund_gives_the_token_back() -> None:
    bucket = TokenBucket(1, 0.001)
    assert bucket.try_acquire(0.0)
    bucket.refund(0.0)
    assert bucket.try_acquire(0.0)


def test_sliding_window_admits_at_most_n_in_any_window() -> None:
    window = SlidingWindow(10.0, 3)
    assert [window.try_acquire(t) for t in (0.0, 1.0, 2.0)] == [True, True, True]
    assert not window.try_acquire(9.99)
    assert window.retry_after(9.99) == pytest.approx(0.01)
    assert window.try_acquire(10.0)  # the request at 0.0 left the window (10 - 10, 10]
    assert not window.try_acquire(10.5)
    assert window.try_acquire(11.0)


def test_sliding_window_is_exact_not_a_fixed_window_approximation() -> None:
    # a fixed-window counter would allow 2 at t=9.5 and 2 more at t=10.5
    window = SlidingWindow(10.0, 2)
    assert window.try_acquire(9.5) and window.try_acquire(9.5)
    assert not window.try_acquire(10.5)
    assert not window.try_acquire(19.25)
    assert window.try_acquire(19.5)


def test_sliding_window_refund_forgets_the_latest_admission() -> None:
    window = SlidingWindow(60.0, 1)
    assert window.try_acquire(0.0)
    window.refund(0.0)
    assert window.try_acquire(1.0)


def test_tier_rpm_is_a_sixty_second_window_shared_by_sidecars() -> None:
    window = rpm_window(100, 4)
    assert (window.window_size, window.max_requests) == (60.0, 25)
    assert rpm_window(3, 10).max_requests == 1  # at least one


def test_rate_limiting_blocks_are_divided_by_sidecars() -> None:
    bucket = shared_rate(RateLimiting(algorithm="token_bucket", bucket_size=100,
                                      refill_rate=10.0), 4)
    assert isinstance(bucket, TokenBucket)
    assert (bucket.bucket_size, bucket.refill_rate) == (25, 2.5)
    window = shared_rate(RateLimiting.model_validate(
        {"algorithm": "sliding_window", "sliding_window": {"window_size": 30,
                                                           "max_requests": 9}}), 2)
    assert isinstance(window, SlidingWindow)
    assert (window.window_size, window.max_requests) == (30.0, 4)


def test_invalid_limiter_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        TokenBucket(0, 1)
    with pytest.raises(ValueError):
        SlidingWindow(0, 1)
