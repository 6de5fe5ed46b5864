"""Every error Echelon raises on purpose: the one hierarchy, documented here only.

::

    EchelonError                      root: catch this to catch everything below
    ├── ConfigError                   a config could not be loaded or is invalid;
    │                                 carries every Problem found (file, field path, reason)
    ├── RoutingError                  a request could not be served; carries the outcome and
    │   │                             its attempt trail (subclasses: echelon_sidecar.engine)
    │   ├── UnknownTarget             the request names no group, tier, pool or node (or its
    │   │                             node header / fallback groups name nothing declared)
    │   ├── ChainExhausted            every attempt of the fallback chain failed, or the
    │   │                             deadline or max_attempts ended it
    │   ├── AllCircuitsOpen           every instance of the chain is open: failed fast
    │   ├── LimitRefused              a rate limit or concurrency queue refused and nothing was
    │   │                             left to try (retry_after: a hint in seconds)
    │   ├── RequestRejected           the upstream said the request itself is wrong (400/404/422)
    │   └── RequestUnservable         every instance said it cannot serve this request (400,
    │                                 not retried); ``feature`` names why
    ├── ProviderError                 raised by a provider into the engine (echelon_sidecar.engine)
    │   ├── UpstreamError             the upstream failed or refused: status, error class,
    │   │                             Retry-After; the engine classifies it
    │   └── InstanceCannotServe       this instance cannot serve this request: skipped, no penalty
    ├── TranslationError              a request, answer or stream event could not be translated
    │   ├── UnsupportedFeature        (echelon_sidecar.translate) the target provider cannot
    │   │                             express what the request asks: that instance is skipped
    │   ├── InvalidRequest            the caller's request is malformed at ``field_path`` (400)
    │   └── MalformedUpstreamResponse an upstream answered with something unreadable
    ├── CredentialError               a model's credential cannot be read (providers; treated
    │                                 like a 401 of that instance)
    ├── ClientError                   a bad request to the sidecar, answered with ``status``
    │                                 naming the field or header (server)
    ├── StreamBroken                  a stream failed after its first byte: ended with an
    │                                 error event (server)
    ├── LLMError                      the client library's: the sidecar could not serve
    │                                 (``attempts`` lists what it tried; echelon_sidecar.client)
    └── (operator) KubeError, PeeringError, SettingsError: the Kubernetes API failed for
                                      good, kopf's peering is not set up, bad operator settings

Every error the engine raises carries ``outcome`` and ``retry_after`` (see
``echelon_sidecar.engine.errors``). Messages say what was wrong, where, and what to do; none
carries a credential.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["ConfigError", "EchelonError", "RoutingError"]


class EchelonError(Exception):
    """Root of Echelon's own errors."""


class ConfigError(EchelonError):
    """A configuration is invalid. ``problems`` lists every finding (errors and warnings)."""

    def __init__(self, problems: Sequence[object], summary: str | None = None) -> None:
        self.problems = list(problems)
        lines = [str(p) for p in problems]
        head = summary or f"invalid configuration: {len(lines)} problem(s)"
        super().__init__("\n".join([head, *("  " + line for line in lines)]))


class RoutingError(EchelonError):
    """A request could not be served; subclasses live in the engine."""
