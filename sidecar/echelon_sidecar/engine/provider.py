"""The engine's only way out: the :class:`Provider` protocol, and what it is given per attempt.

A provider adapter (HTTP, in ``echelon_sidecar.providers``; a fake in tests) implements::

    async def call(instance, request, settings) -> Any
    async def probe(instance) -> None

``call`` returns an opaque result. For a streaming request it returns once the first chunk is
available: that is the commit point, after which the engine no longer fails over. It raises
:class:`~echelon_sidecar.engine.UpstreamError` for an upstream failure and
:class:`~echelon_sidecar.engine.InstanceCannotServe` when the instance cannot serve this
request (e.g. a translator's ``UnsupportedFeature``); anything else counts as a failure of the
instance (class ``unexpected``). ``probe`` is the active health check of pool instances;
raising anything means unhealthy.
:class:`Instance` and :class:`AttemptSettings` live in ``instance``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from .instance import AttemptSettings, Instance, build_settings, provider_key

if TYPE_CHECKING:
    from .request import EngineRequest

__all__ = ["AttemptSettings", "Instance", "Provider", "build_settings", "provider_key"]


class Provider(Protocol):
    async def call(
        self, instance: Instance, request: EngineRequest, settings: AttemptSettings
    ) -> Any: ...

    async def probe(self, instance: Instance) -> None: ...
