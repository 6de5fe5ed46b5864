"""Operator start and stop: kopf settings, the API client, the sidecar poller, the probe."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from .. import settings as echelon_settings
from ..builders.sidecar import native_sidecars, parse_server_version
from ..kube import Kube, KubeError
from ..names import API_GROUP
from ..poller import poll_forever, refresh_operator_global
from ..reconcile import build_runtime
from ..state import Indices, Runtime
from .indexes import WORKLOAD_INDEXES

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
    indices = Indices(kwargs["group_index"], kwargs["pool_index"],
                      [kwargs[name] for name in WORKLOAD_INDEXES], kwargs["global_index"])
    kube = Kube.from_environment()
    try:
        server = parse_server_version(await kube.server_version())
    except (KubeError, ValueError) as exc:
        kube.close()
        # kopf retries a startup handler that fails temporarily
        raise kopf.TemporaryError(f"cannot learn the API server's version: {exc}",
                                  delay=5) from exc
    rt = build_runtime(ours, kube, indices)
    rt.server_version = server
    rt.native_sidecars = native_sidecars(ours.sidecar_mode, server)
    if ours.sidecar_mode == "native" and not rt.native_sidecars:
        logger.warning("--sidecar-mode native needs Kubernetes 1.28 or newer (1.28 with the "
                       "SidecarContainers feature gate); this API server is %d.%d, so the "
                       "sidecar is injected as a regular container", *server)
    await refresh_operator_global(rt)
    rt.spawn(poll_forever(rt), "echelon sidecar poller")
    memo.runtime = rt
    logger.info("echelon-operator started: %s, Kubernetes %d.%d, sidecar image %s injected %s "
                "(--sidecar-mode %s), poll every %gs",
                "all namespaces" if ours.clusterwide else ", ".join(ours.namespaces),
                *server, ours.sidecar_image,
                "as native sidecars" if rt.native_sidecars else "as regular containers",
                ours.sidecar_mode, ours.poll_interval)


@kopf.on.cleanup()
async def cleanup(memo: Any, **_: Any) -> None:
    rt: Runtime | None = getattr(memo, "runtime", None)
    if rt is not None:
        await rt.close()


@kopf.on.probe(id="echelon")
def probe(memo: Any, **_: Any) -> dict[str, Any]:
    rt: Runtime | None = getattr(memo, "runtime", None)
    return rt.probe() if rt is not None else {"starting": True}
