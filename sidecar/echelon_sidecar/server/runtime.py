"""One sidecar: config, engine, upstream provider, data and admin servers, reload, drain.

::

    async with Sidecar(ServerSettings(config=Path("configs/llms"), port=0, admin_port=0)) as sc:
        ...  # sc.data_url, sc.admin_url, sc.engine, sc.reload_now()

The sidecar is the state both of its aiohttp applications serve (``app.create_data_app`` and
``app.create_admin_app``, which hold it under the ``SIDECAR`` key); ``start()`` runs them on
their ports and ``stop()`` drains and closes them. A sidecar whose config is invalid at start
still starts: ``/readyz`` answers 503 with the reason and the data port answers 503 until a
valid config appears.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiohttp import web

from .. import translate
from ..config import LoadedConfig
from ..config.resolve import Resolver
from ..engine import Clock, Engine, Provider
from ..errors import ConfigError
from ..providers import HttpProvider
from .app import create_admin_app, create_data_app
from .metrics import Metrics
from .reload import ConfigWatcher
from .settings import ServerSettings
from .tracing import Tracing, tracing_enabled

__all__ = ["Sidecar"]

#: the listen queue: an application that opens hundreds of connections at once (a worker
#: pool starting, a burst of streams) must not overflow it. aiohttp's default, 128, made a
#: burst of 1,000 new streams wait for SYN retransmits (1, 3, 7 s: TTFT p99 ~10 s) and lose
#: some connections outright; the kernel caps it at net.core.somaxconn (4096 by default).
LISTEN_BACKLOG = 4096

_log = logging.getLogger("echelon.sidecar")


class Sidecar:
    def __init__(self, settings: ServerSettings, *, provider: Provider | None = None,
                 clock: Clock | None = None, tracing: Tracing | None = None) -> None:
        self.settings = settings
        self.metrics = Metrics()
        # OpenTelemetry traces: on when the standard OTEL_* variables name an endpoint
        self.tracing = tracing if tracing is not None else _tracing_from_env()
        self.engine: Engine | None = None
        self.draining = False
        self.provider = provider
        self._own_provider: HttpProvider | None = None
        self._clock = clock
        self._watcher = ConfigWatcher(settings.config, settings.reload_interval)
        self._config_pool: str | None = None
        self.reload_state: dict[str, Any] = {
            "reloads": 0, "failures": 0, "last_error": None, "last_attempt": None,
        }
        self._runners: list[web.AppRunner] = []
        self.data_port = settings.port
        self.admin_port = settings.admin_port
        self._lock = asyncio.Lock()
        self._engine_ready = asyncio.Event()

    # -- properties ------------------------------------------------------------------------------

    @property
    def default_pool(self) -> str | None:
        return self.settings.pool or self._config_pool

    @property
    def data_url(self) -> str:
        return f"http://{_host(self.settings.host)}:{self.data_port}"

    @property
    def admin_url(self) -> str:
        return f"http://{_host(self.settings.admin_host)}:{self.admin_port}"

    # -- the upstream ------------------------------------------------------------------------------

    def upstream(self) -> Provider:
        """The provider the engine calls: the injected one, else an :class:`HttpProvider` of
        the sidecar's own (closed by ``close_upstream``)."""
        if self.provider is None:
            self.provider = self._own_provider = HttpProvider()
        return self.provider

    async def close_upstream(self) -> None:
        """Close the sidecar's own provider (its connection pools); an injected one stays."""
        own, self._own_provider = self._own_provider, None
        if own is not None:
            await own.close()

    # -- config ------------------------------------------------------------------------------------

    def _apply(self, loaded: LoadedConfig) -> None:
        models = loaded.config.models.values()  # their translators load now, not mid-request
        translate.preload({m.provider for m in models},
                          embeddings=any(m.is_embedding for m in models))
        if self.engine is None:
            self.engine = Engine(loaded, self.upstream(), clock=self._clock,
                                 listeners=[self.metrics])
            self._engine_ready.set()
        else:
            self.engine.reload(loaded)
        self._config_pool = loaded.config.sidecar.pool
        self.metrics.set_config(self.engine.version, self.engine.status().get("breakers", []))
        for warning in loaded.warnings:
            _log.info("config warning: %s", warning)

    def _check_pool_flag(self, loaded: LoadedConfig) -> None:
        """``--pool`` must name a pool of the config (as the config's own sidecar.pool must)."""
        pool = self.settings.pool
        if pool is None or Resolver(loaded.config).pool_name(pool) is not None:
            return
        known = ", ".join(loaded.config.polling_pools) or "none"
        raise ConfigError([f"--pool {pool}: the config has no polling pool of that name "
                           f"(its pools: {known})"], "invalid --pool")

    def config_changed(self) -> bool:
        """Whether the config path differs from what was last loaded (or refused)."""
        return self._watcher.changed()

    async def reload_now(self, *, blocking: bool = False) -> bool:
        """Load the config path now; True when a new config took effect.

        The files are read and validated in a thread, so that requests go on being served,
        unless ``blocking``: the data app's start-up loads in the event loop's own thread, as
        nothing is served yet (and the thread, with its memory, is not needed then).
        """
        async with self._lock:
            self.reload_state["last_attempt"] = time.time()
            first = self.engine is None
            try:
                loaded = self._watcher.load() if blocking else await self._watcher.load_async()
                self._check_pool_flag(loaded)
            except ConfigError as exc:
                self.reload_state["failures"] += 1
                self.reload_state["last_error"] = str(exc)
                self.metrics.reloads.labels("failure").inc()
                self.metrics.config_valid.set(0)
                _log.error("config refused, %s: %s", "not serving yet" if first else
                           "the previous config keeps serving", exc)
                return False
            if self.engine is not None and loaded.version == self.engine.version:
                self.reload_state["last_error"] = None
                self.metrics.config_valid.set(1)
                return False
            self._apply(loaded)
            if not first:
                self.reload_state["reloads"] += 1
            self.reload_state["last_error"] = None
            self.metrics.reloads.labels("success").inc()
            self.metrics.config_valid.set(1)
            _log.info("config %s loaded from %s", self.engine.version if self.engine else "?",
                      self.settings.config)
            return True

    async def run_health_checks(self) -> None:
        """The engine's active health checks, from the moment there is an engine (forever)."""
        await self._engine_ready.wait()
        assert self.engine is not None
        await self.engine.run_health_checks()

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Set up both applications (the data one loads the config) and listen on their ports."""
        try:
            for app, host, port, attr in (
                (create_data_app(self), self.settings.host, self.settings.port, "data_port"),
                (create_admin_app(self), self.settings.admin_host, self.settings.admin_port,
                 "admin_port"),
            ):
                runner = web.AppRunner(app, handler_cancellation=True, access_log=None,
                                       shutdown_timeout=self.settings.drain_timeout)
                await runner.setup()
                self._runners.append(runner)
                site = web.TCPSite(runner, host, port, reuse_address=True,
                                   backlog=LISTEN_BACKLOG)
                await site.start()
                setattr(self, attr, runner.addresses[0][1])
        except BaseException:
            await self._cleanup()
            raise
        _log.info("sidecar serving on %s (admin %s)", self.data_url, self.admin_url)

    async def stop(self) -> None:
        """Stop accepting, finish in-flight requests (bounded by drain_timeout), close."""
        self.draining = True
        await self._cleanup()
        await self.close_upstream()  # one a reload made outside a started data app

    async def _cleanup(self) -> None:
        # data first: it drains in-flight requests, then its cleanup contexts stop the
        # watcher and the health checks and close the upstream and the span exporter
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()

    async def __aenter__(self) -> Sidecar:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def _tracing_from_env() -> Tracing | None:
    if not tracing_enabled():
        return None
    try:
        return Tracing()
    except ImportError as exc:  # an install without the OpenTelemetry SDK
        _log.error("OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry cannot be imported "
                   "(%s): no traces", exc)
        return None


def _host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "") else host
