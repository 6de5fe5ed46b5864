"""The routing engine's own cost per request, with an instant fake provider.

Run: ``python -m bench.engine_bench [--requests 100000] [--profile] [--uvloop]``

Not a test: it measures, it asserts nothing. Each scenario serves ``--requests`` requests
one after another on one core (``SystemClock``, ``time.perf_counter``) through a config with
everything switched on: a two-tier group with circuit breakers, tier ``rpm_limit`` and
``concurrency_limit``, ``concurrency_control`` at the group, echelon and model levels, and a
global rate limit (all generous enough never to refuse). The provider answers at once, so
the time is the engine's own (plus one ``await`` of the provider coroutine, reported as the
baseline and subtracted in ``net``).

Scenarios:

- ``first_try``  -- served by the first model of the first tier (the common case);
- ``open_skip``  -- the first tier's only model has an open circuit: skipped, served by tier 2;
- ``failover``   -- the first model answers 503 every time (breaker threshold never reached):
                    one failed call, then served by the second model;
- ``pool``       -- a round-robin polling pool over the group's instances;
- ``session``    -- multi-turn requests pinned to their instance (1,000 sessions).

Target (issue 3): the engine adds under 50 µs per request.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import random
import time
from collections.abc import Callable
from typing import Any

from echelon_sidecar.config import EchelonConfig
from echelon_sidecar.engine import (
    AttemptSettings,
    Engine,
    EngineRequest,
    Instance,
    SystemClock,
    UpstreamError,
)

BIG = 10_000_000

CONFIG: dict[str, Any] = {
    "models": {
        "oa-1": {"provider": "openai", "model": "gpt-4o"},
        "oa-2": {"provider": "openai", "model": "gpt-4o-mini"},
        "an-1": {"provider": "anthropic", "model": "claude-sonnet"},
        "sick": {"provider": "openai", "model": "down"},
    },
    "task_groups": {
        "bench": {
            "echelon1": {"models": ["oa-1", "oa-2"], "priority": 1, "rpm_limit": BIG,
                         "concurrency_limit": 10_000, "timeout": 30},
            "echelon2": {"models": ["an-1"], "priority": 2, "rpm_limit": BIG,
                         "concurrency_limit": 10_000},
            "fallback_config": {"max_attempts": 3, "retry_delay": 0,
                                "circuit_breaker": {"failure_threshold": 5,
                                                    "recovery_time": 30}},
        },
        "flaky": {
            "echelon1": {"models": ["sick", "oa-1"], "rpm_limit": BIG},
            "fallback_config": {"retry_delay": 0,
                                "circuit_breaker": {"failure_threshold": 10_000}},
        },
        "gated": {
            "echelon1": {"models": ["sick"], "priority": 1},
            "echelon2": {"models": ["an-1"], "priority": 2, "rpm_limit": BIG},
            "fallback_config": {"retry_delay": 0,
                                "circuit_breaker": {"failure_threshold": 1,
                                                    "recovery_time": 86_400}},
        },
    },
    "polling_pools": {"bench_pool": {"task_groups": ["bench"], "max_instance_attempts": 2}},
    "concurrency_control": {"levels": {
        "group": {"limit": 10_000, "queue_size": 100},
        "echelon": {"limit": 10_000, "queue_size": 100},
        "model": {"limit": 10_000, "queue_size": 100},
    }},
    "rate_limiting": {"algorithm": "token_bucket", "bucket_size": BIG, "refill_rate": 1_000_000},
}


class InstantProvider:
    """Answers at once; ``sick`` always answers 503."""

    __slots__ = ()

    async def call(self, instance: Instance, request: EngineRequest,
                   settings: AttemptSettings) -> Any:
        if instance.model_id == "sick":
            raise UpstreamError(503, None, "down")
        return "ok"

    async def probe(self, instance: Instance) -> None:
        return None


async def _measure(count: int, step: Callable[[int], Any]) -> float:
    """Seconds per step. Yields to the loop every 100 steps, as a server's loop would run
    between requests (an instant provider never suspends, so without it the loop could not
    even clean up the cancelled timeout timers)."""
    start = time.perf_counter()
    for i in range(count):
        await step(i)
        if i % 100 == 99:
            await asyncio.sleep(0)
    return (time.perf_counter() - start) / count


async def run(count: int, profile: bool) -> list[tuple[str, float]]:
    provider = InstantProvider()
    engine = Engine(EchelonConfig.model_validate(CONFIG), provider, clock=SystemClock(),
                    rng=random.Random(1))
    instance = Instance("oa-1", engine.config.models["oa-1"])
    requests = {
        "first_try": EngineRequest(engine.resolve("bench"), payload={}),
        "open_skip": EngineRequest(engine.resolve("gated"), payload={}),
        "failover": EngineRequest(engine.resolve("flaky"), payload={}),
        "pool": EngineRequest(engine.resolve("bench_pool"), payload={}),
    }
    await engine.call(requests["open_skip"])  # opens the circuit of `sick` in `gated`
    sessions = [EngineRequest(engine.resolve("bench_pool"), payload={}, session_id=f"s{i}")
                for i in range(1000)]
    settings = AttemptSettings("bench", "echelon1", "oa-1", instance.entry, "gpt-4o", 30.0,
                               None, None, None, None, 4096)

    async def baseline(i: int) -> Any:
        return await provider.call(instance, requests["first_try"], settings)

    def scenario(request: EngineRequest) -> Callable[[int], Any]:
        async def step(i: int) -> Any:
            return await engine.call(request)
        return step

    async def session_step(i: int) -> Any:
        return await engine.call(sessions[i % 1000])

    steps: list[tuple[str, Callable[[int], Any]]] = [
        ("baseline (await provider.call)", baseline),
        *((name, scenario(request)) for name, request in requests.items()),
        ("session", session_step),
    ]
    for _, step in steps:  # warm up
        await _measure(min(count, 2000), step)
    results = []
    profiler = cProfile.Profile() if profile else None
    for name, step in steps:
        if profiler is not None and name == "first_try":
            profiler.enable()
        results.append((name, await _measure(count, step)))
        if profiler is not None and name == "first_try":
            profiler.disable()
    if profiler is not None:
        print("\nprofile of first_try (cumulative, top 25):")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100_000, help="requests per scenario")
    parser.add_argument("--profile", action="store_true", help="cProfile the first_try run")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop")
    args = parser.parse_args()
    if args.uvloop:
        import uvloop

        results = uvloop.run(run(args.requests, args.profile))
    else:
        results = asyncio.run(run(args.requests, args.profile))
    base = results[0][1]
    loop = "uvloop" if args.uvloop else "asyncio"
    print(f"\nengine cost per request ({args.requests:,} sequential requests, one core, {loop})")
    print(f"{'scenario':34} {'µs/request':>11} {'net µs':>8} {'requests/s':>12}")
    for name, seconds in results:
        net = seconds - base if name != results[0][0] else seconds
        print(f"{name:34} {seconds * 1e6:11.2f} {net * 1e6:8.2f} {1 / seconds:12,.0f}")
    print("\ntarget: the engine adds under 50 µs per request")


if __name__ == "__main__":
    main()
