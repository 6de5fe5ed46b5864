"""One request in flight: its budget, its trail, and the single-attempt procedure.

:meth:`Run.attempt` is the one place an upstream call is made. For an instance it:

1. skips it (no call, no count) when it can never serve this tier, or its circuit is open;
2. waits before every attempt after the first: ``min(max_retry_delay, retry_delay *
   2**(k-1))`` times a jitter factor in [1, 1.25) drawn from the injected RNG (k = calls made
   so far). If the instance answered with Retry-After (remembered per model id, for every
   request), it waits ``max(backoff, remaining Retry-After)`` when that fits before the
   deadline (without a deadline: when the Retry-After is at most ``max(backoff,
   max_retry_delay)``), otherwise skips the instance (``retry_after``). A wait that does not fit before the deadline ends the request;
3. admits it through the circuit breaker (a half-open circuit admits only its probes);
4. takes the tier's (echelon) then the model's concurrency slot, waiting in their queues until
   the deadline at most; a refusal skips the tier / the model;
5. checks the tier's ``rpm_limit`` window right before the call; a refusal skips the tier;
6. calls ``provider.call`` bounded by the tier's (or node's) timeout and the deadline, on the
   injected clock; a timeout cut short by the deadline ends the request without penalty;
7. classifies the result (see ``classify``), feeds the breaker and pool health, records the
   attempt, and releases the attempt's slots -- except on success, where the slots stay held
   until the caller's ``serve`` block exits.
"""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING

from .breaker import BYPASS
from .classify import Disposition, disposition_of, short_message
from .clock import AttemptTimedOut, Clock, attempt_timeout
from .concurrency import Admission, ConcurrencyLimit
from .errors import InstanceCannotServe, UpstreamError
from .events import Listeners
from .outcome import Attempt, AttemptResult, Outcome

if TYPE_CHECKING:
    from .health import InstanceHealth
    from .plans import InstancePlan, Route
    from .provider import Provider
    from .request import EngineRequest

__all__ = ["FAILED", "OK", "SKIP_MODEL", "SKIP_TIER", "STOP", "Env", "Run"]

OK, FAILED, SKIP_MODEL, SKIP_TIER, STOP = 0, 1, 2, 3, 4

_OPEN, _LIMIT, _OTHER = 0, 1, 2
_QUEUE_REASONS = {Admission.QUEUE_FULL: "queue_full", Admission.TIMED_OUT: "queue_timeout"}


class Env:
    """What every request of an engine shares."""

    __slots__ = ("clock", "listeners", "provider", "rng")

    def __init__(
        self, clock: Clock, rng: random.Random, provider: Provider, listeners: Listeners
    ) -> None:
        self.clock = clock
        self.rng = rng
        self.provider = provider
        self.listeners = listeners


class Run:
    """The state of one request while the engine serves it."""

    __slots__ = (
        "attempt_slots", "calls", "deadline", "env", "failed_providers", "held", "last_place",
        "limit_hint", "limit_key", "limit_level", "max_attempts", "max_retry_delay", "outcome",
        "rejection", "request", "retry_delay", "route", "serving", "serving_health",
        "skipped", "stop_reason",
    )

    def __init__(self, env: Env, request: EngineRequest, route: Route, now: float) -> None:
        self.env = env
        self.request = request
        self.route = route
        self.outcome = Outcome(route.name, now, route.max_attempts)
        self.calls = 0
        self.max_attempts = route.max_attempts
        self.deadline = request.deadline
        self.retry_delay = route.retry_delay
        self.max_retry_delay = route.max_retry_delay
        self.failed_providers: set[str] | None = None
        self.stop_reason: str | None = None
        self.held: list[ConcurrencyLimit] = []
        self.attempt_slots: tuple[ConcurrencyLimit | None, ConcurrencyLimit | None] = (None, None)
        self.serving: InstancePlan | None = None
        self.serving_health: InstanceHealth | None = None
        self.last_place: object = None
        self.skipped = [0, 0, 0]  # open, limit, other
        self.limit_level: str | None = None
        self.limit_key: str | None = None
        self.limit_hint: float | None = None
        self.rejection: UpstreamError | None = None

    # -- the trail -------------------------------------------------------------------------------

    def record(
        self,
        inst: InstancePlan,
        phase: str,
        start: float,
        end: float,
        result: AttemptResult,
        reason: str,
        call: int | None = None,
        error_class: str | None = None,
        status: int | None = None,
        message: str | None = None,
    ) -> Attempt:
        outcome = self.outcome
        attempt = Attempt(
            len(outcome.attempts), inst.group, inst.tier, inst.model, inst.provider, start,
            end - start, result, reason, call, error_class, status, message, phase,
        )
        outcome.attempts.append(attempt)
        if self.env.listeners.active:
            self.env.listeners.attempt(outcome, attempt)
        return attempt

    def skip(
        self, inst: InstancePlan, phase: str, now: float, reason: str, kind: int,
        message: str | None = None,
    ) -> None:
        self.skipped[kind] += 1
        self.record(inst, phase, now, now, "skipped", reason, message=message)

    def refused(self, level: str, key: str, hint: float | None) -> None:
        """A limit refused: remember it for the final error, tell the listeners."""
        if self.limit_level is None or (
            hint is not None and (self.limit_hint is None or hint < self.limit_hint)
        ):
            self.limit_level, self.limit_key, self.limit_hint = level, key, hint
        if self.env.listeners.active:
            self.env.listeners.limit_refused(level, key)

    def enter(self, place: object) -> None:
        """Count a move to another chain step or pool instance as a fallback taken."""
        if self.last_place is not None and place is not self.last_place:
            self.outcome.fallbacks_taken += 1
        self.last_place = place

    # -- releasing -------------------------------------------------------------------------------

    def release_attempt(self) -> None:
        tier_slots, model_slots = self.attempt_slots
        self.attempt_slots = (None, None)
        if model_slots is not None:
            model_slots.release()
        if tier_slots is not None:
            tier_slots.release()

    def release_all(self) -> None:
        self.release_attempt()
        held = self.held
        while held:
            held.pop().release()

    # -- one attempt -----------------------------------------------------------------------------

    async def attempt(
        self,
        inst: InstancePlan,
        phase: str,
        health: InstanceHealth | None = None,
        bypass: bool = False,
    ) -> int:
        env = self.env
        clock = env.clock
        now = clock.now()
        if inst.cannot_serve is not None:
            self.skip(inst, phase, now, "cannot_serve", _OTHER, inst.cannot_serve)
            return SKIP_MODEL
        breaker = inst.breaker
        if not bypass and not breaker.available(now):
            self.skip(inst, phase, now, "circuit_open", _OPEN)
            return SKIP_MODEL
        deadline = self.deadline
        wait = 0.0
        calls = self.calls
        if calls and self.retry_delay > 0.0:
            wait = min(self.max_retry_delay, self.retry_delay * 2 ** (calls - 1)) * (
                1.0 + 0.25 * env.rng.random()
            )
        pause = inst.memo.until - now
        if pause > 0.0:
            if deadline is not None:
                fits = now + max(wait, pause) < deadline
            else:
                fits = pause <= max(wait, self.max_retry_delay)
            wait = max(wait, pause)
            if not fits:
                self.skip(inst, phase, now, "retry_after", _OTHER,
                          f"asked to wait {pause:.3g}s (Retry-After)")
                return SKIP_MODEL
        if wait > 0.0:
            if deadline is not None and now + wait >= deadline:
                return self._deadline(inst, phase, now)
            await clock.sleep(wait)
            now = clock.now()
        if deadline is not None and now >= deadline:
            return self._deadline(inst, phase, now)
        ticket = BYPASS if bypass else breaker.admit(now)
        if ticket < 0:
            self.skip(inst, phase, now, "circuit_open", _OPEN)
            return SKIP_MODEL
        tier = inst.tier_plan
        tier_slots = tier.slots
        model_slots = inst.model_slots
        try:
            if tier_slots is not None and not tier_slots.try_acquire():
                admission = await tier_slots.acquire(deadline)
                if admission:
                    breaker.release(ticket)
                    self.refused("echelon", tier.label, None)
                    self.skip(inst, phase, clock.now(), _QUEUE_REASONS[admission], _LIMIT,
                              f"tier {tier.label} concurrency limit {tier_slots.limit}")
                    return SKIP_TIER
            if model_slots is not None and not model_slots.try_acquire():
                try:
                    admission = await model_slots.acquire(deadline)
                except BaseException:
                    if tier_slots is not None:
                        tier_slots.release()
                    raise
                if admission:
                    if tier_slots is not None:
                        tier_slots.release()
                    breaker.release(ticket)
                    self.refused("model", inst.model, None)
                    self.skip(inst, phase, clock.now(), _QUEUE_REASONS[admission], _LIMIT,
                              f"model {inst.model} concurrency limit {model_slots.limit}")
                    return SKIP_MODEL
        except BaseException:
            breaker.release(ticket)
            raise
        self.attempt_slots = (tier_slots, model_slots)
        start = clock.now()
        rpm = tier.rpm
        if rpm is not None and not rpm.try_acquire(start):
            self.release_attempt()
            breaker.release(ticket)
            self.refused("echelon", tier.label, rpm.retry_after(start))
            self.skip(inst, phase, start, "rate_limited", _LIMIT,
                      f"tier {tier.label} rpm_limit {rpm.max_requests}/min")
            return SKIP_TIER
        settings = inst.settings
        assert settings is not None and inst.instance is not None
        timeout = settings.timeout
        by_deadline = False
        if deadline is not None and deadline - start < timeout:
            timeout, by_deadline = deadline - start, True
            if timeout <= 0.0:
                if rpm is not None:
                    rpm.refund(start)
                self.release_attempt()
                breaker.release(ticket)
                return self._deadline(inst, phase, start)
        self.calls = call = calls + 1
        try:
            result = await attempt_timeout(
                clock, timeout, env.provider.call(inst.instance, self.request, settings)
            )
        except asyncio.CancelledError:
            self.release_attempt()
            breaker.release(ticket)
            self.record(inst, phase, start, clock.now(), "error", "cancelled", call, "cancelled")
            raise
        except AttemptTimedOut:
            if by_deadline:
                self.release_attempt()
                breaker.release(ticket)
                self.stop_reason = "deadline"
                self.record(inst, phase, start, clock.now(), "error", "deadline", call,
                            "timeout", message="the request's deadline passed during the call")
                return STOP
            status, error_class, retry_after = None, "timeout", None
            message: str | None = f"no answer within {timeout:g}s"
            disposition = Disposition.FALLBACK
        except UpstreamError as exc:
            status, error_class, retry_after = exc.status, exc.error_class, exc.retry_after
            message = short_message(exc.message) if exc.message else None
            disposition = disposition_of(status, error_class)
            if disposition is Disposition.REJECT:
                self.rejection = exc
        except InstanceCannotServe as exc:
            self.calls = calls
            if rpm is not None:
                rpm.refund(clock.now())
            self.release_attempt()
            breaker.release(ticket)
            self.skip(inst, phase, clock.now(), "cannot_serve", _OTHER, short_message(exc.reason))
            return SKIP_MODEL
        except Exception as exc:
            status, error_class, retry_after = None, "unexpected", None
            message = short_message(f"{type(exc).__name__}: {exc}")
            disposition = Disposition.FALLBACK
        else:
            outcome = self.outcome
            end = clock.now()
            breaker.success(ticket, end)
            if health is not None:
                health.success()
            self.serving = inst
            self.serving_health = health
            outcome.group, outcome.tier, outcome.model = inst.group, inst.tier, inst.model
            outcome.instance, outcome.settings, outcome.result = inst.instance, settings, result
            outcome.attempt_count = call
            outcome.stop_reason = "served"
            self.record(inst, phase, start, end, "ok", "served", call)
            return OK
        end = clock.now()
        self.release_attempt()
        if retry_after is not None and retry_after > 0.0:
            inst.memo.until = max(inst.memo.until, end + retry_after)
        if disposition is Disposition.FALLBACK:
            breaker.failure(ticket, end, error_class)
            if health is not None:
                health.failure(end, error_class)
            reason = "fallback"
        elif disposition is Disposition.BROKEN:
            breaker.broken(end, error_class)
            if health is not None:
                health.take_out(end, error_class)
            reason = "marked_broken"
        else:
            breaker.release(ticket)
            reason = "rejected" if disposition is Disposition.REJECT else "request_specific"
        self.record(inst, phase, start, end, "error", reason, call, error_class, status, message)
        if disposition is Disposition.REJECT:
            self.stop_reason = "rejected"
            return STOP
        failed = self.failed_providers
        if failed is None:
            self.failed_providers = failed = set()
        failed.add(inst.provider_key)
        return FAILED

    def _deadline(self, inst: InstancePlan, phase: str, now: float) -> int:
        self.stop_reason = "deadline"
        self.record(inst, phase, now, now, "skipped", "deadline",
                    message="no time left before the request's deadline")
        return STOP
