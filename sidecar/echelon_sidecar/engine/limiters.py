"""Request-rate limiters: token bucket and exact sliding window. They never wait.

- :class:`TokenBucket` holds up to ``bucket_size`` tokens, refilled continuously at
  ``refill_rate`` per second; a request takes one token.
- :class:`SlidingWindow` keeps the times of the requests it admitted: it admits a request at
  ``now`` only if fewer than ``max_requests`` were admitted in ``(now - window_size, now]``,
  so no half-open window ``[t, t + window_size)`` ever holds more than ``max_requests``.
  A tier's ``rpm_limit`` is ``SlidingWindow(60, rpm)``.

``try_acquire(now)`` answers at once; ``retry_after(now)`` is how long until it would say yes.
Budgets are cluster-wide and each sidecar enforces its share (:func:`shared_rate`): integer
budgets with ``config.share()`` (at least 1), the refill rate divided as a float.
"""

from __future__ import annotations

from collections import deque
from typing import Protocol

from ..config import RateLimiting, SlidingWindowSpec, TokenBucketSpec, share

__all__ = ["RateLimiter", "SlidingWindow", "TokenBucket", "rpm_window", "shared_rate"]


class RateLimiter(Protocol):
    params: tuple[object, ...]

    def try_acquire(self, now: float) -> bool: ...

    def refund(self, now: float) -> None: ...

    def retry_after(self, now: float) -> float: ...

    def snapshot(self, now: float) -> dict[str, object]: ...


class TokenBucket:
    """Bursts of up to ``bucket_size`` requests, then ``refill_rate`` requests per second."""

    __slots__ = ("_stamp", "_tokens", "bucket_size", "params", "refill_rate")

    def __init__(self, bucket_size: float, refill_rate: float, now: float | None = None) -> None:
        if bucket_size < 1 or refill_rate <= 0:
            raise ValueError("a token bucket needs bucket_size >= 1 and refill_rate > 0")
        self.bucket_size = float(bucket_size)
        self.refill_rate = float(refill_rate)
        self.params: tuple[object, ...] = ("token_bucket", self.bucket_size, self.refill_rate)
        self._tokens = self.bucket_size
        self._stamp = now

    def _refill(self, now: float) -> float:
        stamp = self._stamp
        if stamp is None or now <= stamp:
            if stamp is None:
                self._stamp = now
            return self._tokens
        tokens = min(self.bucket_size, self._tokens + (now - stamp) * self.refill_rate)
        self._tokens = tokens
        self._stamp = now
        return tokens

    def try_acquire(self, now: float) -> bool:
        if self._refill(now) >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def refund(self, now: float) -> None:
        """Give back the token of a request that was admitted but not sent."""
        self._tokens = min(self.bucket_size, self._refill(now) + 1.0)

    def retry_after(self, now: float) -> float:
        tokens = self._refill(now)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.refill_rate

    def snapshot(self, now: float) -> dict[str, object]:
        return {
            "algorithm": "token_bucket",
            "bucket_size": self.bucket_size,
            "refill_rate": self.refill_rate,
            "available": round(self._refill(now), 3),
        }


class SlidingWindow:
    """At most ``max_requests`` in any ``window_size`` seconds (exact: a log of admissions)."""

    __slots__ = ("_log", "max_requests", "params", "window_size")

    def __init__(self, window_size: float, max_requests: int) -> None:
        if window_size <= 0 or max_requests < 1:
            raise ValueError("a sliding window needs window_size > 0 and max_requests >= 1")
        self.window_size = float(window_size)
        self.max_requests = int(max_requests)
        self.params: tuple[object, ...] = ("sliding_window", self.window_size, self.max_requests)
        self._log: deque[float] = deque()

    def _expire(self, now: float) -> deque[float]:
        log = self._log
        horizon = now - self.window_size
        while log and log[0] <= horizon:
            log.popleft()
        return log

    def try_acquire(self, now: float) -> bool:
        log = self._expire(now)
        if len(log) < self.max_requests:
            log.append(now)
            return True
        return False

    def refund(self, now: float) -> None:
        """Forget the latest admission (a request that was admitted but not sent)."""
        if self._log:
            self._log.pop()

    def retry_after(self, now: float) -> float:
        log = self._expire(now)
        if len(log) < self.max_requests:
            return 0.0
        return max(0.0, log[len(log) - self.max_requests] + self.window_size - now)

    def snapshot(self, now: float) -> dict[str, object]:
        return {
            "algorithm": "sliding_window",
            "window_size": self.window_size,
            "max_requests": self.max_requests,
            "in_window": len(self._expire(now)),
        }


def rpm_window(rpm: int, sidecars: int, slot: int | None = None) -> SlidingWindow:
    """A tier's ``rpm_limit`` as this sidecar's share: ``SlidingWindow(60, share(rpm))``."""
    return SlidingWindow(60.0, share(rpm, sidecars, slot))


def shared_rate(rate: RateLimiting, sidecars: int, slot: int | None = None
                ) -> TokenBucket | SlidingWindow:
    """This sidecar's share of a ``rate_limiting`` block (``enabled`` is checked by the caller)."""
    spec = rate.spec()
    if isinstance(spec, TokenBucketSpec):
        return TokenBucket(
            share(spec.bucket_size, sidecars, slot), spec.refill_rate / max(1, sidecars)
        )
    assert isinstance(spec, SlidingWindowSpec)
    return SlidingWindow(spec.window_size, share(spec.max_requests, sidecars, slot))
