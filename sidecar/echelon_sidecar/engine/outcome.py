"""The result of serving a request: who served it, and the trail of every attempt and skip.

An :class:`Attempt` is one line of the trail: an upstream call (``result`` ``ok`` or
``error``, numbered by ``call``) or a skip without a call (``result`` ``skipped``). ``reason``
says why the engine moved on from it:

=====================  ===================================================================
reason                 meaning
=====================  ===================================================================
``served``             this attempt served the request
``fallback``           the call failed (counted against the instance); the engine moved on
``marked_broken``      401/403: the instance's circuit was opened for the longest period
``request_specific``   another 4xx: moved on without penalty
``rejected``           400/404/422: the request was returned to the caller
``circuit_open``       skipped: the instance's circuit is open (or its probes are taken)
``cannot_serve``       skipped: the instance cannot serve this request (``message`` says why)
``rate_limited``       skipped: a tier ``rpm_limit`` refused (the rest of the tier is skipped)
``queue_full``         skipped: a tier/model concurrency limit and its queue are full
``queue_timeout``      skipped: waited in a tier/model queue until the deadline
``retry_after``        skipped: the instance asked to wait (Retry-After) longer than allowed
``out_of_rotation``    skipped: a pool instance is unhealthy until its recovery time
``deadline``           the request's deadline left no time for this attempt
``failed_after_commit``  the serving call broke after its first chunk (inside ``serve``)
=====================  ===================================================================

``Outcome.attempt_count`` counts upstream calls only and never exceeds ``max_attempts``.
``fallbacks_taken`` counts moves to a later step of the chain (or another pool instance).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .instance import AttemptSettings, Instance

__all__ = ["Attempt", "AttemptResult", "Outcome"]

AttemptResult = Literal["ok", "error", "skipped"]


@dataclass(slots=True, eq=False)
class Attempt:
    """One line of the trail: a call or a skip."""

    index: int
    group: str
    tier: str
    model: str
    provider: str
    start: float
    duration: float
    result: AttemptResult
    reason: str
    call: int | None = None
    """1-based number of the upstream call (None for a skip)."""
    error_class: str | None = None
    status: int | None = None
    message: str | None = None
    phase: str = "chain"
    """``pinned`` (a session's instance), ``pool``, ``chain`` or ``last_resort``."""

    def to_dict(self) -> dict[str, object]:
        return {
            "index": self.index,
            "call": self.call,
            "phase": self.phase,
            "group": self.group,
            "tier": self.tier,
            "model": self.model,
            "provider": self.provider,
            "start": self.start,
            "duration": round(self.duration, 6),
            "result": self.result,
            "reason": self.reason,
            "error_class": self.error_class,
            "status": self.status,
            "message": self.message,
        }

    def describe(self) -> str:
        where = f"{self.group}.{self.tier}/{self.model}"
        if self.result == "ok":
            return f"{where}: ok"
        what = self.error_class or self.reason
        if self.status is not None:
            what = f"HTTP {self.status} {what}"
        text = f"{where}: {self.result} ({what})"
        if self.message:
            text += f": {self.message}"
        if self.result == "error" and self.reason != "fallback":
            text += f" [{self.reason}]"
        return text


@dataclass(slots=True, eq=False)
class Outcome:
    """How a request was served (or why not), with its full attempt trail."""

    target: str
    started: float
    max_attempts: int
    attempts: list[Attempt] = field(default_factory=list)
    attempt_count: int = 0
    fallbacks_taken: int = 0
    group: str | None = None
    tier: str | None = None
    model: str | None = None
    instance: Instance | None = None
    settings: AttemptSettings | None = None
    result: Any = None
    duration: float = 0.0
    stop_reason: str | None = None
    """``served``, ``max_attempts``, ``exhausted``, ``deadline``, ``rejected``,
    ``all_circuits_open``, ``limit_refused`` or ``failed_after_commit``."""
    failed_after_commit: bool = False

    @property
    def served(self) -> bool:
        return self.model is not None and not self.failed_after_commit

    @property
    def serving_attempt(self) -> Attempt | None:
        for attempt in reversed(self.attempts):
            if attempt.result == "ok" or attempt.reason == "failed_after_commit":
                return attempt
        return None

    def trail(self) -> str:
        """The attempts, one per line (for error messages)."""
        return "\n".join(f"  {a.index + 1}. {a.describe()}" for a in self.attempts)

    def to_dict(self) -> dict[str, object]:
        return {
            "target": self.target,
            "served_by": None
            if self.model is None
            else {"group": self.group, "tier": self.tier, "model": self.model},
            "attempt_count": self.attempt_count,
            "max_attempts": self.max_attempts,
            "fallbacks_taken": self.fallbacks_taken,
            "duration": round(self.duration, 6),
            "stop_reason": self.stop_reason,
            "failed_after_commit": self.failed_after_commit,
            "attempts": [a.to_dict() for a in self.attempts],
        }
