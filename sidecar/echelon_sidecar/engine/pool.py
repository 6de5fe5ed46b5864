"""Serving a request from a polling pool.

A pool's instances are the (group, tier, model) triples of its ``task_groups`` references (a
whole group contributes every tier), deduplicated, in order. The pool's ``rate_limiting`` is
checked once per request at the entry (see ``serve``).

- The first instance comes from the rotation (``round_robin``, ``least_recently_used``,
  ``weighted``) among the instances in rotation (see ``health``) -- or, for a multi-turn
  request, the session's pinned instance (no rotation).
- After a failed call, ``instance_rotation`` takes the next instance from the rotation: one
  not yet tried by this request if any, else any but the one that just failed, else that one;
  ``simple_retry`` calls the same instance again (the rotation is used only when it has left
  the rotation or its circuit opened).
- An instance skipped for this request (open circuit, limit refusal, cannot serve, Retry-After)
  is not picked again by it; a tier-level limit refusal skips every instance of that tier.
- Both strategies stop after ``max_instance_attempts`` calls (and the route's overall cap).

Each attempt uses the tier of its triple: its timeout, limits and request settings, and the
circuit breaker of (group, model), which is consulted and fed like in a chain. Pool health is
fed by the same failures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .chain import NEXT
from .run import _OPEN, FAILED, OK, SKIP_MODEL, SKIP_TIER, STOP, Run

if TYPE_CHECKING:
    from .plans import PoolPlan

__all__ = ["walk_pool"]


async def walk_pool(run: Run, pool: PoolPlan, first: int = -1) -> int:
    """Serve from ``pool``; returns OK, STOP (deadline, cap, rejected) or NEXT (exhausted)."""
    instances = pool.instances
    health = pool.health
    n = len(instances)
    clock = run.env.clock
    excluded = [False] * n
    tried = [False] * n
    cap = pool.max_instance_attempts
    retry_same = pool.fallback_strategy == "simple_retry"
    made = 0
    last = -1
    current = first
    phase = "pinned" if first >= 0 else "pool"
    while made < cap:
        if run.calls >= run.max_attempts:
            run.stop_reason = "max_attempts"
            return STOP
        now = clock.now()
        if current >= 0 and not health[current].in_rotation(now):
            run.skip(instances[current], phase, now, "out_of_rotation", _OPEN)
            excluded[current] = True
            current = -1
        if current < 0:
            current = _next(pool, now, excluded, tried, last)
            if current < 0:
                return NEXT
            phase = "pool"
        inst = instances[current]
        run.enter(inst)
        code = await run.attempt(inst, phase, health[current])
        if code in (OK, STOP):
            return code
        if code == SKIP_TIER:
            tier = inst.tier_plan
            for index in range(n):
                if instances[index].tier_plan is tier:
                    excluded[index] = True
            current = -1
            continue
        if code == SKIP_MODEL:
            excluded[current] = True
            current = -1
            continue
        assert code == FAILED
        made += 1
        tried[current] = True
        last = current
        if not retry_same:
            current = -1
    return NEXT


def _next(pool: PoolPlan, now: float, excluded: list[bool], tried: list[bool], last: int) -> int:
    health = pool.health
    breakers = [inst.breaker for inst in pool.instances]

    def untried(index: int) -> bool:
        return (
            not excluded[index]
            and not tried[index]
            and health[index].in_rotation(now)
            and breakers[index].available(now)
        )

    index = pool.rotation.pick(untried)
    if index >= 0 or last < 0:
        if index < 0:
            return _any_in_rotation(pool, now, excluded)
        return index

    def not_last(index: int) -> bool:
        return index != last and not excluded[index] and health[index].in_rotation(now)

    index = pool.rotation.pick(not_last)
    if index >= 0:
        return index
    if not excluded[last] and health[last].in_rotation(now):
        return last
    return -1


def _any_in_rotation(pool: PoolPlan, now: float, excluded: list[bool]) -> int:
    """Nothing is both in rotation and closed: pick one in rotation anyway, so that its open
    circuit is recorded in the trail (and a request that finds every circuit open fails
    fast with AllCircuitsOpen)."""
    health = pool.health
    for index in range(len(pool.instances)):
        if not excluded[index] and health[index].in_rotation(now):
            return index
    for index in range(len(pool.instances)):
        if not excluded[index]:
            return index
    return -1
