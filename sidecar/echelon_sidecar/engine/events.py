"""Observability hooks: what the engine tells metrics, status and Kubernetes Events about.

Implement :class:`EngineListener` (or subclass :class:`NullListener` and override what you
need) and pass it to the engine (``Engine(..., listeners=[...])`` or ``engine.add_listener``).
Every hook is called synchronously on the event loop, so it must be cheap and must not raise
(an exception from a listener is swallowed, so that a broken metric never fails a request).

- ``on_attempt(outcome, attempt)`` -- an attempt (call or skip) was recorded in the trail;
- ``on_transition(key, old, new, at)`` -- a circuit (``key`` = (group, model id)) changed state;
- ``on_limit_refused(level, key)`` -- a rate limit or concurrency queue refused (level is
  ``global``, ``pool``, ``node``, ``group``, ``echelon`` or ``model``);
- ``on_outcome(outcome)`` -- a request finished (served and released, or failed);
- ``on_queue_depth(level, key, depth)`` -- a concurrency queue grew or shrank.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

from .breaker import BreakerKey, BreakerState

if TYPE_CHECKING:
    from .outcome import Attempt, Outcome

__all__ = ["EngineListener", "Listeners", "NullListener"]

_log = logging.getLogger(__name__)


def _failed(listener: object, hook: str) -> None:
    _log.warning("engine listener %r failed in %s", listener, hook, exc_info=True)


class EngineListener(Protocol):
    def on_attempt(self, outcome: Outcome, attempt: Attempt) -> None: ...

    def on_transition(
        self, key: BreakerKey, old: BreakerState, new: BreakerState, at: float
    ) -> None: ...

    def on_limit_refused(self, level: str, key: str) -> None: ...

    def on_outcome(self, outcome: Outcome) -> None: ...

    def on_queue_depth(self, level: str, key: str, depth: int) -> None: ...


class NullListener:
    """A listener that ignores everything: subclass it and override the hooks you need."""

    def on_attempt(self, outcome: Outcome, attempt: Attempt) -> None:
        return None

    def on_transition(
        self, key: BreakerKey, old: BreakerState, new: BreakerState, at: float
    ) -> None:
        return None

    def on_limit_refused(self, level: str, key: str) -> None:
        return None

    def on_outcome(self, outcome: Outcome) -> None:
        return None

    def on_queue_depth(self, level: str, key: str, depth: int) -> None:
        return None


class Listeners:
    """Fans each event out to every registered listener; ``active`` is False when there are none."""

    __slots__ = ("active", "items")

    def __init__(self, items: tuple[EngineListener, ...] = ()) -> None:
        self.items = items
        self.active = bool(items)

    def add(self, listener: EngineListener) -> None:
        self.items = (*self.items, listener)
        self.active = True

    def remove(self, listener: EngineListener) -> None:
        self.items = tuple(item for item in self.items if item is not listener)
        self.active = bool(self.items)

    def attempt(self, outcome: Outcome, attempt: Attempt) -> None:
        for item in self.items:
            try:
                item.on_attempt(outcome, attempt)
            except Exception:  # a listener must never fail a request
                _failed(item, "on_attempt")

    def transition(
        self, key: BreakerKey, old: BreakerState, new: BreakerState, at: float
    ) -> None:
        for item in self.items:
            try:
                item.on_transition(key, old, new, at)
            except Exception:
                _failed(item, "on_transition")

    def limit_refused(self, level: str, key: str) -> None:
        for item in self.items:
            try:
                item.on_limit_refused(level, key)
            except Exception:
                _failed(item, "on_limit_refused")

    def outcome(self, outcome: Outcome) -> None:
        for item in self.items:
            try:
                item.on_outcome(outcome)
            except Exception:
                _failed(item, "on_outcome")

    def queue_depth(self, level: str, key: str, depth: int) -> None:
        for item in self.items:
            try:
                item.on_queue_depth(level, key, depth)
            except Exception:
                _failed(item, "on_queue_depth")
