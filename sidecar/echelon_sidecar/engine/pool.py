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
  is not picked again by it (one waiting out a Retry-After may be called by ``waits`` later);
  a tier-level limit refusal skips every instance of that tier.
- Both strategies stop after ``max_instance_attempts`` calls (and the route's overall cap).

Each attempt uses the tier of its triple: its timeout, limits and request settings, and the
circuit breaker of (group, model), which is consulted and fed like in a chain. Pool health is
fed by the same failures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .attempt import attempt
from .steps import FAILED, NEXT, SERVED, SKIP_TIER, STOP, SkipKind, Step

if TYPE_CHECKING:
    from .plans import InstancePoolPlan
    from .run import Run

__all__ = ["walk_pool"]


async def walk_pool(run: Run, pool: InstancePoolPlan, first: int = -1) -> Step:
    """Serve from ``pool``; returns SERVED, STOP (deadline, cap, rejected) or NEXT (exhausted).

    ``first`` is a session's pinned instance (tried first, without rotation), or -1."""
    instances = pool.instances
    health = pool.health
    clock = run.env.clock
    excluded = [False] * len(instances)
    tried = [False] * len(instances)
    made, last = 0, -1
    retry_same = pool.fallback_strategy == "simple_retry"
    current = first
    phase = "pinned" if first >= 0 else "pool"
    while made < pool.max_instance_attempts:
        if run.calls >= run.max_attempts:
            run.stop_reason = "max_attempts"
            return STOP
        now = clock.now()
        if current >= 0 and not health[current].in_rotation(now):
            run.skip(instances[current], phase, now, "out_of_rotation", SkipKind.OPEN)
            excluded[current] = True
            current = -1
        if current < 0:
            current = _next(pool, now, excluded, tried, last)
            if current < 0:
                return NEXT
            phase = "pool"
        inst = instances[current]
        run.enter(inst)
        result = await attempt(run, inst, phase, health[current])
        if result is SERVED or result is STOP:
            return result
        if result is FAILED:
            made += 1
            tried[current] = True
            last = current
            if retry_same:
                continue
        elif result is SKIP_TIER:
            _exclude_tier(pool, excluded, current)
        else:
            excluded[current] = True
        current = -1
    return NEXT


def _exclude_tier(pool: InstancePoolPlan, excluded: list[bool], index: int) -> None:
    tier = pool.instances[index].tier_plan
    for other, inst in enumerate(pool.instances):
        if inst.tier_plan is tier:
            excluded[other] = True


def _next(
    pool: InstancePoolPlan, now: float, excluded: list[bool], tried: list[bool], last: int
) -> int:
    health = pool.health
    instances = pool.instances

    def untried(index: int) -> bool:
        return (
            not excluded[index]
            and not tried[index]
            and health[index].in_rotation(now)
            and instances[index].breaker.available(now)
        )

    index = pool.rotation.pick(untried)
    if index >= 0:
        return index
    if last < 0:
        return _any_in_rotation(pool, now, excluded)

    def not_last(index: int) -> bool:
        return index != last and not excluded[index] and health[index].in_rotation(now)

    index = pool.rotation.pick(not_last)
    if index >= 0:
        return index
    if not excluded[last] and health[last].in_rotation(now):
        return last
    return -1


def _any_in_rotation(pool: InstancePoolPlan, now: float, excluded: list[bool]) -> int:
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
