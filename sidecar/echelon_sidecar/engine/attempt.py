"""One attempt on one instance: the only place an upstream call is made.

:func:`attempt` runs, in order:

1. **checks without a call** -- the instance can never serve its tier (``cannot_serve``), its
   circuit is open, or its Retry-After has not passed: skipped at once, no wait (an instance
   waiting out a Retry-After is remembered; ``waits`` may call it later if nothing else
   serves the request);
2. **backoff** before every call after the first: ``min(max_retry_delay, retry_delay *
   2**(k-1))`` times a jitter factor in [1, 1.25) from the injected RNG (k = calls so far); a
   backoff that does not fit before the deadline ends the request;
3. **admission**, into a :class:`Lease`: the breaker's ticket (a half-open circuit admits only
   its probes), the tier's then the model's concurrency slot (waiting in their queues until
   the deadline at most; a refusal skips the tier / the model), the tier's ``rpm_limit``
   token (a refusal skips the tier);
4. **the call**, bounded by the tier's (or node's) timeout and the deadline on the injected
   clock; a timeout cut short by the deadline ends the request without penalty;
5. **the verdict** (see ``classify``): the breaker and pool health are fed, the Retry-After
   remembered, the attempt recorded.

The lease gives back whatever the attempt did not settle -- ticket, slots, rpm token -- on one
path, its ``__aexit__``, whatever happened (a skip, a failure, a cancellation). A served
attempt hands its slots over to the run, which holds them until the ``serve`` block exits.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from .breaker import BYPASS, REFUSED
from .classify import Disposition, disposition_of, short_message
from .clock import AttemptTimedOut, attempt_timeout
from .concurrency import Admission
from .errors import InstanceCannotServe, UpstreamError
from .steps import SkipKind, Step

if TYPE_CHECKING:
    from types import TracebackType

    from .breaker import Breaker
    from .concurrency import ConcurrencyLimit
    from .health import InstanceHealth
    from .limiters import SlidingWindow
    from .plans import InstancePlan
    from .run import Run

__all__ = ["Lease", "attempt", "backoff_delay"]

_QUEUE_REASONS = {Admission.QUEUE_FULL: "queue_full", Admission.TIMED_OUT: "queue_timeout"}


class Lease:
    """What one attempt holds before and during its call, given back on one path."""

    __slots__ = ("breaker", "model_slots", "rpm", "rpm_at", "ticket", "tier_slots")

    def __init__(self, breaker: Breaker) -> None:
        self.breaker = breaker
        self.ticket: int | None = None
        self.tier_slots: ConcurrencyLimit | None = None
        self.model_slots: ConcurrencyLimit | None = None
        self.rpm: SlidingWindow | None = None
        self.rpm_at = 0.0

    async def __aenter__(self) -> Lease:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        ticket = self.ticket
        if ticket is not None:
            self.ticket = None
            self.breaker.release(ticket)
        rpm = self.rpm
        if rpm is not None:
            self.rpm = None
            rpm.refund(self.rpm_at)
        model_slots, tier_slots = self.model_slots, self.tier_slots
        self.model_slots = self.tier_slots = None
        if model_slots is not None:
            model_slots.release()
        if tier_slots is not None:
            tier_slots.release()

    def verdict(self) -> int:
        """The ticket, consumed by the breaker's verdict (nothing to give back)."""
        ticket = self.ticket
        self.ticket = None
        return ticket if ticket is not None else BYPASS


async def attempt(
    run: Run,
    inst: InstancePlan,
    phase: str,
    health: InstanceHealth | None = None,
    bypass: bool = False,
    waited: bool = False,
) -> Step:
    """Attempt ``inst`` once (see the module docstring). ``bypass``: ignore its circuit (the
    last resort); ``waited``: the caller already waited (its Retry-After and the backoff)."""
    now = run.env.clock.now()
    skipped = _check(run, inst, phase, health, bypass, now)
    if skipped is not None:
        return skipped
    if not waited:
        stopped = await _backoff(run, inst, phase, now)
        if stopped is not None:
            return stopped
    async with Lease(inst.breaker) as lease:
        refused = await _admit(run, inst, phase, lease, bypass)
        if refused is not None:
            return refused
        return await _call(run, inst, phase, health, lease)


def _check(
    run: Run, inst: InstancePlan, phase: str, health: InstanceHealth | None, bypass: bool,
    now: float,
) -> Step | None:
    if inst.cannot_serve is not None:
        return run.skip(inst, phase, now, "cannot_serve", SkipKind.OTHER, inst.cannot_serve)
    if not bypass and not inst.breaker.available(now):
        return run.circuit_open(inst, phase, now)
    pause = inst.memo.until - now
    if pause > 0.0:
        return run.wait_on(inst, phase, health, bypass, pause, now)
    return None


def backoff_delay(run: Run) -> float:
    """The pause before the request's next call (0 before its first); draws the jitter."""
    calls, delay = run.calls, run.retry_delay
    if calls and delay > 0.0:
        return min(run.max_retry_delay, delay * 2.0 ** (calls - 1)) * (
            1.0 + 0.25 * run.env.rng.random())
    return 0.0


async def _backoff(run: Run, inst: InstancePlan, phase: str, now: float) -> Step | None:
    deadline = run.deadline
    wait = backoff_delay(run)
    if wait > 0.0:
        if deadline is not None and now + wait >= deadline:
            return run.deadline_passed(inst, phase, now)
        clock = run.env.clock
        await clock.sleep(wait)
        now = clock.now()
    if deadline is not None and now >= deadline:
        return run.deadline_passed(inst, phase, now)
    return None


async def _admit(
    run: Run, inst: InstancePlan, phase: str, lease: Lease, bypass: bool
) -> Step | None:
    """Take the ticket, the slots and the rpm token into ``lease``; a refusal is a skip."""
    clock = run.env.clock
    ticket = BYPASS if bypass else inst.breaker.admit(clock.now())
    if ticket == REFUSED:
        return run.circuit_open(inst, phase, clock.now())
    lease.ticket = ticket
    tier = inst.tier_plan
    slots = tier.slots
    if slots is not None:
        admission = Admission.GRANTED if slots.try_acquire() else await slots.acquire(
            run.deadline)
        if admission:
            run.refused("echelon", tier.label, None)
            return run.skip(inst, phase, clock.now(), _QUEUE_REASONS[admission], SkipKind.LIMIT,
                            f"tier {tier.label} concurrency limit {slots.limit}",
                            Step.SKIP_TIER)
        lease.tier_slots = slots
    slots = inst.model_slots
    if slots is not None:
        admission = Admission.GRANTED if slots.try_acquire() else await slots.acquire(
            run.deadline)
        if admission:
            run.refused("model", inst.model, None)
            return run.skip(inst, phase, clock.now(), _QUEUE_REASONS[admission], SkipKind.LIMIT,
                            f"model {inst.model} concurrency limit {slots.limit}")
        lease.model_slots = slots
    rpm = tier.rpm
    if rpm is not None:
        now = clock.now()
        if not rpm.try_acquire(now):
            run.refused("echelon", tier.label, rpm.retry_after(now))
            return run.skip(inst, phase, now, "rate_limited", SkipKind.LIMIT,
                            f"tier {tier.label} rpm_limit {rpm.max_requests}/min",
                            Step.SKIP_TIER)
        lease.rpm, lease.rpm_at = rpm, now
    return None


async def _call(
    run: Run, inst: InstancePlan, phase: str, health: InstanceHealth | None, lease: Lease
) -> Step:
    env = run.env
    clock = env.clock
    settings = inst.settings
    assert settings is not None and inst.instance is not None
    start = clock.now()
    timeout = settings.timeout
    deadline = run.deadline
    by_deadline = deadline is not None and deadline - start < timeout
    if by_deadline:
        assert deadline is not None
        timeout = deadline - start
        if timeout <= 0.0:
            return run.deadline_passed(inst, phase, start)
    run.calls = call = run.calls + 1
    rpm, lease.rpm = lease.rpm, None  # the call is made: its rpm token is spent
    try:
        result = await attempt_timeout(
            clock, timeout, env.provider.call(inst.instance, run.request, settings))
    except asyncio.CancelledError:
        run.record(inst, phase, start, clock.now(), "error", "cancelled", call, "cancelled")
        raise
    except AttemptTimedOut:
        if by_deadline:
            run.stop_reason = "deadline"
            run.record(inst, phase, start, clock.now(), "error", "deadline", call, "timeout",
                       message="the request's deadline passed during the call")
            return Step.STOP
        failure = UpstreamError(None, "timeout", f"no answer within {timeout:g}s")
    except UpstreamError as exc:
        failure = exc
    except InstanceCannotServe as exc:
        run.calls = call - 1  # not a call after all: nothing was sent
        lease.rpm = rpm
        return run.cannot_serve(inst, phase, clock.now(), short_message(exc.reason), exc.feature)
    except Exception as exc:
        failure = UpstreamError(None, "unexpected", f"{type(exc).__name__}: {exc}")
    else:
        return _served(run, inst, phase, health, lease, start, call, result)
    return _failed(run, inst, phase, health, lease, start, call, failure)


def _served(
    run: Run, inst: InstancePlan, phase: str, health: InstanceHealth | None, lease: Lease,
    start: float, call: int, result: object,
) -> Step:
    end = run.env.clock.now()
    inst.breaker.success(lease.verdict(), end)
    if health is not None:
        health.success()
    run.serving_slots = (lease.tier_slots, lease.model_slots)
    lease.tier_slots = lease.model_slots = None  # held until the serve block exits
    run.serving, run.serving_health = inst, health
    outcome = run.outcome
    outcome.group, outcome.tier, outcome.model = inst.group, inst.tier, inst.model
    outcome.instance, outcome.settings, outcome.result = inst.instance, inst.settings, result
    outcome.attempt_count = call
    outcome.stop_reason = "served"
    run.record(inst, phase, start, end, "ok", "served", call)
    return Step.SERVED


def _failed(
    run: Run, inst: InstancePlan, phase: str, health: InstanceHealth | None, lease: Lease,
    start: float, call: int, exc: UpstreamError,
) -> Step:
    end = run.env.clock.now()
    retry_after = exc.retry_after
    if retry_after is not None and retry_after > 0.0:
        inst.memo.until = max(inst.memo.until, end + retry_after)
        run.retry_at(inst.memo.until)
    disposition = disposition_of(exc.status, exc.error_class)
    error_class = exc.error_class
    if disposition is Disposition.FALLBACK:
        inst.breaker.failure(lease.verdict(), end, error_class)
        if health is not None:
            health.failure(end, error_class)
        reason = "fallback"
    elif disposition is Disposition.BROKEN:
        lease.verdict()
        inst.breaker.broken(end, error_class)
        if health is not None:
            health.take_out(end, error_class)
        reason = "marked_broken"
    else:
        reason = "rejected" if disposition is Disposition.REJECT else "request_specific"
    message = short_message(exc.message) if exc.message else None
    run.record(inst, phase, start, end, "error", reason, call, error_class, exc.status, message)
    if disposition is Disposition.REJECT:
        run.rejection = exc
        run.stop_reason = "rejected"
        return Step.STOP
    failed = run.failed_providers
    if failed is None:
        run.failed_providers = failed = set()
    failed.add(inst.provider_key)
    return Step.FAILED
