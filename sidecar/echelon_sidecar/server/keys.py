"""The typed state keys of the sidecar's aiohttp applications (``web.AppKey``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from .runtime import Sidecar

__all__ = ["SIDECAR"]

#: The sidecar both applications serve: its engine, settings, metrics, tracing, reload state.
SIDECAR: web.AppKey[Sidecar] = web.AppKey("sidecar")
