"""What providers raise to the engine, and what the engine raises to its caller (their
place in the one hierarchy is documented in ``echelon_sidecar.errors``):

::

    EchelonError
    ├── RoutingError                  a request could not be served; carries ``outcome`` (trail)
    │   ├── UnknownTarget             the model (or node / fallback group) names nothing declared
    │   ├── ChainExhausted            every attempt of the chain failed, or the deadline / the
    │   │                             max_attempts cap ended it, or every instance left asked
    │   │                             to wait (Retry-After) past the deadline
    │   ├── AllCircuitsOpen           every instance of the chain is open and nothing was called
    │   ├── LimitRefused              a rate limit or concurrency queue refused and nothing is
    │   │                             left to try; ``retry_after`` is a hint in seconds
    │   ├── RequestRejected           the upstream said the request itself is wrong (400/404/422);
    │   │                             ``status`` and ``body`` are the upstream's
    │   └── RequestUnservable         no instance of the route can ever serve this request: each
    │                                 said it cannot (``feature`` names the first one's reason)
    └── ProviderError                 raised by a Provider into the engine
        ├── UpstreamError             the upstream failed or refused (status, error class,
        │                             Retry-After); see ``classify`` for what each one does
        └── InstanceCannotServe       this instance cannot serve this request (e.g. a feature its
                                      provider lacks); skipped without penalty

Every ``RoutingError`` the engine raises carries ``outcome`` (the trail) and ``retry_after``:
seconds until trying again may help (the soonest Retry-After, circuit to half-open or limit
to refill the request met), or None. Messages are short, say what happened and where, and
never carry a credential.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

from ..errors import EchelonError, RoutingError
from .classify import class_of_status

if TYPE_CHECKING:
    from .outcome import Outcome

__all__ = [
    "AllCircuitsOpen",
    "ChainExhausted",
    "InstanceCannotServe",
    "LimitRefused",
    "ProviderError",
    "RequestRejected",
    "RequestUnservable",
    "UnknownTarget",
    "UpstreamError",
    "close_names",
]


class ProviderError(EchelonError):
    """Raised by a :class:`~echelon_sidecar.engine.Provider` to tell the engine what happened."""


class UpstreamError(ProviderError):
    """The upstream answered with an error, or could not be reached.

    ``status`` is the HTTP status (None for connection errors and timeouts). ``error_class``
    names the failure (``connect_error``, ``timeout``, ``rate_limited`` ...); when omitted it
    is derived from ``status``. ``retry_after`` is the upstream's Retry-After in seconds.
    ``body`` is the upstream's error body, returned to the caller for 400/404/422.
    """

    def __init__(
        self,
        status: int | None,
        error_class: str | None = None,
        message: str = "",
        retry_after: float | None = None,
        *,
        body: object = None,
    ) -> None:
        self.status = status
        self.error_class = error_class or class_of_status(status)
        self.message = message
        self.retry_after = retry_after
        self.body = body
        where = f"HTTP {status}" if status is not None else self.error_class
        super().__init__(f"{where}: {message}" if message else where)


class InstanceCannotServe(ProviderError):
    """This instance cannot serve this request (``reason`` goes into the attempt trail;
    ``feature`` names what it cannot do, e.g. ``logprobs``, ``n`` or ``tools``)."""

    def __init__(self, reason: str, feature: str | None = None) -> None:
        self.reason = reason
        self.feature = feature
        super().__init__(reason)


class _WithOutcome(RoutingError):
    outcome: Outcome | None
    retry_after: float | None

    def __init__(
        self, message: str, outcome: Outcome | None = None, retry_after: float | None = None
    ) -> None:
        self.outcome = outcome
        self.retry_after = retry_after
        super().__init__(message)


class UnknownTarget(_WithOutcome):
    """The request's model (or node header, or fallback group) names nothing declared."""

    def __init__(self, name: str, what: str, close: list[str] | None = None) -> None:
        self.name = name
        self.what = what
        self.close = list(close or [])
        hint = f"; did you mean {', '.join(repr(c) for c in self.close)}?" if self.close else ""
        super().__init__(f"{what} {name!r} names no {_KINDS.get(what, 'target')}{hint}")


_KINDS = {
    "model": "workflow node, polling pool or task group (group or group.tier)",
    "node": "workflow node",
    "fallback group": "task group (group or group.tier)",
}


class ChainExhausted(_WithOutcome):
    """Every attempt failed (or the deadline / max_attempts ended the chain)."""


class AllCircuitsOpen(_WithOutcome):
    """Every instance of the chain has an open circuit; nothing was called (failed fast)."""


class LimitRefused(_WithOutcome):
    """A limit refused the request and nothing was left to try.

    ``level`` is ``global``, ``pool``, ``node``, ``group``, ``echelon`` or ``model``; ``key``
    names the limited thing; ``retry_after`` (seconds, may be None) is when trying again may
    succeed.
    """

    def __init__(
        self,
        message: str,
        level: str,
        key: str,
        retry_after: float | None,
        outcome: Outcome | None = None,
    ) -> None:
        self.level = level
        self.key = key
        super().__init__(message, outcome, retry_after)


class RequestRejected(_WithOutcome):
    """The upstream refused the request itself (400/404/422): it is returned as is."""

    def __init__(
        self, message: str, status: int | None, body: object, outcome: Outcome | None = None
    ) -> None:
        self.status = status
        self.body = body
        super().__init__(message, outcome)


class RequestUnservable(_WithOutcome):
    """Every instance of the route said it cannot serve this request (nothing was called):
    retrying cannot help. ``feature`` names what the first one could not do."""

    def __init__(self, message: str, feature: str, outcome: Outcome | None = None) -> None:
        self.feature = feature
        super().__init__(message, outcome)


def close_names(name: str, names: list[str]) -> list[str]:
    """A few declared names close to ``name`` (for ``UnknownTarget``'s hint)."""
    return difflib.get_close_matches(name, names, n=3, cutoff=0.5)
