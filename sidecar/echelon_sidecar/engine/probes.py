"""The active health check of a pool (``health_check_interval``).

:func:`check_pool` calls ``provider.probe(instance)`` for every instance of the pool
concurrently, each bounded by its tier's timeout on the injected clock. A failed probe counts
as a failure of the instance's health (enough of them take it out of rotation); a successful
one changes nothing: it never puts an instance back before its ``recovery_time`` (see
``health``). A probe that raises ``InstanceCannotServe`` changes nothing either.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from .clock import AttemptTimedOut, Clock, attempt_timeout
from .errors import InstanceCannotServe, UpstreamError

if TYPE_CHECKING:
    from .plans import InstancePoolPlan
    from .provider import Provider

__all__ = ["check_pool"]


async def check_pool(pool: InstancePoolPlan, provider: Provider, clock: Clock) -> dict[str, bool]:
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
        return label, health.in_rotation(clock.now())

    results = await asyncio.gather(*(
        asyncio.ensure_future(probe_one(i)) for i in range(len(pool.instances))
    ))
    return dict(results)
