"""Pool instance health: passive, fed by real calls and by the active probes.

Each pool instance counts consecutive failures (those that count against a circuit breaker,
see ``classify``; a failed active probe counts too, see ``probes``). At the pool's
``failure_threshold`` it leaves the rotation for ``recovery_time``; a 401/403 takes it out at
once. Only time brings it back: once ``recovery_time`` has passed it is back in rotation *on
probation* -- like a half-open circuit, its next real request decides: a success clears it, a
failure takes it out again at once. A successful probe never shortens ``recovery_time`` (a
models listing that answers says nothing about the model's own calls).
"""

from __future__ import annotations

__all__ = ["InstanceHealth"]


class InstanceHealth:
    """Passive health of one pool instance."""

    __slots__ = ("failures", "last_error_class", "out_until", "params", "probation",
                 "recovery_time", "threshold")

    def __init__(self, threshold: int, recovery_time: float) -> None:
        self.threshold = threshold
        self.recovery_time = recovery_time
        self.params = (threshold, recovery_time)
        self.failures = 0
        self.out_until: float | None = None
        self.probation = False
        self.last_error_class: str | None = None

    def in_rotation(self, now: float) -> bool:
        out_until = self.out_until
        if out_until is None:
            return True
        if now >= out_until:
            self.out_until = None
            self.probation = True
            self.failures = self.threshold - 1  # on probation: the next failure takes it out
            return True
        return False

    def success(self) -> None:
        """A real request succeeded on it."""
        self.failures = 0
        self.out_until = None
        self.probation = False

    def failure(self, now: float, error_class: str) -> None:
        self.last_error_class = error_class
        self.failures += 1
        if self.failures >= self.threshold and self.out_until is None:
            self.out_until = now + self.recovery_time
            self.probation = False

    def take_out(self, now: float, error_class: str) -> None:
        self.last_error_class = error_class
        self.failures = max(self.failures + 1, self.threshold)
        self.out_until = now + self.recovery_time
        self.probation = False

    def snapshot(self, now: float) -> dict[str, object]:
        healthy = self.in_rotation(now)
        return {
            "in_rotation": healthy,
            "on_probation": self.probation,
            "consecutive_failures": self.failures,
            "last_error_class": self.last_error_class,
            "out_until": self.out_until,
        }
