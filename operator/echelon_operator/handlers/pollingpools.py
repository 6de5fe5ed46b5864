"""PollingPool handlers: render the pool's ConfigMap; on deletion, take its sidecars out."""

from __future__ import annotations

from typing import Any

import kopf

from ..kube import KubeError
from ..names import API_GROUP, VERSION
from ..reconcile import pool_deleted as cleanup_pool
from ..state import Runtime

__all__ = ["pool_changed", "pool_event"]


@kopf.on.resume(API_GROUP, VERSION, "pollingpools")
@kopf.on.create(API_GROUP, VERSION, "pollingpools")
@kopf.on.update(API_GROUP, VERSION, "pollingpools")
async def pool_changed(namespace: str | None, name: str, memo: Any, **_: Any) -> None:
    rt: Runtime = memo.runtime
    try:
        await rt.pool_runs.run((str(namespace), name))
    except KubeError as exc:
        raise kopf.TemporaryError(str(exc), delay=5) from exc


@kopf.on.event(API_GROUP, VERSION, "pollingpools")
async def pool_event(event: kopf.RawEvent, namespace: str | None, name: str, uid: str,
                     memo: Any, **_: Any) -> None:
    rt: Runtime = memo.runtime
    rt.pool_observed(str(namespace))
    if event["type"] == "DELETED":
        await cleanup_pool(rt, str(namespace), name, uid)
