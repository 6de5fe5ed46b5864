"""The admin port: probes, Prometheus metrics and ``/v1/status`` (see docs/status-api.md).

Nothing here exposes a credential, a prompt or a response text.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from .keys import SIDECAR

if TYPE_CHECKING:
    from .runtime import Sidecar

__all__ = ["ROUTES", "healthz", "metrics", "openapi", "readyz", "status", "status_document"]


def status_document(sidecar: Sidecar) -> dict[str, Any]:
    engine = sidecar.engine
    reload_ = sidecar.reload_state
    doc: dict[str, Any] = {
        "config_version": engine.version if engine else None,
        "ready": engine is not None,
        "pool": sidecar.default_pool,
        "sidecars": 1,
        "slot": None,
        "reload": dict(reload_),
        "instances": [],
        "pools": {},
        "limits": [],
        "sessions": {},
        "retry_after": [],
    }
    if engine is None:
        return doc
    raw = engine.status()
    offset = time.time() - engine.clock.now()

    def wall(value: Any) -> float | None:
        return round(value + offset, 3) if isinstance(value, (int, float)) else None

    providers = {mid: m.provider for mid, m in engine.config.models.items()}
    doc["sidecars"] = raw.get("sidecars", 1)
    doc["slot"] = raw.get("slot")
    doc["instances"] = [
        {
            "group": b["group"],
            "model": b["model"],
            "provider": providers.get(b["model"]),
            "state": b["state"],
            "consecutive_failures": b["consecutive_failures"],
            "last_error": b.get("last_error_class"),
            "open_since": wall(b.get("open_since")),
            "open_until": wall(b.get("open_until")),
        }
        for b in raw.get("breakers", [])
    ]
    doc["pools"] = {
        name: [
            {
                "group": i["group"], "tier": i["tier"], "model": i["model"],
                "healthy": i["in_rotation"], "on_probation": i.get("on_probation", False),
                "consecutive_failures": i["consecutive_failures"],
                "last_error": i.get("last_error_class"), "circuit": i.get("circuit"),
            }
            for i in pool.get("instances", [])
        ]
        for name, pool in raw.get("pools", {}).items()
    }
    doc["limits"] = raw.get("limits", [])
    doc["sessions"] = raw.get("sessions", {})
    doc["retry_after"] = [
        {"model": w["model"], "provider": providers.get(w["model"]), "retry_in": w["retry_in"]}
        for w in raw.get("retry_after", [])
    ]
    return doc


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    sidecar = request.app[SIDECAR]
    if sidecar.engine is None:
        return web.json_response({"status": "not ready", "reason": sidecar.reload_state
                                  .get("last_error") or "no config loaded"}, status=503)
    if sidecar.draining:
        return web.json_response({"status": "draining"}, status=503)
    return web.json_response({"status": "ready", "config_version": sidecar.engine.version})


async def metrics(request: web.Request) -> web.Response:
    sidecar = request.app[SIDECAR]
    if sidecar.engine is not None:
        doc = status_document(sidecar)
        sidecar.metrics.set_pool_health(doc["pools"])
    response = web.Response(body=sidecar.metrics.render())
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


async def status(request: web.Request) -> web.Response:
    return web.Response(body=orjson.dumps(status_document(request.app[SIDECAR])),
                        content_type="application/json")


async def openapi(request: web.Request) -> web.Response:
    from .openapi_admin import admin_spec  # only when asked for: not at start-up

    return web.Response(body=orjson.dumps(admin_spec()), content_type="application/json")


#: The admin port's routes (``create_admin_app`` serves them).
ROUTES = (
    web.get("/healthz", healthz),
    web.get("/readyz", readyz),
    web.get("/metrics", metrics),
    web.get("/v1/status", status),
    web.get("/openapi.json", openapi),
)
