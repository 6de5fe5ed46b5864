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
   are left;
8. the instances this request skipped because their Retry-After had not passed, soonest
   first, if one may be called before the deadline (see ``waits``).

The first success returns its :class:`Outcome`; ``outcome.result`` is the provider's result.
The serving attempt's tier and model slots, and the request's node and group slots, stay
held until the block exits. An exception leaving the block counts as a failure of the serving
instance (its circuit breaker and pool health are fed; the trail's serving attempt becomes
``failed_after_commit``); ``CancelledError`` releases everything without penalty. The
session is (re-)pinned to the serving instance when the block exits cleanly.

When nothing served the request, the error raised (see ``failure``) carries the outcome and
its trail, and ``retry_after`` when trying again later may help.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING

from .breaker import NORMAL
from .chain import try_pinned, walk_chain
from .classify import short_message
from .concurrency import Admission
from .errors import LimitRefused, UpstreamError
from .failure import failure
from .outcome import Outcome
from .pool import walk_pool
from .run import Env, Run
from .steps import NEXT, SERVED, STOP, Step
from .waits import wait_for_retry_after

if TYPE_CHECKING:
    from .concurrency import ConcurrencyLimit
    from .plans import InstancePoolPlan, Route
    from .request import EngineRequest
    from .tokens import TokenWindow

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
        target = request.target
        route = target.route
        if request.fallback_groups is not None:
            route = target.table.with_fallback_groups(route, request.fallback_groups)
        env = self._env
        run = Run(env, request, route, env.clock.now())
        self._run = run
        self._session = request.session_key()
        try:
            if _admit(run, route):
                await _admit_queued(run, route)
            if await _walk(run, route, self._session) is not SERVED:
                raise failure(run)
        except BaseException as exc:
            self._run = None
            _close(run)
            if isinstance(exc, Exception) and env.listeners.active:
                env.listeners.outcome(run.outcome)
            raise
        return run.outcome

    def report_usage(self, tokens: int) -> None:
        """The tokens the serving call used (input + output), as the provider reported them:
        the request's token reservations settle to it when the block exits."""
        if self._run is not None:
            self._run.usage = tokens

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
        try:
            if exc is None:
                inst = run.serving
                if self._session is not None and inst is not None:
                    run.route.sessions.put(self._session, inst.key, env.clock.now())
            elif isinstance(exc, Exception):
                _failed_after_commit(run, exc, env.clock.now())
        finally:
            _close(run)
            if env.listeners.active and (exc is None or isinstance(exc, Exception)):
                env.listeners.outcome(run.outcome)


def _admit(run: Run, route: Route) -> bool:
    """The request-level checks without waiting: deadline, global rate, free node and group
    slots. True when a slot must be waited for in its queue (``_admit_queued``)."""
    now = run.outcome.started
    deadline = run.deadline
    if deadline is not None and now >= deadline:
        run.stop_reason = "deadline"
        raise failure(run)
    rate = route.global_rate
    if rate is not None and not rate.try_acquire(now):
        _refuse(run, "global", "global", rate.retry_after(now), "the global rate limit")
    if route.global_tpm is not None and not _reserve(run, route, route.global_tpm, now):
        if rate is not None:
            rate.refund(now)
        tokens = run.tokens_for(route.reply_budget)
        _refuse(run, "global", "global", _hint(route.global_tpm, now, tokens),
                "the global tpm_limit")
    for slots in (route.node_slots, route.group_slots):
        if slots is not None:
            if not slots.try_acquire():
                return True
            run.held.append(slots)
    return False


async def _admit_queued(run: Run, route: Route) -> None:
    """Wait for the node and group slots not taken yet; a refusal gives the rate token back."""
    try:
        if route.node_slots is not None and route.node_slots not in run.held:
            await _hold(run, route.node_slots, "node", route.node_name or "")
        if route.group_slots is not None and route.group_slots not in run.held:
            await _hold(run, route.group_slots, "group", route.group_name or "")
    except LimitRefused:
        if route.global_rate is not None:
            route.global_rate.refund(run.env.clock.now())
        raise


async def _walk(run: Run, route: Route, session: str | None) -> Step:
    """The pinned instance, the pool, the chain, the last resort, the Retry-After waits."""
    first, seed = -1, None
    pin = route.sessions.get(session, run.outcome.started) if session is not None else None
    pool = route.pool
    if pin is not None:
        if pool is not None and pin in pool.index:
            first = pool.index[pin]
        elif (pinned := route.chain_index.get(pin)) is not None:
            result = await try_pinned(run, route.chain, pinned)
            if result is SERVED or result is STOP:
                return result
            seed = (pinned[0], pinned[1], result)
    if pool is not None and (
        (pool.rate is None and pool.tpm is None) or _pool_admits(run, route, pool)
    ):
        result = await walk_pool(run, pool, first)
        if result is not NEXT:
            return result
    if route.chain:
        result = await walk_chain(run, route.chain, "chain", seed)
        if result is not NEXT:
            return result
    if route.last_resort and run.calls < run.max_attempts:
        result = await walk_chain(run, route.last_resort, "last_resort", None, True)
        if result is not NEXT:
            return result
    return await wait_for_retry_after(run)


def _pool_admits(run: Run, route: Route, pool: InstancePoolPlan) -> bool:
    """The pool's ``rate_limiting`` (and its ``tpm_limit``), once per request: a refusal
    ends a pool target, and moves a node on to its fallback groups."""
    rate = pool.rate
    now = run.env.clock.now()
    if rate is not None and not rate.try_acquire(now):
        hint: float | None = rate.retry_after(now)
        what = f"pool {pool.name}'s rate limit"
    elif pool.tpm is not None and not _reserve(run, route, pool.tpm, now):
        if rate is not None:
            rate.refund(now)
        hint = _hint(pool.tpm, now, run.tokens_for(route.reply_budget))
        what = f"pool {pool.name}'s tpm_limit"
    else:
        return True
    if route.kind == "pool":
        _refuse(run, "pool", pool.name, hint, what)
    run.refused("pool", pool.name, hint)
    return False


def _reserve(run: Run, route: Route, window: TokenWindow, now: float) -> bool:
    hold = window.try_reserve(now, run.tokens_for(route.reply_budget))
    if hold is None:
        return False
    run.hold_tokens(hold)
    return True


def _hint(window: TokenWindow, now: float, tokens: int) -> float | None:
    wait = window.retry_after(now, tokens)
    return wait if wait != float("inf") else None


async def _hold(run: Run, slots: ConcurrencyLimit, level: str, key: str) -> None:
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


def _failed_after_commit(run: Run, exc: Exception, now: float) -> None:
    """An exception left the serve block: the serving instance failed after its commit."""
    inst = run.serving
    if inst is None:
        return
    if isinstance(exc, UpstreamError):
        error_class, status = exc.error_class, exc.status
        message = exc.message or str(exc)
    else:
        error_class, status = "stream_broken", None
        message = f"{type(exc).__name__}: {exc}"
    inst.breaker.failure(NORMAL, now, error_class)
    if run.serving_health is not None:
        run.serving_health.failure(now, error_class)
    outcome = run.outcome
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


def _close(run: Run) -> None:
    """Release everything the request holds and finish its outcome (one path, every exit)."""
    run.release_all()
    outcome = run.outcome
    outcome.attempt_count = run.calls
    outcome.duration = run.env.clock.now() - outcome.started
