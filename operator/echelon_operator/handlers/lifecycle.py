"""Operator start and stop: kopf settings, the API client, the sidecar poller, the probe."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import kopf

from .. import settings as echelon_settings
from ..kube import Kube
from ..names import API_GROUP
from ..poller import poll_forever, refresh_operator_global
from ..reconcile import build_runtime
from ..runtime import Indices, Runtime

__all__ = ["cleanup", "probe", "startup"]

logger = logging.getLogger("echelon_operator")


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: Any, **kwargs: Any) -> None:
    ours = echelon_settings.current()
    # only explicit Events (ours, and kopf's warnings about failing handlers)
    settings.posting.level = logging.WARNING
    # kopf keeps its bookkeeping in annotations under our prefix, never in .status
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=API_GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=API_GROUP, key="last-handled-configuration")
    settings.persistence.finalizer = f"{API_GROUP}/finalizer"
    # namespaced mode needs no cluster-scoped rights (no watching of Namespaces and CRDs)
    settings.scanning.disabled = not ours.clusterwide
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.request_timeout = 60
    indices = Indices(kwargs["group_index"], kwargs["pool_index"], kwargs["deployment_index"],
                      kwargs["global_index"])
    rt = build_runtime(ours, Kube.from_environment(), indices)
    rt.session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=ours.poll_concurrency, force_close=True),
        headers={"User-Agent": "echelon-operator"},
    )
    await refresh_operator_global(rt)
    rt.spawn(poll_forever(rt), "echelon sidecar poller")
    memo.runtime = rt
    logger.info("echelon-operator started: %s, sidecar image %s, poll every %gs",
                "all namespaces" if ours.clusterwide else ", ".join(ours.namespaces),
                ours.sidecar_image, ours.poll_interval)


@kopf.on.cleanup()
async def cleanup(memo: Any, **_: Any) -> None:
    rt: Runtime | None = getattr(memo, "runtime", None)
    if rt is not None:
        await rt.close()


@kopf.on.probe(id="echelon")
def probe(memo: Any, **_: Any) -> dict[str, Any]:
    rt: Runtime | None = getattr(memo, "runtime", None)
    return rt.probe() if rt is not None else {"starting": True}
