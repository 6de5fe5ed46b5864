"""Errors raised by the wire-format translators.

Hierarchy::

    TranslationError                 base of everything raised by echelon_sidecar.translate
    ├── UnsupportedFeature           the request uses something the target provider cannot do;
    │                                raised before any upstream call, so the sidecar skips that
    │                                instance and records `reason`
    ├── InvalidRequest               the caller's request is malformed; the sidecar answers 400
    │                                naming `field_path`
    └── MalformedUpstreamResponse    an upstream answered with a body or event the translator
                                     cannot read (the instance misbehaved, not the caller)

Translators never silently drop a field that changes the model's behaviour: they either
map it, or raise `UnsupportedFeature` naming it.
"""

from __future__ import annotations

from ..errors import EchelonError

__all__ = [
    "InvalidRequest",
    "MalformedUpstreamResponse",
    "TranslationError",
    "UnsupportedFeature",
]


class TranslationError(EchelonError):
    """Base class: a request, response or stream event could not be translated."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnsupportedFeature(TranslationError):
    """The request asks for `feature`, which `provider` cannot express.

    `reason` is a one-line, user-visible explanation suitable for an attempt trail.
    """

    def __init__(self, feature: str, provider: str, detail: str) -> None:
        self.feature = feature
        self.provider = provider
        self.detail = detail
        super().__init__(f"{provider} cannot serve this request: {feature}: {detail}")

    @property
    def reason(self) -> str:
        return self.message


class InvalidRequest(TranslationError):
    """The caller's request is malformed at `field_path` (e.g. ``messages[2].content[0]``)."""

    def __init__(self, field_path: str, message: str) -> None:
        self.field_path = field_path
        super().__init__(f"{field_path}: {message}")


class MalformedUpstreamResponse(TranslationError):
    """An upstream response or stream event does not have the provider's documented shape."""

    def __init__(self, provider: str, message: str) -> None:
        self.provider = provider
        super().__init__(f"malformed {provider} response: {message}")
