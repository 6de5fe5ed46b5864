"""Walking a group chain: the steps (tiers) in order, and the models within each tier.

The steps come from ``Resolver.plan_chain`` (``echelon_down``: the entry group's tiers from the
referenced one down, then each fallback group; ``task_group_switch``: the entry tier, then
straight to the fallback groups; fallback groups given by the caller or the workflow node
replace the group's own list).

The entry group's fallback governs the whole request: ``max_attempts`` caps the upstream calls
over every step; ``retry_delay`` spaces them (see ``attempt``). Each step makes at most its
tier's attempt budget of calls (``Echelon.attempt_budget()``: each model once plus
``max_retries`` retries, the retries cycling through the models; a node's
``task_config.max_retries`` replaces the tier's). Fallback first, retries last: a first pass
calls each distinct model of each step once; only if calls remain does a second pass spend
the retries of each step. Skips (open circuit, cannot serve, limit refusals, Retry-After) do
not count. Within a step the model order follows the strategy of the group the step belongs
to:

- ``echelon_down`` / ``task_group_switch``: the declared order;
- ``model_rotate``: the declared order, starting at a model that advances by one for each
  request that reaches the tier (a counter per tier);
- ``provider_failover``: the declared order, but once an attempt of this request has failed,
  the next model is one whose provider (``provider_key``) has not failed in this request yet,
  when there is one among the models least tried in this step.

A session's pinned instance is tried first (phase ``pinned``); if it fails the chain is walked
from its first step as usual, with the pinned attempt counted in its own step.

Last-resort steps (``fallback_config.last_resort``) are walked the same way with circuits
ignored, when the chain ends without success and calls are left.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .attempt import attempt
from .steps import FAILED, NEXT, SERVED, SKIP_MODEL, SKIP_TIER, STOP, Step

if TYPE_CHECKING:
    from .plans import TierPlan
    from .run import Run

__all__ = ["try_pinned", "walk_chain"]


class _Step:
    """What one step of the chain has done so far in this request (kept across passes)."""

    __slots__ = ("counts", "excluded", "finished", "made", "start")

    def __init__(self, start: int) -> None:
        self.start = start
        self.counts: list[int] | None = None
        self.excluded: list[bool] | None = None
        self.made = 0
        self.finished = False

    def tables(self, n: int) -> tuple[list[int], list[bool]]:
        if self.counts is None or self.excluded is None:
            self.counts, self.excluded = [0] * n, [False] * n
        return self.counts, self.excluded

    def seeded(self, n: int, model: int, step: Step) -> None:
        """Count a pinned attempt already made on this step's ``model``."""
        counts, excluded = self.tables(n)
        if step is FAILED:
            counts[model] = 1
            self.made = 1
        else:
            excluded[model] = True

    def open(self, budget: int) -> bool:
        """May this step make another call?"""
        return not self.finished and self.made < budget


async def walk_chain(
    run: Run,
    chain: tuple[TierPlan, ...],
    phase: str,
    seed: tuple[int, int, Step] | None = None,
    bypass: bool = False,
) -> Step:
    """Walk ``chain``; returns SERVED, STOP (deadline, max_attempts, rejected) or NEXT.

    Fallback first, retries last: the first pass gives every step one call per distinct
    model (within its budget), so a failing tier never uses up ``max_attempts`` while a later
    tier could serve; a second pass spends what is left of each step's budget (its
    ``max_retries``), step by step, while calls remain.

    ``seed`` is (step, model index, step result) of a pinned attempt already made: it counts
    in that step (a failure uses one call of its budget; a skip excludes the model).
    """
    steps: list[_Step | None] = [None] * len(chain)
    for second in (False, True):
        for position, tier in enumerate(chain):
            if run.calls >= run.max_attempts:
                run.stop_reason = "max_attempts"
                return STOP
            step = steps[position]
            if step is None:  # created when the request first reaches the tier (model_rotate)
                rotor = tier.rotor
                step = steps[position] = _Step(
                    rotor.next() % len(tier.models) if rotor is not None else 0)
                if seed is not None and seed[0] == position:
                    step.seeded(len(tier.models), seed[1], seed[2])
            limit = tier.budget if second else tier.first_pass
            if step.finished or step.made >= limit:
                continue
            run.enter(tier)
            result = await _walk_tier(run, tier, phase, bypass, step, limit)
            if result is not NEXT:
                return result
        if not any(s is not None and s.open(t.budget)
                   for s, t in zip(steps, chain, strict=True)):
            break
    return NEXT


async def try_pinned(run: Run, chain: tuple[TierPlan, ...], pinned: tuple[int, int]) -> Step:
    """Try a session's pinned chain instance first; returns the attempt's result."""
    step, index = pinned
    tier = chain[step]
    run.enter(tier)
    return await attempt(run, tier.models[index], "pinned")


async def _walk_tier(
    run: Run, tier: TierPlan, phase: str, bypass: bool, step: _Step, limit: int
) -> Step:
    models = tier.models
    n = len(models)
    failover = tier.strategy == "provider_failover"
    while step.made < limit:
        if run.calls >= run.max_attempts:
            run.stop_reason = "max_attempts"
            return STOP
        if step.counts is None and not (failover and run.failed_providers):
            index = step.start
        else:
            counts, excluded = step.tables(n)
            index = _pick(tier, step.start, counts, excluded,
                          run.failed_providers if failover else None)
            if index < 0:
                step.finished = True
                return NEXT
        result = await attempt(run, models[index], phase, None, bypass)
        if result is SERVED or result is STOP:
            return result
        if result is SKIP_TIER:
            step.finished = True
            return NEXT
        counts, excluded = step.tables(n)
        if result is SKIP_MODEL:
            excluded[index] = True
            continue
        counts[index] += 1
        step.made += 1
    return NEXT


def _pick(
    tier: TierPlan,
    start: int,
    counts: list[int],
    excluded: list[bool],
    failed: set[str] | None,
) -> int:
    """The next model: least tried in this step first, in order from ``start``; with
    ``failed`` (provider_failover), a provider that has not failed yet when possible."""
    n = len(counts)
    best, best_count, fresh = -1, 0, -1
    models = tier.models
    for k in range(n):
        index = (start + k) % n
        if excluded[index]:
            continue
        count = counts[index]
        if best < 0 or count < best_count:
            best, best_count = index, count
            fresh = -1
            if failed and models[index].provider_key not in failed:
                fresh = index
        elif count == best_count and fresh < 0 and failed and (
            models[index].provider_key not in failed
        ):
            fresh = index
    return fresh if fresh >= 0 else best
