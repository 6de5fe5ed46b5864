"""The sidecar's two aiohttp applications, built by factories as aiohttp's examples do.

::

    sidecar = Sidecar(ServerSettings(config=Path("configs/llms")))
    data, admin = create_data_app(sidecar), create_admin_app(sidecar)

Both hold the :class:`~echelon_sidecar.server.Sidecar` under the typed key ``SIDECAR``; their
handlers read it from ``request.app``. What the data port needs while it serves lives in the
data application's ``cleanup_ctx``, set up when the application starts and torn down, in the
reverse order, after its in-flight requests have drained:

1. ``trace_export``: the OpenTelemetry exporter (tracing on) is flushed and stopped last;
2. ``upstream_provider``: the upstream HTTP client (its connection pools) is created, then
   closed -- unless a provider was injected, which its owner closes;
3. ``config_watcher``: the config is loaded (in the event loop's thread: nothing is served
   yet; a sidecar whose config is invalid still starts, answering 503 until a valid one
   appears), then watched for changes every ``reload_interval`` seconds (0: not watched) and
   reloaded in a thread;
4. ``health_checks``: the pools' active health checks, once an engine exists.

``Sidecar.start()`` runs both applications on their ports; tests run them with pytest-aiohttp's
``aiohttp_client(create_data_app(sidecar))``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager, suppress
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import admin, data
from .keys import SIDECAR

if TYPE_CHECKING:
    from .runtime import Sidecar

__all__ = ["SIDECAR", "config_watcher", "create_admin_app", "create_data_app", "health_checks",
           "trace_export", "upstream_provider"]

_log = logging.getLogger("echelon.sidecar")


def create_data_app(sidecar: Sidecar) -> web.Application:
    """The data port: OpenAI- and Anthropic-compatible endpoints over the sidecar's engine."""
    app = web.Application(client_max_size=sidecar.settings.max_body_bytes + 1024,
                          middlewares=[data.json_errors])
    app[SIDECAR] = sidecar
    app.add_routes(data.ROUTES)
    app.cleanup_ctx.extend((trace_export, upstream_provider, config_watcher, health_checks))
    return app


def create_admin_app(sidecar: Sidecar) -> web.Application:
    """The admin port: ``/healthz``, ``/readyz``, ``/metrics``, ``/v1/status``."""
    app = web.Application()
    app[SIDECAR] = sidecar
    app.add_routes(admin.ROUTES)
    return app


# -- the data application's cleanup contexts -------------------------------------------------

async def trace_export(app: web.Application) -> AsyncIterator[None]:
    """Flush and stop the span exporter when the data port is done (tracing on)."""
    yield
    tracing = app[SIDECAR].tracing
    if tracing is not None:  # exports what is still queued: blocking, so in a thread
        await asyncio.to_thread(tracing.shutdown)


async def upstream_provider(app: web.Application) -> AsyncIterator[None]:
    """The upstream client, and its connection pools closed at the end."""
    sidecar = app[SIDECAR]
    sidecar.upstream()
    yield
    await sidecar.close_upstream()


async def config_watcher(app: web.Application) -> AsyncIterator[None]:
    """Load the config, then reload it whenever its files change."""
    sidecar = app[SIDECAR]
    await sidecar.reload_now(blocking=True)  # nothing is served before it
    interval = sidecar.settings.reload_interval
    if interval <= 0:
        yield
        return
    async with _background(_watch(sidecar, interval), "config-watcher"):
        yield


async def health_checks(app: web.Application) -> AsyncIterator[None]:
    """The pools' active health checks (``health_check_interval``), once an engine exists."""
    async with _background(app[SIDECAR].run_health_checks(), "health-checks"):
        yield


async def _watch(sidecar: Sidecar, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            if sidecar.config_changed():
                await sidecar.reload_now()
        except Exception:  # never let the watcher die
            _log.exception("config watcher failed")


@asynccontextmanager
async def _background(coro: Coroutine[Any, Any, None], name: str) -> AsyncIterator[None]:
    """A task running for the duration of the block, cancelled after it."""
    task = asyncio.create_task(coro, name=name)
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
