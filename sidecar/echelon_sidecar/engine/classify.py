"""Error classification: what the engine does with each kind of upstream failure.

======================================  ==========================  =========================
error (status / class)                  what the engine does        circuit breaker / pool
======================================  ==========================  =========================
connect error, timeout, 408, 409,       fall back                   counts as a failure
5xx, 529, any other non-4xx status
429 (``rate_limited``)                  fall back; its Retry-After  counts as a failure (never
                                        is honoured for the         marks the instance broken)
                                        instance
401 / 403                               fall back                   instance marked broken:
                                                                    circuit opened at once for
                                                                    the longest open period
400 / 404 / 422                         returned to the caller at   no penalty
                                        once (``RequestRejected``)
other 4xx (402, 413, ...)               fall back                   no penalty (specific to
                                                                    this request)
``InstanceCannotServe``                 skip the instance           no penalty
local limit refusal                     skip (instance or tier)     no penalty
caller cancellation                     everything released,        no penalty
                                        ``CancelledError`` re-raised
a failure after the commit point        recorded on the serving     counts as a failure
(stream broke inside ``serve``)         attempt
======================================  ==========================  =========================

When an ``UpstreamError`` carries a status, the status decides; otherwise its error class does.
"""

from __future__ import annotations

import re
from enum import IntEnum

__all__ = ["Disposition", "class_of_status", "disposition_of", "short_message"]


class Disposition(IntEnum):
    FALLBACK = 0
    """Fall back; a failure of the instance (breaker, pool health)."""
    FALLBACK_FREE = 1
    """Fall back without penalty: the refusal is specific to this request."""
    BROKEN = 2
    """Mark the instance broken (circuit open at once, long period) and fall back."""
    REJECT = 3
    """The request itself is wrong: return it to the caller at once."""


_STATUS_CLASSES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    408: "request_timeout",
    409: "conflict",
    422: "unprocessable",
    429: "rate_limited",
    529: "overloaded",
}

_CLASS_DISPOSITIONS = {
    "bad_request": Disposition.REJECT,
    "not_found": Disposition.REJECT,
    "unprocessable": Disposition.REJECT,
    "unauthorized": Disposition.BROKEN,
    "forbidden": Disposition.BROKEN,
    "client_error": Disposition.FALLBACK_FREE,
}


def class_of_status(status: int | None) -> str:
    """The error class of an HTTP status (``connect_error`` when there is none)."""
    if status is None:
        return "connect_error"
    known = _STATUS_CLASSES.get(status)
    if known is not None:
        return known
    if 500 <= status <= 599:
        return "server_error"
    if 400 <= status <= 499:
        return "client_error"
    return "unexpected_status"


def disposition_of(status: int | None, error_class: str) -> Disposition:
    """What the engine does with a failure (see the module table)."""
    if status is not None:
        error_class = class_of_status(status)
    return _CLASS_DISPOSITIONS.get(error_class, Disposition.FALLBACK)


_SECRETS = re.compile(
    r"(?i)(bearer\s+)\S+"
    r"|\b(sk|pk|rk|key|sess)-[A-Za-z0-9_\-]{8,}"
    r"|\bAIza[0-9A-Za-z_\-]{20,}"
    r"|((?:api[_-]?key|access[_-]?token|token|secret|password|key)\s*[=:]\s*)[^\s&,;\"']+"
)


def _redact(match: re.Match[str]) -> str:
    prefix = match.group(1) or match.group(3) or ""
    return f"{prefix}[redacted]"


def short_message(text: object, limit: int = 200) -> str:
    """A one-line, bounded message with anything that looks like a credential redacted."""
    message = " ".join(str(text).split())
    if len(message) > limit * 2:
        message = message[: limit * 2]
    message = _SECRETS.sub(_redact, message)
    if len(message) > limit:
        message = message[: limit - 1] + "…"
    return message
