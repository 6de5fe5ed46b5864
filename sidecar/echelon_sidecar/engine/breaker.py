"""Circuit breaker per (group, model id), configured by the group's effective ``circuit_breaker``.

States and transitions (each one is delivered to ``on_transition(key, old, new, at)``)::

    closed --failure_threshold consecutive counted failures--> open
    open   --open period elapsed (checked lazily, at the next look)--> half_open
    half_open --all half_open_requests probes succeeded--> closed   (reopen count resets)
    half_open --any probe failed--> open  (next open period: CircuitBreaker.open_period(n+1))
    any    --401/403 ("broken")--> open   (the longest period: max_recovery_time or 10 x
                                           recovery_time)

- Open: :meth:`admit` refuses without a call (the engine records ``circuit_open`` and skips
  the instance without counting an attempt).
- Half-open: exactly ``half_open_requests`` probes are admitted, concurrently; everyone else
  sees the circuit as open. A probe that ends without a verdict (cancelled, skipped by a local
  limit, the request rejected as invalid) gives its probe place back.
- Only failures that count (see ``classify``) are recorded; a success resets the count of
  consecutive failures. Results of calls admitted before the circuit opened (and of
  last-resort calls made while it is open) do not move an open or half-open circuit.

``admit`` returns a ticket: ``REFUSED`` (-1), ``NORMAL`` (0) for a call in the closed state,
or the half-open episode number (> 0) for a probe; results are reported with that ticket.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

from ..config import CircuitBreaker

__all__ = ["BYPASS", "NORMAL", "REFUSED", "Breaker", "BreakerKey", "BreakerState"]

BreakerKey = tuple[str, str]
"""(group, model id)."""

REFUSED = -1
NORMAL = 0
BYPASS = 0
"""The ticket of a last-resort call made regardless of the circuit (same as NORMAL)."""


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


TransitionListener = Callable[[BreakerKey, BreakerState, BreakerState, float], None]

_CLOSED, _OPEN, _HALF = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


class Breaker:
    """The circuit of one model instance in one group."""

    __slots__ = (
        "_episode",
        "config",
        "failures",
        "key",
        "last_error_class",
        "on_transition",
        "open_since",
        "open_until",
        "probes_admitted",
        "probes_ok",
        "reopen_count",
        "state",
    )

    def __init__(
        self,
        key: BreakerKey,
        config: CircuitBreaker,
        on_transition: TransitionListener | None = None,
    ) -> None:
        self.key = key
        self.config = config
        self.on_transition = on_transition
        self.state = _CLOSED
        self.failures = 0
        self.reopen_count = 0
        self.open_since: float | None = None
        self.open_until: float | None = None
        self.probes_admitted = 0
        self.probes_ok = 0
        self.last_error_class: str | None = None
        self._episode = 0

    # -- looking ---------------------------------------------------------------------------------

    def available(self, now: float) -> bool:
        """Would :meth:`admit` let a call through now? (Does not admit.)"""
        state = self.state
        if state is _CLOSED:
            return True
        if state is _OPEN:
            return now >= self.open_until  # type: ignore[operator]
        return self.probes_admitted < self.config.half_open_requests

    def current(self, now: float) -> BreakerState:
        """The state at ``now`` (an elapsed open period turns half-open here)."""
        if self.state is _OPEN and now >= self.open_until:  # type: ignore[operator]
            self._half_open(now)
        return self.state

    # -- admitting -------------------------------------------------------------------------------

    def admit(self, now: float) -> int:
        state = self.state
        if state is _CLOSED:
            return NORMAL
        if state is _OPEN:
            if now < self.open_until:  # type: ignore[operator]
                return REFUSED
            self._half_open(now)
        if self.probes_admitted >= self.config.half_open_requests:
            return REFUSED
        self.probes_admitted += 1
        return self._episode

    def release(self, ticket: int) -> None:
        """The admitted call ended without a verdict: give its probe place back."""
        if ticket > 0 and ticket == self._episode and self.state is _HALF:
            self.probes_admitted -= 1

    # -- verdicts --------------------------------------------------------------------------------

    def success(self, ticket: int, now: float) -> None:
        state = self.state
        if state is _CLOSED:
            self.failures = 0
            return
        if ticket > 0 and ticket == self._episode and state is _HALF:
            self.probes_ok += 1
            if self.probes_ok >= self.config.half_open_requests:
                self.failures = 0
                self.reopen_count = 0
                self.open_since = self.open_until = None
                self._move(_CLOSED, now)

    def failure(self, ticket: int, now: float, error_class: str) -> None:
        self.last_error_class = error_class
        state = self.state
        if state is _CLOSED:
            self.failures += 1
            if self.failures >= self.config.failure_threshold:
                self._open(now, self.config.open_period(self.reopen_count))
            return
        if ticket > 0 and ticket == self._episode and state is _HALF:
            self.failures += 1
            config = self.config
            # stop counting once the period is capped (open_period's power would overflow)
            if config.open_period(self.reopen_count) < _cap(config):
                self.reopen_count += 1
            self._open(now, config.open_period(self.reopen_count))

    def broken(self, now: float, error_class: str) -> None:
        """401/403: the instance cannot work as configured; open for the longest period."""
        self.last_error_class = error_class
        self.failures += 1
        self._open(now, _cap(self.config))

    # -- internals -------------------------------------------------------------------------------

    def _open(self, now: float, period: float) -> None:
        self.open_since = now
        self.open_until = now + period
        self.probes_admitted = self.probes_ok = 0
        if self.state is not _OPEN:
            self._move(_OPEN, now)

    def _half_open(self, now: float) -> None:
        self._episode += 1
        self.probes_admitted = self.probes_ok = 0
        self._move(_HALF, now)

    def _move(self, new: BreakerState, now: float) -> None:
        old, self.state = self.state, new
        if self.on_transition is not None:
            self.on_transition(self.key, old, new, now)

    def snapshot(self, now: float) -> dict[str, object]:
        state = self.current(now)
        return {
            "group": self.key[0],
            "model": self.key[1],
            "state": state.value,
            "consecutive_failures": self.failures,
            "last_error_class": self.last_error_class,
            "reopen_count": self.reopen_count,
            "open_since": self.open_since,
            "open_until": self.open_until,
            "retry_in": None
            if self.open_until is None or state is not _OPEN
            else round(max(0.0, self.open_until - now), 3),
            "probes_in_flight": self.probes_admitted - self.probes_ok if state is _HALF else 0,
        }


def _cap(config: CircuitBreaker) -> float:
    """The longest open period: ``max_recovery_time``, default 10 x ``recovery_time``."""
    return config.max_recovery_time or config.recovery_time * 10
