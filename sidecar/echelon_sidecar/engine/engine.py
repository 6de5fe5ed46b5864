"""The routing engine's public face: :class:`Engine`.

::

    engine = Engine(loaded_config, provider, clock=SystemClock(), rng=random.Random())
    target = engine.resolve("plan_group.echelon1", node=None)
    request = EngineRequest(target, payload=body, session_id=..., deadline=clock.now() + 30)
    async with engine.serve(request) as outcome:   # raises a RoutingError subclass
        relay(outcome.result)                      # slots are held until the block exits
    outcome = await engine.call(request)           # the same, for non-streaming use

``reload(config)`` swaps the plans atomically: requests in flight finish on the objects they
hold; breaker, limiter, concurrency, rotation, health and session state is kept wherever its
parameters did not change (see ``registry``). ``status()`` reports it all as JSON-able data.
``run_health_checks()`` is the long-running active health check of the pools that set
``health_check_interval`` (the server runs it as a background task).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterable
from typing import Any

from ..config import EchelonConfig, LoadedConfig
from .clock import Clock, SystemClock
from .events import EngineListener, Listeners
from .outcome import Outcome
from .planner import PlanSet
from .probes import check_pool
from .provider import Provider
from .request import EngineRequest
from .run import Env
from .serve import Serving
from .status import build_status
from .targets import RouteTable, Target

__all__ = ["Engine"]

_log = logging.getLogger(__name__)


class Engine:
    """Routes requests over a config's groups, pools and nodes through a :class:`Provider`."""

    def __init__(
        self,
        config: LoadedConfig | EchelonConfig,
        provider: Provider,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        listeners: Iterable[EngineListener] = (),
    ) -> None:
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.rng = rng if rng is not None else random.Random()
        self.provider = provider
        self.listeners = Listeners(tuple(listeners))
        self._env = Env(self.clock, self.rng, provider, self.listeners)
        self._plans = _build(config, self.clock, self.listeners, None)
        self._routes = RouteTable(self._plans)
        self._wake: asyncio.Future[None] | None = None

    # -- config ----------------------------------------------------------------------------------

    @property
    def config(self) -> EchelonConfig:
        return self._plans.config

    @property
    def token_budgets(self) -> bool:
        """Does the config set any ``tpm_limit``? (Then requests carry a token estimate.)"""
        return self._plans.token_budgets

    @property
    def version(self) -> str:
        return self._plans.version

    def reload(self, config: LoadedConfig | EchelonConfig) -> None:
        """Serve ``config`` from now on (see the module docstring for what is kept)."""
        plans = _build(config, self.clock, self.listeners, self._plans)
        self._plans, self._routes = plans, RouteTable(plans)
        _log.info("routing engine: config %s loaded", plans.version)
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    def add_listener(self, listener: EngineListener) -> None:
        self.listeners.add(listener)

    def remove_listener(self, listener: EngineListener) -> None:
        self.listeners.remove(listener)

    # -- serving ---------------------------------------------------------------------------------

    def resolve(self, model: str, node: str | None = None) -> Target:
        """The target ``model`` names (node, then pool, then group reference).

        Raises UnknownTarget (with a few close names) when it names nothing, or when ``node``
        names no workflow node.
        """
        return self._routes.resolve(model, node)

    def serve(self, request: EngineRequest) -> Serving:
        """``async with engine.serve(request) as outcome:`` (see ``serve``)."""
        return Serving(self._env, request)

    async def call(self, request: EngineRequest) -> Outcome:
        """Serve ``request`` and release at once; ``outcome.result`` is the provider's result."""
        async with Serving(self._env, request) as outcome:
            return outcome

    # -- observing -------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return build_status(self._plans, self.clock.now())

    # -- active health checks --------------------------------------------------------------------

    async def health_check_once(self, pool: str) -> dict[str, bool]:
        """Probe every instance of ``pool`` once; returns ``"group.tier/model" -> healthy``."""
        plans = self._plans
        name = plans.resolver.pool_name(pool)
        if name is None:
            raise KeyError(f"no polling pool {pool!r}")
        route = plans.pool_routes[name]
        assert route.pool is not None
        return await check_pool(route.pool, self.provider, self.clock)

    async def run_health_checks(self) -> None:
        """Probe each pool every ``health_check_interval`` seconds, forever (cancel to stop).

        The first check of a pool happens one interval after it appears; a reload re-reads
        the intervals.
        """
        clock = self.clock
        due: dict[str, tuple[float, float]] = {}  # pool -> (interval, next due time)
        while True:
            plans = self._plans
            now = clock.now()
            wanted: dict[str, tuple[float, float]] = {}
            for name, route in plans.pool_routes.items():
                interval = route.pool.spec.health_check_interval if route.pool else None
                if interval is None:
                    continue
                known = due.get(name)
                wanted[name] = known if known and known[0] == interval else (
                    interval, now + interval)
            due = wanted
            for name, (interval, when) in list(due.items()):
                if when <= now:
                    pool = plans.pool_routes[name].pool
                    assert pool is not None
                    try:
                        await check_pool(pool, self.provider, clock)
                    except Exception:
                        _log.warning("health check of pool %s failed", name, exc_info=True)
                    due[name] = (interval, max(when + interval, clock.now()))
            wake_at = min((when for _, when in due.values()), default=None)
            await self._sleep_until(wake_at)

    async def _sleep_until(self, when: float | None) -> None:
        wake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._wake = wake

        def ring() -> None:
            if not wake.done():
                wake.set_result(None)

        handle = self.clock.call_at(when, ring) if when is not None else None
        try:
            await wake
        finally:
            if handle is not None:
                handle.cancel()
            self._wake = None


def _build(
    config: LoadedConfig | EchelonConfig, clock: Clock, listeners: Listeners,
    previous: PlanSet | None,
) -> PlanSet:
    loaded = config if isinstance(config, LoadedConfig) else LoadedConfig(config, [], {}, [])
    return PlanSet(loaded.config, loaded.version, clock, listeners, previous)
