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

The lease gives back whatever the attempt did not settle (ticket, slots, rpm token) on one
path, :meth:`Lease.release` in the attempt's ``finally``, whatever happened (a skip, a
failure, a cancellation). (It is not a context manager: a ``with`` cost one more call per
attempt on the hot path, and releasing needs no ``await``.) A served
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
from .steps import FAILED, NEXT, SERVED, SKIP_TIER, STOP, SkipKind, Step

if TYPE_CHECKING:
    from .breaker import Breaker
    from .concurrency import ConcurrencyLimit
    from .health import InstanceHealth
    from .limiters import SlidingWindow
    from .plans import InstancePlan
    from .run import Run
    from .tokens import TokenHold

__all__ = ["Lease", "attempt", "backoff_delay"]

_QUEUE_REASONS = {Admission.QUEUE_FULL: "queue_full", Admission.TIMED_OUT: "queue_timeout"}
_QUEUE = NEXT
"""``_admit_now``: a concurrency slot is taken; wait for it in its queue."""


class Lease:
    """What one attempt holds before and during its call, given back on one path."""

    __slots__ = ("breaker", "model_slots", "rpm", "rpm_at", "ticket", "tier_slots", "tpm")

    def __init__(self, breaker: Breaker) -> None:
        self.breaker = breaker
        self.ticket: int | None = None
        self.tier_slots: ConcurrencyLimit | None = None
        self.model_slots: ConcurrencyLimit | None = None
        self.rpm: SlidingWindow | None = None
        self.rpm_at = 0.0
        self.tpm: TokenHold | None = None

    def release(self) -> None:
        """Give back whatever is still held (idempotent): the one release path."""
        ticket = self.ticket
        if ticket is not None:
            self.ticket = None
            self.breaker.release(ticket)
        rpm = self.rpm
        if rpm is not None:
            self.rpm = None
            rpm.refund(self.rpm_at)
        tpm = self.tpm
        if tpm is not None:
            self.tpm = None
            tpm.settle(0)
        model_slots, tier_slots = self.model_slots, self.tier_slots
        self.model_slots = self.tier_slots = None
        if model_slots is not None:
            model_slots.release()
        if tier_slots is not None:
            tier_slots.release()

    def verdict(self) -> int:
        """The ticket, consumed by the breaker's verdict (nothing to give back)."""
        ticket, self.ticket = self.ticket, None
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
    env = run.env
    now = env.clock.now()
    if inst.cannot_serve is not None or inst.memo.until > now or (
        not bypass and not inst.breaker.available(now)
    ):
        return _skip_at_once(run, inst, phase, health, bypass, now)
    if not waited and run.calls and run.retry_delay > 0.0:
        stopped = await _backoff(run, inst, phase, now)
        if stopped is not None:
            return stopped
    elif run.deadline is not None and now >= run.deadline:
        return run.deadline_passed(inst, phase, now)
    lease = Lease(inst.breaker)
    try:
        refused = _admit_now(run, inst, phase, lease, bypass, now)
        if refused is _QUEUE:
            refused = await _admit_queued(run, inst, phase, lease)
        if refused is not None:
            return refused
        start = env.clock.now()
        timeout = inst.settings.timeout  # type: ignore[union-attr]
        if run.deadline is not None and run.deadline - start < timeout:
            timeout = run.deadline - start  # cut short by the deadline
            if timeout <= 0.0:
                return run.deadline_passed(inst, phase, start)
        run.calls = call = run.calls + 1
        rpm, lease.rpm = lease.rpm, None  # the call is made: its rpm token is spent
        assert inst.instance is not None and inst.settings is not None  # (not cannot_serve)
        try:
            result = await attempt_timeout(
                env.clock, timeout, env.provider.call(inst.instance, run.request, inst.settings))
        except asyncio.CancelledError:
            run.record(inst, phase, start, env.clock.now(), "error", "cancelled", call,
                       "cancelled")
            raise
        except AttemptTimedOut:
            return _timed_out(run, inst, phase, health, lease, start, call, timeout)
        except UpstreamError as exc:
            return _failed(run, inst, phase, health, lease, start, call, exc)
        except InstanceCannotServe as exc:
            run.calls = call - 1  # not a call after all: nothing was sent
            lease.rpm = rpm  # given back, like the token reservation, by release()
            return run.cannot_serve(inst, phase, env.clock.now(), short_message(exc.reason),
                                    exc.feature)
        except Exception as exc:
            failure = UpstreamError(None, "unexpected", f"{type(exc).__name__}: {exc}")
            return _failed(run, inst, phase, health, lease, start, call, failure)
        return _served(run, inst, phase, health, lease, start, call, result)
    finally:
        lease.release()


def _timed_out(
    run: Run, inst: InstancePlan, phase: str, health: InstanceHealth | None, lease: Lease,
    start: float, call: int, timeout: float,
) -> Step:
    deadline = run.deadline
    if deadline is not None and start + timeout >= deadline:  # cut short by the deadline
        run.stop_reason = "deadline"
        run.record(inst, phase, start, run.env.clock.now(), "error", "deadline", call, "timeout",
                   message="the request's deadline passed during the call")
        return STOP
    failure = UpstreamError(None, "timeout", f"no answer within {timeout:g}s")
    return _failed(run, inst, phase, health, lease, start, call, failure)


def _skip_at_once(
    run: Run, inst: InstancePlan, phase: str, health: InstanceHealth | None, bypass: bool,
    now: float,
) -> Step:
    if inst.cannot_serve is not None:
        return run.skip(inst, phase, now, "cannot_serve", SkipKind.OTHER, inst.cannot_serve)
    if not bypass and not inst.breaker.available(now):
        return run.circuit_open(inst, phase, now)
    return run.wait_on(inst, phase, health, bypass, inst.memo.until - now, now)


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
    if deadline is not None and now + wait >= deadline:
        return run.deadline_passed(inst, phase, now)
    clock = run.env.clock
    await clock.sleep(wait)
    now = clock.now()
    if deadline is not None and now >= deadline:
        return run.deadline_passed(inst, phase, now)
    return None


def _admit_now(
    run: Run, inst: InstancePlan, phase: str, lease: Lease, bypass: bool, now: float
) -> Step | None:
    """Take the ticket, the free slots and the rpm token into ``lease`` without waiting (at
    ``now``); a refusal is a skip; ``_QUEUE`` when a slot must be waited for."""
    ticket = BYPASS if bypass else inst.breaker.admit(now)
    if ticket == REFUSED:
        return run.circuit_open(inst, phase, now)
    lease.ticket = ticket
    slots = inst.tier_plan.slots
    if slots is not None:
        if not slots.try_acquire():
            return _QUEUE
        lease.tier_slots = slots
    slots = inst.model_slots
    if slots is not None:
        if not slots.try_acquire():
            return _QUEUE
        lease.model_slots = slots
    return _take_rpm(run, inst, phase, lease, now)


async def _admit_queued(run: Run, inst: InstancePlan, phase: str, lease: Lease) -> Step | None:
    """Wait in the tier's, then the model's concurrency queue (until the deadline at most),
    for the slots ``_admit_now`` could not take; then the rpm token."""
    clock = run.env.clock
    tier = inst.tier_plan
    slots = tier.slots
    if slots is not None and lease.tier_slots is None:
        admission = await slots.acquire(run.deadline)
        if admission:
            run.refused("echelon", tier.label, None)
            return run.skip(inst, phase, clock.now(), _QUEUE_REASONS[admission], SkipKind.LIMIT,
                            f"tier {tier.label} concurrency limit {slots.limit}",
                            SKIP_TIER)
        lease.tier_slots = slots
    slots = inst.model_slots
    if slots is not None and lease.model_slots is None:
        admission = Admission.GRANTED if slots.try_acquire() else await slots.acquire(
            run.deadline)
        if admission:
            run.refused("model", inst.model, None)
            return run.skip(inst, phase, clock.now(), _QUEUE_REASONS[admission], SkipKind.LIMIT,
                            f"model {inst.model} concurrency limit {slots.limit}")
        lease.model_slots = slots
    return _take_rpm(run, inst, phase, lease, clock.now())


def _take_rpm(run: Run, inst: InstancePlan, phase: str, lease: Lease, now: float) -> Step | None:
    """The tier's ``rpm_limit`` token and ``tpm_limit`` reservation (a refusal skips the
    tier)."""
    tier = inst.tier_plan
    rpm = tier.rpm
    if rpm is not None:
        if not rpm.try_acquire(now):
            run.refused("echelon", tier.label, rpm.retry_after(now))
            return run.skip(inst, phase, now, "rate_limited", SkipKind.LIMIT,
                            f"tier {tier.label} rpm_limit {rpm.max_requests}/min", SKIP_TIER)
        lease.rpm, lease.rpm_at = rpm, now
    if tier.tpm is not None:
        return _reserve_tokens(run, inst, phase, lease, now)
    return None


def _reserve_tokens(
    run: Run, inst: InstancePlan, phase: str, lease: Lease, now: float
) -> Step | None:
    tier = inst.tier_plan
    window = tier.tpm
    assert window is not None and inst.settings is not None
    tokens = run.tokens_for(inst.settings.max_tokens)
    hold = window.try_reserve(now, tokens)
    if hold is None:
        wait = window.retry_after(now, tokens)
        run.refused("echelon", tier.label, wait if wait != float("inf") else None)
        return run.skip(inst, phase, now, "rate_limited", SkipKind.LIMIT,
                        f"tier {tier.label} tpm_limit {window.max_tokens}/min: {tokens} tokens "
                        "do not fit", SKIP_TIER)
    lease.tpm = hold
    return None


def _served(
    run: Run, inst: InstancePlan, phase: str, health: InstanceHealth | None, lease: Lease,
    start: float, call: int, result: object,
) -> Step:
    end = run.env.clock.now()
    ticket, lease.ticket = lease.ticket, None  # consumed by the verdict
    inst.breaker.success(ticket if ticket is not None else BYPASS, end)
    if health is not None:
        health.success()
    run.serving_slots = (lease.tier_slots, lease.model_slots)
    lease.tier_slots = lease.model_slots = None  # held until the serve block exits
    if lease.tpm is not None:  # settled with the reported usage when the block exits
        run.hold_tokens(lease.tpm)
        lease.tpm = None
    run.serving, run.serving_health = inst, health
    outcome = run.outcome
    outcome.group, outcome.tier, outcome.model = inst.group, inst.tier, inst.model
    outcome.instance, outcome.settings, outcome.result = inst.instance, inst.settings, result
    outcome.attempt_count = call
    outcome.stop_reason = "served"
    run.record(inst, phase, start, end, "ok", "served", call)
    return SERVED


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
        return STOP
    failed = run.failed_providers
    if failed is None:
        run.failed_providers = failed = set()
    failed.add(inst.provider_key)
    return FAILED
