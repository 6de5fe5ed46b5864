"""One sidecar: config, engine, upstream provider, data and admin servers, reload, drain.

::

    async with Sidecar(ServerSettings(config=Path("configs/llms"), port=0, admin_port=0)) as sc:
        ...  # sc.data_url, sc.admin_url, sc.engine, sc.reload_now()

A sidecar whose config is invalid at start still starts: ``/readyz`` answers 503 with the
reason and the data port answers 503 until a valid config appears.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import suppress
from typing import Any

from aiohttp import web

from ..config import LoadedConfig
from ..config.resolve import Resolver
from ..engine import Clock, Engine, Provider
from ..errors import ConfigError
from ..providers import HttpProvider
from .admin import AdminAPI
from .data import DataAPI
from .metrics import Metrics
from .reload import ConfigWatcher
from .settings import ServerSettings
from .tracing import Tracing, tracing_enabled

__all__ = ["Sidecar"]

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
        self._provider = provider
        self._own_provider: HttpProvider | None = None
        self._clock = clock
        self._watcher = ConfigWatcher(settings.config, settings.reload_interval)
        self._config_pool: str | None = None
        self.reload_state: dict[str, Any] = {
            "reloads": 0, "failures": 0, "last_error": None, "last_attempt": None,
        }
        self._runners: list[web.AppRunner] = []
        self._tasks: list[asyncio.Task[None]] = []
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

    # -- config ------------------------------------------------------------------------------------

    def _apply(self, loaded: LoadedConfig) -> None:
        if self.engine is None:
            provider = self._provider
            if provider is None:
                provider = self._own_provider = HttpProvider()
            self.engine = Engine(loaded, provider, clock=self._clock,
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

    async def reload_now(self) -> bool:
        """Load the config path now; True when a new config took effect."""
        async with self._lock:
            self.reload_state["last_attempt"] = time.time()
            first = self.engine is None
            try:
                loaded = await self._watcher.load_async()
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

    async def _watch(self) -> None:
        interval = self.settings.reload_interval
        while True:
            await asyncio.sleep(interval)
            try:
                if self._watcher.changed():
                    await self.reload_now()
            except Exception:  # never let the watcher die
                _log.exception("config watcher failed")

    async def _health_checks(self) -> None:
        await self._engine_ready.wait()
        assert self.engine is not None
        await self.engine.run_health_checks()

    # -- lifecycle -----------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.reload_now()
        api = DataAPI(self)
        data = web.Application(client_max_size=self.settings.max_body_bytes + 1024,
                               middlewares=[api.json_errors])
        data.add_routes(api.routes())
        admin = web.Application()
        admin.add_routes(AdminAPI(self).routes())
        for app, host, port, attr in (
            (data, self.settings.host, self.settings.port, "data_port"),
            (admin, self.settings.admin_host, self.settings.admin_port, "admin_port"),
        ):
            runner = web.AppRunner(app, handler_cancellation=True, access_log=None,
                                   shutdown_timeout=self.settings.drain_timeout)
            await runner.setup()
            site = web.TCPSite(runner, host, port, reuse_address=True)
            await site.start()
            self._runners.append(runner)
            setattr(self, attr, runner.addresses[0][1])
        if self.settings.reload_interval > 0:
            self._tasks.append(asyncio.create_task(self._watch(), name="config-watcher"))
        self._tasks.append(asyncio.create_task(self._health_checks(), name="health-checks"))
        _log.info("sidecar serving on %s (admin %s)", self.data_url, self.admin_url)

    async def stop(self) -> None:
        """Stop accepting, finish in-flight requests (bounded by drain_timeout), close."""
        self.draining = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for runner in self._runners:  # data first: it drains in-flight requests
            await runner.cleanup()
        self._runners.clear()
        if self._own_provider is not None:
            await self._own_provider.close()
        if self.tracing is not None:  # flushes the spans still queued (blocking: a thread)
            await asyncio.to_thread(self.tracing.shutdown)

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
