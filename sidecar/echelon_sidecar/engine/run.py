"""One request in flight: its budget, its trail, what it holds and why it moved on.

A :class:`Run` is the state the walkers (``chain``, ``pool``, ``waits``) and the attempt
procedure (``attempt``) share while ``serve`` serves one request. It keeps no logic of its
own beyond bookkeeping: the trail (:meth:`record`, :meth:`skip`), the limits that refused
(:meth:`refused`), the instances waiting out a Retry-After (:meth:`wait_on`), and what the
request holds -- its node and group slots (``held``) and the serving attempt's tier and model
slots (``serving_slots``) -- released on one path, :meth:`release_all`.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from .outcome import Attempt, AttemptResult, Outcome
from .steps import SKIP_MODEL, STOP, SkipKind, Step

if TYPE_CHECKING:
    from .clock import Clock
    from .concurrency import ConcurrencyLimit
    from .events import Listeners
    from .health import InstanceHealth
    from .plans import InstancePlan, Route
    from .provider import Provider
    from .request import EngineRequest
    from .tokens import TokenHold

__all__ = ["Env", "Run", "Waiting"]


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


class Waiting:
    """An instance skipped because its Retry-After had not passed: ``waits`` may call it
    once it has, if nothing else served the request."""

    __slots__ = ("bypass", "health", "inst", "phase")

    def __init__(
        self, inst: InstancePlan, phase: str, health: InstanceHealth | None, bypass: bool
    ) -> None:
        self.inst = inst
        self.phase = phase
        self.health = health
        self.bypass = bypass


class Run:
    """The state of one request while the engine serves it."""

    __slots__ = (
        "calls", "deadline", "env", "failed_providers", "held", "last_place", "limit_hint",
        "limit_key", "limit_level", "max_attempts", "max_retry_delay", "open_until", "outcome",
        "rejection", "request", "retry_delay", "retry_until", "route", "serving", "serving_health",
        "serving_slots", "skipped", "stop_reason", "token_holds", "unservable", "usage", "waiting",
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
        self.serving_slots: tuple[ConcurrencyLimit | None, ConcurrencyLimit | None] = (None, None)
        self.serving: InstancePlan | None = None
        self.serving_health: InstanceHealth | None = None
        self.last_place: object = None
        self.skipped = [0, 0, 0, 0, 0]  # by SkipKind
        self.limit_level: str | None = None
        self.limit_key: str | None = None
        self.limit_hint: float | None = None
        self.open_until: float | None = None
        """The soonest time an open circuit skipped by this request turns half-open."""
        self.retry_until: float | None = None
        """The soonest time an instance this request met asked (Retry-After) to be called."""
        self.rejection: Exception | None = None
        """The upstream's ``UpstreamError`` that rejected the request itself (400/404/422)."""
        self.unservable: tuple[str, str] | None = None
        """(feature, reason) of the first ``InstanceCannotServe`` of this request."""
        self.waiting: list[Waiting] = []
        self.token_holds: list[TokenHold] | None = None
        """Token reservations the request holds (pool, global, the serving tier's)."""
        self.usage: int | None = None
        """Tokens the serving call used, as the server read them from the provider's usage."""

    def tokens_for(self, reply_budget: int) -> int:
        """What a call reserves in a token budget: input estimate plus the reply's budget."""
        request = self.request
        return request.input_tokens + (request.max_output_tokens or reply_budget)

    def hold_tokens(self, hold: TokenHold) -> None:
        holds = self.token_holds
        if holds is None:
            self.token_holds = [hold]
        else:
            holds.append(hold)

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
        self, inst: InstancePlan, phase: str, now: float, reason: str, kind: SkipKind,
        message: str | None = None, step: Step = SKIP_MODEL,
    ) -> Step:
        """Record a skip (no call) and return ``step``."""
        self.skipped[kind] += 1
        self.record(inst, phase, now, now, "skipped", reason, message=message)
        return step

    def circuit_open(self, inst: InstancePlan, phase: str, now: float) -> Step:
        until = inst.breaker.open_until
        if until is not None and until > now and (
            self.open_until is None or until < self.open_until
        ):
            self.open_until = until
        return self.skip(inst, phase, now, "circuit_open", SkipKind.OPEN)

    def cannot_serve(
        self, inst: InstancePlan, phase: str, now: float, message: str, feature: str | None
    ) -> Step:
        if self.unservable is None:
            self.unservable = (feature or "unsupported", message)
        return self.skip(inst, phase, now, "cannot_serve", SkipKind.UNSERVABLE, message)

    def wait_on(
        self, inst: InstancePlan, phase: str, health: InstanceHealth | None, bypass: bool,
        pause: float, now: float,
    ) -> Step:
        """Skip an instance whose Retry-After runs; remember it for ``waits``."""
        if all(w.inst is not inst for w in self.waiting):
            self.waiting.append(Waiting(inst, phase, health, bypass))
        self.retry_at(now + pause)
        return self.skip(inst, phase, now, "retry_after", SkipKind.WAITING,
                         f"asked to wait {pause:.3g}s more (Retry-After)")

    def retry_at(self, until: float) -> None:
        if self.retry_until is None or until < self.retry_until:
            self.retry_until = until

    def deadline_passed(self, inst: InstancePlan, phase: str, now: float) -> Step:
        self.stop_reason = "deadline"
        self.record(inst, phase, now, now, "skipped", "deadline",
                    message="no time left before the request's deadline")
        return STOP

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

    def capped(self) -> bool:
        """Has the request made every call ``max_attempts`` allows? (Sets the stop reason.)"""
        if self.calls >= self.max_attempts:
            self.stop_reason = "max_attempts"
            return True
        return False

    # -- releasing -------------------------------------------------------------------------------

    def release_all(self) -> None:
        """Release the serving attempt's slots and the request's own (idempotent)."""
        tier_slots, model_slots = self.serving_slots
        self.serving_slots = (None, None)
        if model_slots is not None:
            model_slots.release()
        if tier_slots is not None:
            tier_slots.release()
        held = self.held
        while held:
            held.pop().release()
        holds = self.token_holds
        if holds is not None:
            self.token_holds = None
            if self.serving is None:
                for hold in holds:
                    hold.settle(0)  # nothing served: the calls used nothing
            elif self.usage is not None:  # else the reservation stands (no usage reported)
                for hold in holds:
                    hold.settle(self.usage)
