"""The error a request that was not served ends with, built from its :class:`Run`.

In this order of precedence:

==========================  ===============================================================
``RequestRejected``         the upstream refused the request itself (400/404/422)
``ChainExhausted``          the request's deadline passed (``deadline``)
``LimitRefused``            nothing was called and a local limit refused
``ChainExhausted``          instances left asked to wait (Retry-After) past the deadline
                            (``rate_limited``; ``retry_after``: the soonest one's)
``RequestUnservable``       nothing was called, and every instance said it cannot serve this
                            request (none was open): retrying cannot help
``AllCircuitsOpen``         nothing was called, and every instance is open or cannot serve
                            it (``retry_after``: the soonest circuit to turn half-open)
``ChainExhausted``          ``max_attempts`` spent, or every instance failed or was skipped
==========================  ===============================================================

Each carries the outcome and its trail, and ``retry_after`` when trying again later may help.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .classify import short_message
from .errors import (
    AllCircuitsOpen,
    ChainExhausted,
    LimitRefused,
    RequestRejected,
    RequestUnservable,
    UpstreamError,
)
from .steps import SkipKind

if TYPE_CHECKING:
    from ..errors import RoutingError
    from .run import Run

__all__ = ["failure"]


def failure(run: Run) -> RoutingError:
    """The error for a run that served nothing (sets ``outcome.stop_reason``)."""
    outcome = run.outcome
    outcome.attempt_count = run.calls
    trail = outcome.trail()
    where = f"{outcome.target}: "
    tail = f"\n{trail}" if trail else ""
    now = run.env.clock.now()
    exc = run.rejection
    if isinstance(exc, UpstreamError):
        outcome.stop_reason = "rejected"
        text = exc.message or exc.error_class
        return RequestRejected(
            f"{where}the upstream rejected the request (HTTP {exc.status}): "
            f"{short_message(text)}{tail}", exc.status, exc.body, outcome)
    if run.stop_reason == "deadline":
        outcome.stop_reason = "deadline"
        return ChainExhausted(f"{where}the request's deadline passed after {run.calls} "
                              f"attempt(s){tail}", outcome, _wait(run.retry_until, now))
    if run.calls == 0 and run.limit_level is not None:
        return _limit_refused(run, where, tail, now)
    if run.waiting:
        outcome.stop_reason = "rate_limited"
        wait = _wait(run.retry_until, now)
        return ChainExhausted(f"{where}every instance that could serve asked to wait "
                              f"(Retry-After {wait or 0:.3g}s) past what the request allows"
                              f"{tail}", outcome, wait)
    return _nothing_served(run, where, tail, now)


def _limit_refused(run: Run, where: str, tail: str, now: float) -> RoutingError:
    run.outcome.stop_reason = "limit_refused"
    hint = run.limit_hint
    if run.retry_until is not None:
        waited = _wait(run.retry_until, now)
        hint = waited if hint is None or (waited is not None and waited < hint) else hint
    after = f"; retry in {hint:.3g}s" if hint else ""
    return LimitRefused(f"{where}every instance was refused by a limit{after}{tail}",
                        run.limit_level or "", run.limit_key or "", hint, run.outcome)


def _nothing_served(run: Run, where: str, tail: str, now: float) -> RoutingError:
    outcome = run.outcome
    skipped = run.skipped
    if run.calls == 0 and not skipped[SkipKind.OTHER]:
        if skipped[SkipKind.UNSERVABLE] and not skipped[SkipKind.OPEN]:
            outcome.stop_reason = "unservable"
            feature, reason = run.unservable or ("unsupported", "")
            return RequestUnservable(f"{where}no instance can serve this request: {reason}"
                                     f"{tail}", feature, outcome)
        if skipped[SkipKind.OPEN]:
            outcome.stop_reason = "all_circuits_open"
            return AllCircuitsOpen(f"{where}every instance's circuit is open; nothing was "
                                   f"called{tail}", outcome, _wait(run.open_until, now))
    retry = _wait(run.retry_until, now)
    if run.stop_reason == "max_attempts" or run.calls >= run.max_attempts:
        outcome.stop_reason = "max_attempts"
        cap = "max_instance_attempts" if run.route.kind == "pool" else "max_attempts"
        return ChainExhausted(f"{where}all {run.calls} attempt(s) allowed by {cap} "
                              f"failed{tail}", outcome, retry)
    outcome.stop_reason = "exhausted"
    return ChainExhausted(f"{where}every instance of the chain failed or was skipped "
                          f"({run.calls} call(s)){tail}", outcome, retry)


def _wait(until: float | None, now: float) -> float | None:
    return until - now if until is not None and until > now else None
