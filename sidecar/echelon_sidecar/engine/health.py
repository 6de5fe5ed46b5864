"""Pool instance health, and the optional active health check.

Passive: each pool instance counts consecutive failures (those that count against a circuit
breaker, see ``classify``). At the pool's ``failure_threshold`` it leaves the rotation until
``recovery_time`` has passed; then it is back in, and a single further failure takes it out
again (a success resets the count). A 401/403 takes it out at once.

Active (``health_check_interval``): :func:`check_pool` calls ``provider.probe(instance)`` for
every instance of the pool concurrently, each bounded by its tier's timeout on the injected
clock. A failed probe counts as a failure; a successful one puts an out-of-rotation instance
back and resets its count. A probe that raises ``InstanceCannotServe`` changes nothing.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from .clock import AttemptTimedOut, Clock, attempt_timeout
from .errors import InstanceCannotServe, UpstreamError

if TYPE_CHECKING:
    from .plans import PoolPlan
    from .provider import Provider

__all__ = ["InstanceHealth", "check_pool"]


class InstanceHealth:
    """Passive health of one pool instance."""

    __slots__ = ("failures", "last_error_class", "out_until", "params", "recovery_time",
                 "threshold")

    def __init__(self, threshold: int, recovery_time: float) -> None:
        self.threshold = threshold
        self.recovery_time = recovery_time
        self.params = (threshold, recovery_time)
        self.failures = 0
        self.out_until: float | None = None
        self.last_error_class: str | None = None

    def in_rotation(self, now: float) -> bool:
        out_until = self.out_until
        if out_until is None:
            return True
        if now >= out_until:
            self.out_until = None
            self.failures = self.threshold - 1  # back in: the next failure takes it out again
            return True
        return False

    def success(self) -> None:
        self.failures = 0
        self.out_until = None

    def failure(self, now: float, error_class: str) -> None:
        self.last_error_class = error_class
        self.failures += 1
        if self.failures >= self.threshold and self.out_until is None:
            self.out_until = now + self.recovery_time

    def take_out(self, now: float, error_class: str) -> None:
        self.last_error_class = error_class
        self.failures = max(self.failures + 1, self.threshold)
        self.out_until = now + self.recovery_time

    def snapshot(self, now: float) -> dict[str, object]:
        healthy = self.in_rotation(now)
        return {
            "in_rotation": healthy,
            "consecutive_failures": self.failures,
            "last_error_class": self.last_error_class,
            "out_until": self.out_until,
        }


async def check_pool(pool: PoolPlan, provider: Provider, clock: Clock) -> dict[str, bool]:
    """Probe every instance of ``pool`` once; returns ``"group.tier/model" -> healthy``."""

    async def probe_one(index: int) -> tuple[str, bool]:
        inst = pool.instances[index]
        health = pool.health[index]
        label = f"{inst.group}.{inst.tier}/{inst.model}"
        if inst.instance is None:
            return label, False
        try:
            await attempt_timeout(clock, inst.tier_plan.timeout, provider.probe(inst.instance))
        except InstanceCannotServe:
            return label, health.in_rotation(clock.now())
        except Exception as exc:  # any failure of the probe means unhealthy
            if isinstance(exc, UpstreamError):
                error_class = exc.error_class
            elif isinstance(exc, AttemptTimedOut):
                error_class = "timeout"
            else:
                error_class = "probe_failed"
            health.failure(clock.now(), error_class)
            return label, False
        health.success()
        return label, True

    results = await asyncio.gather(*(
        asyncio.ensure_future(probe_one(i)) for i in range(len(pool.instances))
    ))
    return dict(results)
