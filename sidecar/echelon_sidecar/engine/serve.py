"""``async with engine.serve(request) as outcome``: run a route until an attempt succeeds.

On enter, in order:

1. a deadline already past ends the request (``ChainExhausted``);
2. the global ``rate_limiting`` (one token per request) -- refused: ``LimitRefused``;
3. the node slot, then the entry group's slot (``concurrency_control`` levels ``node`` and
   ``group``; held for the whole request; waiting in their queues until the deadline at most)
   -- refused: ``LimitRefused``;
4. a multi-turn request's pinned instance (see ``sessions``) is tried first;
5. the pool phase (pool and node-with-pool targets): the pool's ``rate_limiting`` is checked
   once (a refusal is ``LimitRefused`` for a pool target, and moves a node on to its fallback
   groups), then instances are served as described in ``pool``;
6. the chain (group and node targets; for a node with a pool, the steps its pool did not
   cover: its fallback groups);
7. the last-resort steps, ignoring circuits, if the chain ended without success and calls
   are left.

The first success returns its :class:`Outcome`; ``outcome.result`` is the provider's result.
The serving attempt's tier and model slots, and the request's node and group slots, stay
held until the block exits. An exception leaving the block counts as a failure of the serving
instance (its circuit breaker and pool health are fed; the trail's serving attempt becomes
``failed_after_commit``); ``CancelledError`` releases everything without penalty. The
session is (re-)pinned to the serving instance when the block exits cleanly.

When nothing served the request, the error raised carries the outcome and its trail:
``RequestRejected`` (the upstream refused the request itself), ``LimitRefused`` (nothing was
called and a limit refused), ``AllCircuitsOpen`` (nothing was called and every instance was
open), else ``ChainExhausted``.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING

from .breaker import NORMAL
from .chain import NEXT, try_pinned, walk_chain
from .classify import short_message
from .concurrency import Admission
from .errors import (
    AllCircuitsOpen,
    ChainExhausted,
    LimitRefused,
    RequestRejected,
    UpstreamError,
)
from .outcome import Outcome
from .pool import walk_pool
from .run import OK, STOP, Env, Run

if TYPE_CHECKING:
    from ..errors import RoutingError
    from .concurrency import ConcurrencyLimit
    from .plans import Route
    from .request import EngineRequest

__all__ = ["Serving"]


class Serving:
    """The async context manager returned by ``engine.serve(request)``."""

    __slots__ = ("_env", "_request", "_run", "_session")

    def __init__(self, env: Env, request: EngineRequest) -> None:
        self._env = env
        self._request = request
        self._run: Run | None = None
        self._session: str | None = None

    async def __aenter__(self) -> Outcome:
        request = self._request
        route = request.target.route
        if request.fallback_groups is not None:
            route = route.plans.with_fallback_groups(route, request.fallback_groups)
        env = self._env
        run = Run(env, request, route, env.clock.now())
        self._run = run
        try:
            await self._serve(run, route)
        except BaseException as exc:
            run.release_all()
            _close(run)
            if isinstance(exc, Exception) and env.listeners.active:
                env.listeners.outcome(run.outcome)
            raise
        return run.outcome

    def pin_as(self, key: str) -> None:
        """Pin the serving instance under the session ``key`` when the block exits cleanly
        (the server learns a first turn's conversation key only from the reply)."""
        self._session = key

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        run = self._run
        if run is None:
            return
        self._run = None
        env = self._env
        outcome = run.outcome
        inst = run.serving
        try:
            if exc is None:
                if self._session is not None and inst is not None:
                    run.route.sessions.put(self._session, inst.key, env.clock.now())
            elif isinstance(exc, Exception) and inst is not None:
                now = env.clock.now()
                if isinstance(exc, UpstreamError):
                    error_class, status = exc.error_class, exc.status
                    message = exc.message or str(exc)
                else:
                    error_class, status = "stream_broken", None
                    message = f"{type(exc).__name__}: {exc}"
                inst.breaker.failure(NORMAL, now, error_class)
                if run.serving_health is not None:
                    run.serving_health.failure(now, error_class)
                attempt = outcome.serving_attempt
                if attempt is not None:
                    attempt.result = "error"
                    attempt.reason = "failed_after_commit"
                    attempt.error_class = error_class
                    attempt.status = status
                    attempt.message = short_message(message)
                    attempt.duration = now - attempt.start
                outcome.failed_after_commit = True
                outcome.stop_reason = "failed_after_commit"
        finally:
            run.release_all()
            _close(run)
            if env.listeners.active and (exc is None or isinstance(exc, Exception)):
                env.listeners.outcome(outcome)

    async def _serve(self, run: Run, route: Route) -> None:
        clock = self._env.clock
        now = run.outcome.started
        deadline = run.deadline
        if deadline is not None and now >= deadline:
            run.stop_reason = "deadline"
            raise _failure(run)
        rate = route.plans.global_rate
        if rate is not None and not rate.try_acquire(now):
            _refuse(run, "global", "global", rate.retry_after(now), "the global rate limit")
        try:
            await _hold(run, route.node_slots, "node", route.node_name or "")
            await _hold(run, route.group_slots, "group", route.group_name or "")
        except LimitRefused:
            if rate is not None:
                rate.refund(clock.now())
            raise
        session = self._request.session_key()
        pool = route.pool
        first, pinned = -1, None
        if session is not None:
            self._session = session
            pin = route.sessions.get(session, now)
            if pin is not None:
                if pool is not None and pin in pool.index:
                    first = pool.index[pin]
                else:
                    pinned = route.chain_index.get(pin)
        seed = None
        if pinned is not None:
            code = await try_pinned(run, route.chain, pinned)
            if code == OK:
                return
            if code == STOP:
                raise _failure(run)
            seed = (pinned[0], pinned[1], code)
        if pool is not None:
            if pool.rate is not None and not pool.rate.try_acquire(clock.now()):
                hint = pool.rate.retry_after(clock.now())
                if route.kind == "pool":
                    _refuse(run, "pool", pool.name, hint, f"pool {pool.name}'s rate limit")
                run.refused("pool", pool.name, hint)
            else:
                code = await walk_pool(run, pool, first)
                if code == OK:
                    return
                if code != NEXT:
                    raise _failure(run)
        if route.chain:
            code = await walk_chain(run, route.chain, "chain", seed)
            if code == OK:
                return
            if code != NEXT:
                raise _failure(run)
        if route.last_resort and run.calls < run.max_attempts:
            code = await walk_chain(run, route.last_resort, "last_resort", None, True)
            if code == OK:
                return
        raise _failure(run)


async def _hold(run: Run, slots: ConcurrencyLimit | None, level: str, key: str) -> None:
    if slots is None:
        return
    if not slots.try_acquire():
        admission = await slots.acquire(run.deadline)
        if admission:
            reason = ("its queue is full" if admission is Admission.QUEUE_FULL
                      else "the deadline passed in its queue")
            _refuse(run, level, key, None, f"the {level} concurrency limit of {key!r} ({reason})")
    run.held.append(slots)


def _refuse(run: Run, level: str, key: str, hint: float | None, what: str) -> None:
    run.refused(level, key, hint)
    run.stop_reason = run.outcome.stop_reason = "limit_refused"
    after = f"; retry in {hint:.3g}s" if hint else ""
    raise LimitRefused(f"{run.outcome.target}: refused by {what}{after}", level, key, hint,
                       run.outcome)


def _failure(run: Run) -> RoutingError:
    outcome = run.outcome
    outcome.attempt_count = run.calls
    target = outcome.target
    trail = outcome.trail()
    tail = f"\n{trail}" if trail else ""
    if run.rejection is not None:
        exc = run.rejection
        outcome.stop_reason = "rejected"
        text = exc.message or exc.error_class
        return RequestRejected(
            f"{target}: the upstream rejected the request (HTTP {exc.status}): "
            f"{short_message(text)}{tail}", exc.status, exc.body, outcome)
    if run.stop_reason == "deadline":
        outcome.stop_reason = "deadline"
        return ChainExhausted(f"{target}: the request's deadline passed after "
                              f"{run.calls} attempt(s){tail}", outcome)
    open_, _, other = run.skipped
    if run.calls == 0 and run.limit_level is not None:
        outcome.stop_reason = "limit_refused"
        hint = run.limit_hint
        after = f"; retry in {hint:.3g}s" if hint else ""
        return LimitRefused(f"{target}: every instance was refused by a limit{after}{tail}",
                            run.limit_level, run.limit_key or "", hint, outcome)
    if run.calls == 0 and open_ and not other:
        outcome.stop_reason = "all_circuits_open"
        return AllCircuitsOpen(f"{target}: every instance's circuit is open; nothing was "
                               f"called{tail}", outcome)
    if run.stop_reason == "max_attempts" or run.calls >= run.max_attempts:
        outcome.stop_reason = "max_attempts"
        cap = "max_instance_attempts" if run.route.kind == "pool" else "max_attempts"
        return ChainExhausted(f"{target}: all {run.calls} attempt(s) allowed by {cap} "
                              f"failed{tail}", outcome)
    outcome.stop_reason = "exhausted"
    return ChainExhausted(f"{target}: every instance of the chain failed or was "
                          f"skipped ({run.calls} call(s)){tail}", outcome)


def _close(run: Run) -> None:
    outcome = run.outcome
    outcome.attempt_count = run.calls
    outcome.duration = run.env.clock.now() - outcome.started

